package load

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Pacing is how the latency scenario's generator waits for each message's
// intended send time. Latency is measured from the intended time whatever
// the pacing; pacing decides how much of it is the generator's own lateness
// (reported beside it as the pace_* metrics).
type Pacing int

// The pacings. The zero value is the precise one.
const (
	// PaceThread sends for all pairs from one goroutine locked to its own
	// OS thread, which sleeps with clock_nanosleep (absolute, 1 ns timer
	// slack) until threadSpin before the intended time and spins the rest.
	// Go's timers cannot do this: an idle Go process waits in epoll with
	// millisecond resolution, so a sub-millisecond sleep ends up to 1 ms
	// late. One thread also replaces a timer per pair.
	PaceThread Pacing = iota
	// PaceSpin sends for all pairs from one goroutine that sleeps on a Go
	// timer until spinWindow before the intended time, then yields
	// (runtime.Gosched) until it is due. Precise, but at rates where the
	// gap between messages is under spinWindow it spins all the time: a
	// core taken from the server under test.
	PaceSpin
	// PaceTimers gives each pair a sender that sleeps on its own Go timer:
	// the generator as it was, kept to measure the difference.
	PaceTimers
)

// Pacings lists the pacings by name, for flags.
var Pacings = map[string]Pacing{"thread": PaceThread, "spin": PaceSpin, "timers": PaceTimers}

func (p Pacing) String() string {
	for n, v := range Pacings {
		if v == p {
			return n
		}
	}
	return fmt.Sprintf("pacing(%d)", int(p))
}

// ParsePacing returns the pacing named s.
func ParsePacing(s string) (Pacing, error) {
	p, ok := Pacings[s]
	if !ok {
		return 0, fmt.Errorf("unknown pacing %q (have thread, spin, timers)", s)
	}
	return p, nil
}

const (
	// spinWindow is how early PaceSpin stops sleeping on a Go timer: more
	// than the timer's usual lateness when the process is busy.
	spinWindow = 200 * time.Microsecond
	// threadSpin is how early PaceThread's sleep ends: about what a
	// nanosleep wake-up takes on an idle core, so the spin stays short.
	threadSpin = 20 * time.Microsecond
	// maxSleep bounds one sleep so that a cancelled run stops promptly.
	maxSleep = 50 * time.Millisecond
)

// waiter waits until an intended time, in ns since a base time.
type waiter interface {
	wait(ctx context.Context, at int64) error
}

// clock is the base of a run's schedule and its reading.
type clock struct {
	base time.Time
	mono int64 // CLOCK_MONOTONIC at base, in ns (Go's monotonic clock on Linux)
}

func newClock() clock {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	base := time.Now()
	return clock{base: base, mono: ts.Nano()}
}

func (c clock) now() int64 { return int64(time.Since(c.base)) }

// spinWaiter is PaceSpin's: a Go timer, then Gosched until due.
type spinWaiter struct {
	c     clock
	timer *time.Timer
}

func (w *spinWaiter) wait(ctx context.Context, at int64) error {
	for {
		rem := at - w.c.now()
		if rem <= 0 {
			return nil
		}
		if rem <= int64(spinWindow) {
			runtime.Gosched()
			continue
		}
		w.timer.Reset(min(time.Duration(rem)-spinWindow, maxSleep))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.timer.C:
		}
	}
}

// threadWaiter is PaceThread's. Its goroutine must stay locked to the
// thread whose timer slack it set (see lockThread).
type threadWaiter struct {
	c clock
}

// lockThread pins the calling goroutine to its thread and asks the kernel
// for exact wake-ups on it (the default slack lets a sleep end 50 µs late).
// The returned func restores the default slack and unlocks: it must run
// before the goroutine ends. A goroutine that ends locked takes its thread
// with it, and a server this process started from that thread would get
// its parent-death signal (PR_SET_PDEATHSIG follows the thread, not the
// process): the first version of this pacer killed ejabberd and Prosody so.
func lockThread() (unlock func()) {
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	return func() {
		unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0) // 0: back to the thread's default
		runtime.UnlockOSThread()
	}
}

func (w *threadWaiter) wait(ctx context.Context, at int64) error {
	for {
		rem := at - w.c.now()
		if rem <= 0 {
			return nil
		}
		if rem <= int64(threadSpin) {
			continue // a few µs: spinning is cheaper than another wake-up
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		until := w.c.mono + at - int64(threadSpin)
		if rem > int64(maxSleep) {
			until = w.c.mono + w.c.now() + int64(maxSleep)
		}
		ts := unix.NsecToTimespec(until)
		// EINTR (a signal) only ends the sleep early; the loop sleeps again.
		unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
	}
}
