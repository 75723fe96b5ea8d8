package memtune

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

const mb = 1 << 20

func TestControllerSteps(t *testing.T) {
	// Live heap 32 MiB: quiet below 4 MiB/s of allocation with the default share of 1/8.
	tests := []struct {
		name  string
		rates []uint64 // MiB allocated in each 1 s interval
		want  []action // one per interval
	}{
		{"busy stays busy", []uint64{50, 60, 40}, []action{none, none, none}},
		{"quiet after two low seconds", []uint64{1, 1, 1, 1}, []action{none, goQuiet, stayQuiet, stayQuiet}},
		{"a lull inside a storm is not quiet", []uint64{50, 1, 50, 1, 50}, []action{none, none, none, none, none}},
		{"busy again at once", []uint64{1, 1, 20, 1, 1, 1}, []action{none, goQuiet, goBusy, none, goQuiet, stayQuiet}},
		{"once quiet, busy only at twice the rate", []uint64{1, 1, 6, 7, 9, 1}, []action{none, goQuiet, stayQuiet, stayQuiet, goBusy, none}},
		{"just under the share is quiet", []uint64{3, 3}, []action{none, goQuiet}},
		{"at the share is busy", []uint64{4, 4, 4}, []action{none, none, none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newController(Options{Interval: time.Second, QuietFor: 2 * time.Second})
			if got := c.step(sample{at: 0, allocs: 0, live: 32 * mb}); got != none {
				t.Fatalf("first sample: %v, want none", got)
			}
			var allocs uint64
			var got []action
			for i, r := range tt.rates {
				allocs += r * mb
				got = append(got, c.step(sample{at: time.Duration(i+1) * time.Second, allocs: allocs, live: 32 * mb}))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("actions %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSmallHeapFloor(t *testing.T) {
	// A tiny heap must not make every allocation look busy: the share applies to at least 1 MiB.
	c := newController(Options{Interval: time.Second, QuietFor: 2 * time.Second})
	c.step(sample{at: 0, allocs: 0, live: 1000})
	c.step(sample{at: time.Second, allocs: 100 << 10, live: 1000})
	if got := c.step(sample{at: 2 * time.Second, allocs: 200 << 10, live: 1000}); got != goQuiet {
		t.Fatalf("100 KiB/s on a tiny heap: %v, want goQuiet", got)
	}
}

type fakeRuntime struct {
	mu      sync.Mutex
	allocs  uint64
	percent []int
	frees   int
	reads   chan struct{} // one per read, so the test knows a sample was taken
}

func (f *fakeRuntime) read() (uint64, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads <- struct{}{}
	return f.allocs, 32 * mb
}
func (f *fakeRuntime) setGCPercent(p int) {
	f.mu.Lock()
	f.percent = append(f.percent, p)
	f.mu.Unlock()
}
func (f *fakeRuntime) freeOSMemory() { f.mu.Lock(); f.frees++; f.mu.Unlock() }

func TestRunAppliesAndRestores(t *testing.T) {
	rt := &fakeRuntime{reads: make(chan struct{}, 16)}
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Unix(1000, 0)
	go func() {
		run(ctx, newController(Options{Busy: 90, Quiet: 20, QuietFor: 2 * time.Second}), rt, start, tick)
		close(done)
	}()
	// Two quiet seconds, then a busy one.
	<-rt.reads
	tick <- start.Add(time.Second)
	<-rt.reads
	tick <- start.Add(2 * time.Second)
	<-rt.reads
	<-rt.reads // the read after returning pages
	rt.mu.Lock()
	rt.allocs += 100 * mb
	rt.mu.Unlock()
	tick <- start.Add(3 * time.Second)
	<-rt.reads
	cancel()
	<-done
	if want := []int{90, 20, 90, 90}; !slices.Equal(rt.percent, want) {
		t.Errorf("GC percents set %v, want %v", rt.percent, want)
	}
	if rt.frees != 1 {
		t.Errorf("free pages returned %d times, want 1", rt.frees)
	}
}

func TestRunOffWhenGOGCSet(t *testing.T) {
	done := make(chan struct{})
	go func() { Run(context.Background(), Options{}, "50"); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run with GOGC set did not return")
	}
}

func TestDefaultsQuietAfterOneSecond(t *testing.T) {
	c := newController(Options{})
	step := c.opts.Interval
	var got []action
	for i := range 5 { // a node that allocates nothing
		got = append(got, c.step(sample{at: time.Duration(i) * step, allocs: 0, live: 32 * mb}))
	}
	if want := []action{none, none, goQuiet, stayQuiet, stayQuiet}; !slices.Equal(got, want) {
		t.Errorf("actions %v, want %v (interval %v, quiet after %v)", got, want, step, c.opts.QuietFor)
	}
}
