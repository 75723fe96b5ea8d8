// Package hist is a log-linear latency histogram in the manner of
// HdrHistogram: fixed memory, constant-time recording without allocation,
// and a relative error under 1/64 at every magnitude. Each goroutine records
// into its own Histogram; Merge combines them afterwards.
package hist

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits = 7 // bucket resolution: values below 2^subBits are exact
	half    = 1 << (subBits - 1)
	maxExp  = 64 - subBits + 1 // exponents up to the full uint64 range
	nBucket = 1<<subBits + maxExp*half
)

// Histogram counts non-negative int64 values (nanoseconds, typically).
// The zero value is ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts   [nBucket]uint64
	n        uint64
	sum      float64
	min, max int64
}

func index(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1
	m := v >> e                  // in [half, 2*half)
	return 1<<subBits + (e-1)*half + int(m-half)
}

// bounds returns the smallest and largest value that fall in bucket i.
func bounds(i int) (lo, hi uint64) {
	if i < 1<<subBits {
		return uint64(i), uint64(i)
	}
	j := i - 1<<subBits
	e := j/half + 1
	m := uint64(j%half + half)
	lo = m << e
	return lo, lo + (1 << e) - 1
}

// Record adds one value; negative values count as zero.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[index(uint64(v))]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// RecordDuration adds one duration.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value (exact).
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest recorded value (exact).
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the arithmetic mean, or 0 without values.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q in [0, 1]: the highest value
// equivalent to the bucket holding the q-th recorded value, clamped to the
// exact maximum, so a percentile is never reported lower than it was.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	q = math.Min(math.Max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bounds(i)
			return min(int64(hi), h.max)
		}
	}
	return h.max
}

// Reset forgets every value.
func (h *Histogram) Reset() { *h = Histogram{} }
