package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Options tune one connection. Zero values take the defaults noted on each field.
type Options struct {
	// MaxPending is the most output bytes a connection may have queued; past it the peer is a slow
	// consumer and is disconnected rather than allowed to eat memory. Default 4 MiB.
	MaxPending int
	// WriteTimeout bounds one write to the socket. Default 30 s.
	WriteTimeout time.Duration
	// Silence is how long the peer may send nothing before the owner's OnSilence is asked what to do
	// (a client is pinged). Default 60 s.
	Silence time.Duration
	// HandshakeTimeout bounds a TLS handshake. Default 10 s.
	HandshakeTimeout time.Duration
	// Poller, if set, watches idle connections so that they need no goroutine (see Serve).
	Poller *Poller
	// OnUnsent, if set, receives the output that was queued but not written when the connection
	// closed, in order (the chunks are the receiver's). Cluster links re-send it on another link.
	OnUnsent func(unsent [][]byte)
	// Hot, with a Poller, is how long a connection that just had traffic keeps its goroutine waiting
	// before it is parked. Zero parks at once.
	Hot time.Duration
}

// The accessors below apply the defaults: Options are shared by every connection of a listener and are
// never written after the first New.

func (o *Options) maxPending() int {
	if o.MaxPending <= 0 {
		return 4 << 20
	}
	return o.MaxPending
}

func (o *Options) writeTimeout() time.Duration {
	if o.WriteTimeout <= 0 {
		return 30 * time.Second
	}
	return o.WriteTimeout
}

func (o *Options) silence() time.Duration {
	if o.Silence <= 0 {
		return 60 * time.Second
	}
	return o.Silence
}

func (o *Options) handshakeTimeout() time.Duration {
	if o.HandshakeTimeout <= 0 {
		return 10 * time.Second
	}
	return o.HandshakeTimeout
}

// CloseListener is told once that a connection closed.
type CloseListener interface {
	ConnClosed(Reason)
}

// Conn is one XMPP connection's I/O. Reading happens on the goroutine that calls Serve; writing is
// queued by any goroutine with Write or WriteElement and flushed by a short-lived goroutine, so an idle
// connection costs one parked reader and no buffers.
type Conn struct {
	opts   *Options // shared by the listener's connections: idle sessions are most of the memory
	sock   *socket
	nc     net.Conn // what is read and written: sock, a wrapper of it, or TLS over them
	under  net.Conn // sock or its wrapper: what TLS runs over
	tls    *tls.Conn
	remote net.Addr
	local  net.Addr

	mu         sync.Mutex
	out        net.Buffers // queued chunks, oldest first
	pending    int         // bytes queued and not yet written
	flushing   bool
	closing    bool // no more writes accepted; close once the queue is written
	closed     bool
	abort      bool        // reset instead of a graceful close
	unsent     [][]byte    // output never written, kept for Options.OnUnsent
	closeTimer *time.Timer // CloseAfter's safety net
	reason     Reason
	closeDone  chan struct{}
	flushDone  chan struct{} // non-nil while a flusher runs and someone waits for it
	onClose    CloseListener
	bytesIn    atomic.Uint64
	bytesOut   atomic.Uint64
	lastActive atomic.Int64 // unix nanoseconds of the last read
	// readPause and writePause hold a unix-nanosecond time until which the direction is paused (the
	// `drop` action of a byte limit: pausing loses nothing, where dropping segments stalls TCP).
	readPause  atomic.Int64
	writePause atomic.Int64

	// Reading state (see Serve): the decoder and handler, and whether the connection is parked with
	// the poller. pmu orders the hand-over between the poller, the silence sweep and a closer.
	dec      *xml.Decoder
	h        Handler
	pmu      sync.Mutex
	parked   bool
	ended    bool
	armed    bool // registered with the poller's epoll set
	pollID   uint64
	parkedAt int64 // unix ns; the poller's sweep asks the handler about connections silent too long
}

// ErrClosed is returned by writes to a closed or closing connection.
var ErrClosed = errors.New("connection closed")

// ErrSlowConsumer is returned when a write would pass the pending-output cap.
var ErrSlowConsumer = errors.New("slow consumer: too much output pending")

// New takes ownership of a TCP connection. opts (nil: the defaults) is kept, not copied: a listener
// passes the same Options to all its connections and must not change them afterwards.
func New(c *net.TCPConn, opts *Options) (*Conn, error) {
	if opts == nil {
		opts = &Options{}
	}
	s, err := newSocket(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("conn: raw socket: %w", err)
	}
	cn := &Conn{opts: opts, sock: s, remote: c.RemoteAddr(), local: c.LocalAddr(), closeDone: make(chan struct{})}
	cn.under, cn.nc = s, s
	cn.lastActive.Store(time.Now().UnixNano())
	return cn, nil
}

// Wrap puts what f returns between the socket and everything above it, TLS included (the userspace
// traffic meter counts socket bytes there). Call it before the first read, write or StartTLS. If f
// fails, the connection is closed.
func (c *Conn) Wrap(f func(net.Conn) (net.Conn, error)) error {
	w, err := f(c.under)
	if err == nil && w == nil {
		err = errors.New("conn: the connection wrapper returned no connection")
	}
	if err != nil {
		c.Close(ReasonSetupFailed)
		return err
	}
	c.mu.Lock()
	c.under, c.nc = w, w
	c.mu.Unlock()
	return nil
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the local address of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// TCP returns the underlying TCP connection (for socket options and the eBPF socket cookie).
func (c *Conn) TCP() *net.TCPConn { return c.sock.TCPConn }

// TLS returns the TLS connection once TLS is on, else nil.
func (c *Conn) TLS() *tls.Conn { return c.tls }

// BytesIn and BytesOut count socket-level bytes (TLS included) read and written.
func (c *Conn) BytesIn() uint64  { return c.bytesIn.Load() }
func (c *Conn) BytesOut() uint64 { return c.bytesOut.Load() }

// StartTLS runs a server-side TLS handshake on the connection. It must be called on the reader goroutine,
// with nothing left unread in the owner's decoder (bytes read before the upgrade would be plaintext
// smuggled into the TLS stream).
func (c *Conn) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if c.tls != nil {
		return errors.New("conn: TLS already on")
	}
	if err := c.Flush(ctx); err != nil {
		return err
	}
	t := tls.Server(c.under, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.opts.handshakeTimeout())
	defer cancel()
	c.sock.nonblock = false
	err := t.HandshakeContext(hctx)
	if err != nil {
		return fmt.Errorf("conn: TLS handshake with %s: %w", c.remote, err)
	}
	c.mu.Lock()
	c.tls, c.nc = t, t
	c.mu.Unlock()
	return nil
}

// Write queues a copy of p.
func (c *Conn) Write(p []byte) error {
	c.mu.Lock()
	if err := c.admitLocked(len(p)); err != nil {
		c.mu.Unlock()
		return err
	}
	c.appendLocked(p)
	c.kickLocked()
	c.mu.Unlock()
	return nil
}

// WriteElement queues e with the given top-level attributes replaced (see xml.Element.AppendTo): the
// element's bytes are copied once, from the sender's read buffer into this connection's queue.
func (c *Conn) WriteElement(e *xml.Element, set ...xml.Attr) error {
	c.mu.Lock()
	if err := c.admitLocked(len(e.Raw())); err != nil {
		c.mu.Unlock()
		return err
	}
	before := c.tailLenLocked()
	tail := c.tailLocked(len(e.Raw()) + 256)
	tail = e.AppendTo(tail, set...)
	c.out[len(c.out)-1] = tail
	c.pending += len(tail) - before
	c.kickLocked()
	c.mu.Unlock()
	return nil
}

// admitLocked applies the pending cap. Exceeding it closes the connection as a slow consumer.
func (c *Conn) admitLocked(n int) error {
	if c.closing || c.closed {
		return ErrClosed
	}
	if c.pending+n > c.opts.maxPending() {
		c.closing = true
		c.closeLocked(ReasonSlowConsumer)
		return ErrSlowConsumer
	}
	return nil
}

// Output chunks come in two sizes: a small one for the first bytes queued on an idle connection (a
// login answer, a message or two) and a large one once output piles up, so that a burst is gathered
// into few writev segments without every reply touching 16 KiB.
const (
	smallChunk = 2 << 10
	chunkSize  = 16 << 10
)

// The pools hold pointers to the chunks' arrays, which a chunk converts back to without an allocation
// (a *[]byte would need a new slice header on the heap for every Put).
var (
	smallPool = sync.Pool{New: func() any { return new([smallChunk]byte) }}
	chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}
	flushPool = sync.Pool{New: func() any { return new(flushBufs) }}
)

func getChunk(min, pending int) []byte {
	switch {
	case min > chunkSize:
		return make([]byte, 0, min)
	case min <= smallChunk && pending < smallChunk:
		return smallPool.Get().(*[smallChunk]byte)[:0]
	}
	return chunkPool.Get().(*[chunkSize]byte)[:0]
}

// putChunk recycles a chunk that getChunk returned (a slice of it from its start).
func putChunk(b []byte) {
	switch cap(b) {
	case smallChunk:
		smallPool.Put((*[smallChunk]byte)(b[:smallChunk]))
	case chunkSize:
		chunkPool.Put((*[chunkSize]byte)(b[:chunkSize]))
	}
}

// flushBufs is a flusher's working set, pooled: the batch escapes through WriteTo's interface call,
// so a local one would be an allocation per flush.
type flushBufs struct {
	batch  net.Buffers
	chunks [][]byte
}

func (c *Conn) tailLenLocked() int {
	if len(c.out) == 0 {
		return 0
	}
	return len(c.out[len(c.out)-1])
}

// tailLocked returns the last queued chunk, or a new one, with room for about n more bytes. The chunk
// being written by the flusher is never in c.out, so appending here never races with the socket write.
func (c *Conn) tailLocked(n int) []byte {
	if k := len(c.out); k > 0 && cap(c.out[k-1])-len(c.out[k-1]) >= n {
		return c.out[k-1]
	}
	c.out = append(c.out, getChunk(n, c.pending))
	return c.out[len(c.out)-1]
}

func (c *Conn) appendLocked(p []byte) {
	tail := c.tailLocked(len(p))
	c.out[len(c.out)-1] = append(tail, p...)
	c.pending += len(p)
}

func (c *Conn) kickLocked() {
	if !c.flushing && len(c.out) > 0 {
		c.flushing = true
		c.spawn(jobFlush)
	}
}

// flush writes queued chunks until the queue is empty, gathering everything queued so far into one
// writev per round.
func (c *Conn) flush() {
	fb := flushPool.Get().(*flushBufs)
	batch, chunks := fb.batch[:0], fb.chunks[:0]
	for {
		c.mu.Lock()
		if c.closed && len(c.out) > 0 {
			c.handBack(c.out)
			c.out = nil
		}
		if len(c.out) == 0 || c.closed {
			c.flushing = false
			if c.closing && !c.closed {
				c.closeLocked(c.reason)
			}
			if c.closed {
				c.deliverUnsent()
			}
			if c.flushDone != nil {
				close(c.flushDone)
				c.flushDone = nil
			}
			c.mu.Unlock()
			fb.batch, fb.chunks = batch[:0], chunks[:0]
			flushPool.Put(fb)
			return
		}
		batch, c.out = c.out, batch[:0]
		c.mu.Unlock()
		if c.writePause.Load() > time.Now().UnixNano() && !c.waitPause(&c.writePause) {
			c.mu.Lock()
			c.handBack(batch)
			c.mu.Unlock()
			batch = nil
			continue // closed while paused: the next round sees it and ends
		}

		// WriteTo consumes batch and nils the chunks it wrote, in batch's own array: keep the chunks
		// in another one, or they never go back to the pool.
		chunks = append(chunks[:0], batch...)
		full := batch
		n := 0
		for _, b := range chunks {
			n += len(b)
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.opts.writeTimeout()))
		var err error
		if len(batch) == 1 {
			// One chunk (the common case for a client) needs no writev, and writev would keep an iovec
			// array on the socket for the rest of the connection's life.
			var w int
			if w, err = c.nc.Write(batch[0]); w == len(batch[0]) {
				batch = batch[:0]
			} else {
				batch[0] = batch[0][w:]
			}
		} else {
			fb.batch = batch // WriteTo's pointer receiver would move a local batch to the heap
			_, err = fb.batch.WriteTo(c.nc)
			batch = fb.batch
		}
		var rest []byte
		if err != nil && len(batch) > 0 && c.opts.OnUnsent != nil {
			// What the kernel never took goes back to the owner, copied: the chunks return to the pool.
			for _, b := range batch {
				rest = append(rest, b...)
			}
		}
		for i, b := range chunks {
			putChunk(b)
			chunks[i] = nil
		}
		clear(full)
		batch = full[:0]
		c.bytesOut.Add(uint64(n))
		c.mu.Lock()
		c.pending -= n
		if rest != nil {
			c.handBack([][]byte{rest})
		}
		if err != nil && !c.closed {
			r := ReasonWriteError
			if errors.Is(err, os.ErrDeadlineExceeded) {
				r = ReasonSlowConsumer
			}
			c.closeLocked(r)
		}
		c.mu.Unlock()
	}
}

// handBack keeps output that was queued but never written for Options.OnUnsent (a cluster link re-sends
// it on another link), or returns it to the pool. Called with c.mu held; deliverUnsent hands it over,
// in order and in one piece, once the flusher is done.
func (c *Conn) handBack(chunks [][]byte) {
	for _, b := range chunks {
		if c.opts.OnUnsent != nil && len(b) > 0 {
			c.unsent = append(c.unsent, b)
		} else {
			putChunk(b)
		}
	}
}

// deliverUnsent hands the kept output to its owner; called with c.mu held once the connection is
// closed and no flusher runs.
func (c *Conn) deliverUnsent() {
	if len(c.unsent) > 0 {
		go c.opts.OnUnsent(c.unsent)
		c.unsent = nil
	}
}

// Flush waits until everything queued so far is written, or ctx ends.
func (c *Conn) Flush(ctx context.Context) error {
	c.mu.Lock()
	if !c.flushing {
		c.mu.Unlock()
		return nil
	}
	if c.flushDone == nil {
		c.flushDone = make(chan struct{})
	}
	done := c.flushDone
	c.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CloseAfter queues final bytes (a stream error, the closing stream tag), refuses further writes, and
// closes the connection once they are written.
func (c *Conn) CloseAfter(final []byte, r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.closed {
		return
	}
	c.closing = true
	c.reason = r
	if len(final) > 0 {
		c.appendLocked(final)
	}
	if len(c.out) == 0 {
		c.closeLocked(r)
		return
	}
	c.kickLocked()
	// A peer that does not read must not hold the connection open: the write deadline ends the
	// flusher, and this timer ends a connection whose flusher is stuck for any other reason. It is
	// stopped at the close, so a login rate of thousands a second does not leave as many timers.
	c.closeTimer = time.AfterFunc(c.opts.writeTimeout(), func() { c.Close(r) })
}

// Abort resets the connection now (SO_LINGER 0): for a peer whose direction is fenced by the kernel, a
// FIN would wait behind data that can never pass.
func (c *Conn) Abort(r Reason) {
	c.mu.Lock()
	c.closing = true
	c.abort = true
	c.closeLocked(r)
	c.mu.Unlock()
}

// Close closes the connection now; queued output is discarded.
func (c *Conn) Close(r Reason) {
	c.mu.Lock()
	c.closing = true
	c.closeLocked(r)
	c.mu.Unlock()
}

func (c *Conn) closeLocked(r Reason) {
	if c.closed {
		return
	}
	c.closed = true
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	if c.reason == ReasonNone {
		c.reason = r
	}
	discarded := len(c.out) > 0 || c.flushing
	switch {
	case discarded || c.abort || r == ReasonSlowConsumer || r == ReasonWriteError:
		// Output is being thrown away or the peer is not reading: reset rather than linger.
		c.sock.TCPConn.SetLinger(0)
		c.sock.TCPConn.Close()
	case r == ReasonStreamEnd || r == ReasonPeerClosed:
		// The peer ended first: nothing of ours can be cut short by its unread bytes.
		c.sock.TCPConn.Close()
	default:
		// Everything queued was written. Send FIN now and close a little later, so that bytes the
		// peer sent and we did not read (say, after a stream error) do not turn our close into a
		// reset that destroys the stream error before the peer reads it.
		c.sock.TCPConn.CloseWrite()
		// Wake a reader waiting hot on the socket: it parks, sees the close and ends.
		c.sock.TCPConn.SetReadDeadline(time.Now())
		time.AfterFunc(lingerAfterFIN, func() { c.sock.TCPConn.Close() })
	}
	if !c.flushing {
		c.handBack(c.out)
		c.out = nil
		c.deliverUnsent()
	}
	if l := c.onClose; l != nil {
		go l.ConnClosed(c.reason)
	}
	close(c.closeDone)
	if c.opts.Poller != nil {
		go c.wakeClosed()
	}
}

// lingerAfterFIN is how long a gracefully closed socket stays open for the peer's FIN.
const lingerAfterFIN = 2 * time.Second

// OnClose registers l to be told (on its own goroutine) when the connection closes; a connection has
// one listener, its owner, which an interface holds without an allocation (a closure per connection
// would be one more object per idle session).
func (c *Conn) OnClose(l CloseListener) {
	c.mu.Lock()
	if c.closed {
		r := c.reason
		c.mu.Unlock()
		go l.ConnClosed(r)
		return
	}
	c.onClose = l
	c.mu.Unlock()
}

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.closeDone }

// Reason returns why the connection closed, or ReasonNone while it is open.
func (c *Conn) Reason() Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		return ReasonNone
	}
	return c.reason
}

// Closing reports whether the connection accepts no more output.
func (c *Conn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.closed
}

// Idle returns how long nothing has been read.
func (c *Conn) Idle() time.Duration {
	return time.Duration(time.Now().UnixNano() - c.lastActive.Load())
}

// PauseRead stops reading from the peer until t; PauseWrite stops writing to it until t. Output keeps
// being queued (within MaxPending) while writing is paused.
func (c *Conn) PauseRead(t time.Time)  { c.readPause.Store(t.UnixNano()) }
func (c *Conn) PauseWrite(t time.Time) { c.writePause.Store(t.UnixNano()) }

// waitPause sleeps until the time in p, or until the connection closes; false means it closed.
func (c *Conn) waitPause(p *atomic.Int64) bool {
	d := time.Duration(p.Load() - time.Now().UnixNano())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closeDone:
		return false
	}
}

// spawn runs one of the connection's jobs on a goroutine: one of the poller's workers when there is a
// poller (their stacks are already grown, where a fresh goroutine grows its stack again through the
// whole read path on every wake-up), else a new one.
func (c *Conn) spawn(k jobKind) {
	j := job{c: c, kind: k}
	if c.opts.Poller != nil {
		c.opts.Poller.run(j)
		return
	}
	go j.do()
}

// A job is a connection and what to run for it. Workers take jobs rather than funcs: a method value
// is an allocation, and keeping one per connection was memory held by every idle session.
type job struct {
	c    *Conn
	kind jobKind
}

type jobKind uint8

const (
	jobFlush   jobKind = iota // write the queue
	jobLoop                   // read what the poller reported
	jobSilence                // the sweep found the connection silent for too long
)

func (j job) do() {
	switch j.kind {
	case jobFlush:
		j.c.flush()
	case jobLoop:
		j.c.loop()
	case jobSilence:
		j.c.onSilence()
	}
}

// Handler receives what a connection reads. Its methods are called by one goroutine at a time (the
// one that owns reading at that moment), never concurrently.
type Handler interface {
	// HandleToken handles one token. Its Elem is only valid during the call. A non-nil error stops the
	// reader; the handler has already queued whatever the peer should be told.
	HandleToken(t xml.Token) error
	// Silent is called when the peer has sent nothing for Options.Silence. It returns false to end the
	// connection as idle (Ended then gets ErrIdle).
	Silent() bool
	// Ended is called exactly once, when reading stops for good, with the reason: io.EOF, a
	// *xml.Error, ErrIdle, net.ErrClosed, the error HandleToken returned, or a read error.
	Ended(err error)
}

// ErrIdle is given to Handler.Ended when the handler gave up on a silent peer.
var ErrIdle = errors.New("connection idle")

// Serve reads and decodes until the connection ends, calling h. Between bursts the decoder's buffer goes
// back to its pool. With a Poller (Options.Poller) a connection with nothing to read is parked: Serve
// returns and no goroutine holds the connection until the poller sees it readable or its silence period
// fires, so an idle connection costs no goroutine stack. Without one, Serve blocks until the end.
func (c *Conn) Serve(dec *xml.Decoder, h Handler) {
	c.dec, c.h = dec, h
	c.loop()
}

// loop runs on whichever goroutine owns reading: the one that called Serve, then one started by a wake-up.
func (c *Conn) loop() {
	for {
		err := c.burst()
		if err == nil && c.opts.Poller == nil {
			err = c.wait(c.h)
			if err == nil {
				continue
			}
		}
		if err == nil && c.opts.Hot > 0 {
			var ready bool
			if ready, err = c.waitHot(); ready {
				continue
			}
		}
		if err != nil {
			c.finish(err)
			return
		}
		if c.park() {
			return
		}
	}
}

// waitHot waits in the runtime's own poller for up to Options.Hot: a connection in conversation is woken
// straight into its goroutine, without the hand-over from the epoll poller to a worker. It reports
// whether the socket became readable; false with a nil error means the connection went quiet.
func (c *Conn) waitHot() (bool, error) {
	c.sock.TCPConn.SetReadDeadline(time.Now().Add(c.opts.Hot))
	err := c.sock.waitReadable()
	// A deadline left in the past would fail every later read of the connection.
	c.sock.TCPConn.SetReadDeadline(time.Time{})
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil
	}
	return false, err
}

// burst decodes what is buffered and reads until the socket has nothing more; nil means it would block.
func (c *Conn) burst() error {
	dec, h := c.dec, c.h
	for {
		// Drain what is decoded before reading again: a STARTTLS or stream restart inside this batch
		// changes how the next bytes must be read.
		for {
			tok, err := dec.Next()
			if err == xml.ErrNeedMore {
				break
			}
			if err != nil {
				return err
			}
			if err := h.HandleToken(tok); err != nil {
				return err
			}
		}
		if c.sock.drained && c.tls == nil && c.opts.Poller != nil {
			// TLS may hold whole records in its own buffer, so only plaintext skips the check read.
			c.sock.drained = false
			dec.Release()
			return nil
		}
		if c.readPause.Load() > time.Now().UnixNano() {
			dec.Release()
			if !c.waitPause(&c.readPause) {
				return net.ErrClosed
			}
		}
		c.sock.nonblock = true
		n, err := dec.ReadFrom(c.nc)
		if n > 0 {
			c.bytesIn.Add(uint64(n))
			c.lastActive.Store(time.Now().UnixNano())
		}
		switch err {
		case nil:
			continue
		case ErrWouldBlock:
			dec.Release()
			return nil
		}
		return err
	}
}

// park hands the connection to the poller. It reports false when the connection must be read on at once
// (the poller could not take it and the caller should go on).
func (c *Conn) park() bool {
	c.pmu.Lock()
	if c.ended {
		c.pmu.Unlock()
		return true
	}
	select {
	case <-c.closeDone:
		// Closed while this goroutine was reading or waiting hot: nothing will wake a parked
		// connection whose close already happened, so end it here.
		c.pmu.Unlock()
		c.finish(net.ErrClosed)
		return true
	default:
	}
	c.parked = true
	c.parkedAt = time.Now().UnixNano()
	c.pmu.Unlock()
	if err := c.opts.Poller.arm(c); err != nil {
		if c.claim() {
			c.finish(fmt.Errorf("conn: park: %w", err))
		}
	}
	return true
}

// claim takes a parked connection back for reading; false if it was not parked (someone else owns it).
func (c *Conn) claim() bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if !c.parked {
		return false
	}
	c.parked = false
	return true
}

// silentSince reports whether the connection is parked and has been since before t (unix ns).
func (c *Conn) silentSince(t int64) bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.parked && c.parkedAt+int64(c.opts.silence()) <= t
}

// wake is called by the poller when a parked connection became readable (or was hung up).
func (c *Conn) wake() {
	if c.claim() {
		c.spawn(jobLoop)
	}
}

// onSilence runs when a parked connection stayed silent for Options.Silence (the poller's sweep).
func (c *Conn) onSilence() {
	if !c.claim() {
		return
	}
	if !c.h.Silent() {
		c.finish(ErrIdle)
		return
	}
	c.loop()
}

// wakeClosed ends a connection that was closed while parked.
func (c *Conn) wakeClosed() {
	if c.claim() {
		c.finish(net.ErrClosed)
	}
}

// finish ends reading for good and tells the handler, once.
func (c *Conn) finish(err error) {
	c.pmu.Lock()
	if c.ended {
		c.pmu.Unlock()
		return
	}
	c.ended = true
	c.parked = false
	c.pmu.Unlock()
	if c.opts.Poller != nil {
		c.opts.Poller.forget(c)
	}
	c.dec.Release()
	c.h.Ended(err)
}

// wait parks until the socket is readable, asking the handler what to do at each silence period.
func (c *Conn) wait(h Handler) error {
	for {
		// With TLS, the non-blocking read above returned ErrWouldBlock only after tls.Conn drained
		// its own buffer, so the socket is the truth here too.
		c.sock.TCPConn.SetReadDeadline(time.Now().Add(c.opts.silence()))
		err := c.sock.waitReadable()
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if !h.Silent() {
			return ErrIdle
		}
	}
}
