package hist

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	prevHi := int64(-1)
	for i := range nBucket {
		lo, hi := bounds(i)
		if int64(lo) != prevHi+1 && !(i == nBucket-1) {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if index(lo) != i || index(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps back to %d/%d", i, lo, hi, index(lo), index(hi))
		}
		if lo >= 1<<subBits && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-12 {
			t.Fatalf("bucket %d [%d,%d] is wider than 1/64", i, lo, hi)
		}
		prevHi = int64(hi)
		if hi == ^uint64(0)>>1 {
			break // the int64 range is covered
		}
	}
}

func TestQuantilesAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() int64
	}{
		{"uniform-us", func() int64 { return r.Int64N(1_000_000) }},
		{"exp-ms", func() int64 { return int64(r.ExpFloat64() * 2e6) }},
		{"small", func() int64 { return r.Int64N(100) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 20000)
			for i := range vals {
				vals[i] = tt.gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				idx := int(q*float64(len(vals))+0.999999) - 1
				idx = max(0, min(idx, len(vals)-1))
				exact := vals[idx]
				got := h.Quantile(q)
				if got < exact || float64(got-exact) > float64(exact)/64+1 {
					t.Errorf("q%.3f = %d, exact %d", q, got, exact)
				}
			}
			if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
				t.Errorf("min/max/count = %d/%d/%d", h.Min(), h.Max(), h.Count())
			}
		})
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range int64(1000) {
		if i%2 == 0 {
			a.Record(i * 1000)
		} else {
			b.Record(i * 1000)
		}
		all.Record(i * 1000)
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%v = %d, want %d", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != 1000 || a.Mean() != all.Mean() {
		t.Errorf("merged count %d mean %v", a.Count(), a.Mean())
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram reports values")
	}
}

func BenchmarkRecord(b *testing.B) {
	b.ReportAllocs()
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(int64(i) * 7919)
	}
}
