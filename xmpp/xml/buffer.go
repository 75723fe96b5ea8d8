package xml

import "sync"

// Read buffers come in power-of-two size classes from minBufSize up to
// maxPooledSize. The pools are package-level on purpose: a pool is a cache
// shared by every decoder in the process (that is what lets an idle
// connection hold no buffer), it carries no configuration and no test can
// observe it.
const (
	minBufSize    = 4 << 10
	maxPooledSize = 1 << 20
	numClasses    = 9 // 4 KiB << 0..8 = 4 KiB..1 MiB
	// readGrowCap bounds growth driven only by reads that fill the buffer
	// (throughput); larger buffers are only taken when a token needs them.
	readGrowCap = 64 << 10
	// minFree is the free space below which ReadFrom compacts first, so a
	// read is never starved into tiny pieces.
	minFree = 512
)

var bufPools [numClasses]sync.Pool

// classFor returns the class index and size for a buffer of at least n bytes;
// index -1 means n is larger than any pooled class.
func classFor(n int) (int, int) {
	size := minBufSize
	for c := 0; c < numClasses; c++ {
		if n <= size {
			return c, size
		}
		size <<= 1
	}
	return -1, n
}

// getBuf returns a buffer of at least n bytes, from a pool when one fits.
func getBuf(n int) *[]byte {
	c, size := classFor(n)
	if c >= 0 {
		if p, ok := bufPools[c].Get().(*[]byte); ok {
			return p
		}
	}
	b := make([]byte, size)
	return &b
}

// putBuf returns a buffer obtained from getBuf to its pool.
func putBuf(p *[]byte) {
	c, size := classFor(len(*p))
	if c >= 0 && size == len(*p) {
		bufPools[c].Put(p)
	}
}

// workPool recycles parse workspaces (node, attribute and scratch arenas)
// between decoders, for the same reason as bufPools.
var workPool = sync.Pool{New: func() any { return new(work) }}

// maxKeptArena bounds the arenas a workspace keeps when it goes back to the
// pool, so one huge stanza does not pin memory forever.
const maxKeptArena = 64 << 10

// trim drops arenas that grew beyond maxKeptArena.
func (w *work) trim() {
	if cap(w.doc.aux) > maxKeptArena {
		w.doc.aux = nil
	}
	if cap(w.doc.nodes)*nodeSize > maxKeptArena {
		w.doc.nodes = nil
	}
	if cap(w.doc.attrs)*attrSize > maxKeptArena {
		w.doc.attrs = nil
	}
	if cap(w.runs)*16 > maxKeptArena {
		w.runs = nil
	}
	if cap(w.check) > maxKeptArena {
		w.check = nil
	}
	w.doc.src = nil
}
