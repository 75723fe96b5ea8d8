// Package progress draws progress bars on a terminal (stderr) while a
// benchmark runs, and falls back to a periodic plain line when the output
// is not a terminal (CI logs), so a long run never looks hung.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bar is one progress bar. Add and Set are safe from any goroutine and cost
// one atomic operation; drawing happens on a ticker.
type Bar struct {
	w      io.Writer
	label  string
	total  int64
	unit   string
	n      atomic.Int64
	start  time.Time
	tty    bool
	every  time.Duration
	stop   chan struct{}
	done   sync.WaitGroup
	closed sync.Once
}

// New starts a bar counting up to total (0: unknown) items of unit.
func New(w io.Writer, label string, total int64, unit string) *Bar {
	b := &Bar{w: w, label: label, total: total, unit: unit, start: time.Now(), tty: isTerminal(w), stop: make(chan struct{})}
	b.every = 5 * time.Second
	if b.tty {
		b.every = 200 * time.Millisecond
	}
	b.done.Add(1)
	go b.loop()
	return b
}

// Discard returns a bar that draws nothing (for tests).
func Discard(label string, total int64) *Bar { return New(io.Discard, label, total, "") }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Add advances the bar by d.
func (b *Bar) Add(d int64) { b.n.Add(d) }

// Set moves the bar to n.
func (b *Bar) Set(n int64) { b.n.Store(n) }

// Value returns the current count.
func (b *Bar) Value() int64 { return b.n.Load() }

func (b *Bar) loop() {
	defer b.done.Done()
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.draw(false)
		}
	}
}

// Line renders the bar as text (without carriage return or newline).
func (b *Bar) Line() string {
	n := b.n.Load()
	el := time.Since(b.start)
	rate := 0.0
	if s := el.Seconds(); s > 0 {
		rate = float64(n) / s
	}
	const width = 30
	var bar string
	if b.total > 0 {
		filled := int(min(n, b.total) * width / b.total)
		bar = "[" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + "] "
		return fmt.Sprintf("%-34s %s%d/%d %s  %.0f/s  %s", b.label, bar, n, b.total, b.unit, rate, el.Truncate(100*time.Millisecond))
	}
	return fmt.Sprintf("%-34s %d %s  %.0f/s  %s", b.label, n, b.unit, rate, el.Truncate(100*time.Millisecond))
}

func (b *Bar) draw(final bool) {
	switch {
	case b.tty && final:
		fmt.Fprintf(b.w, "\r\033[K%s\n", b.Line())
	case b.tty:
		fmt.Fprintf(b.w, "\r\033[K%s", b.Line())
	default:
		fmt.Fprintln(b.w, b.Line())
	}
}

// Done stops the bar and draws its final state once.
func (b *Bar) Done() {
	b.closed.Do(func() {
		close(b.stop)
		b.done.Wait()
		b.draw(true)
	})
}
