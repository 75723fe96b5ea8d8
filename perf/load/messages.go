package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starling-xmpp/starling/perf/hist"
	"github.com/starling-xmpp/starling/perf/xmppclient"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// pair is one sender and one receiver. The sender puts its timestamp in
// the message id; the receiver reads it back, so latency needs no shared
// state beyond a clock base.
type pair struct {
	snd, rcv *xmppclient.Client
	prefix   []byte // "<message to='…' type='chat' id='"
	suffix   []byte // "'><body>…</body></message>"
	sent     atomic.Int64
	recv     atomic.Int64
	wake     chan struct{} // closed-loop: the receiver tells the sender a slot freed
	h        hist.Histogram
	// hs measures from the moment the generator wrote the message (latency only): the part of the
	// delay that is the server's and the network's, without the generator's own pacing lateness.
	hs hist.Histogram
	// late is the sender's lateness (actual - intended send time) when the
	// pair has a sender of its own (PaceTimers).
	late hist.Histogram
	rerr error
}

// Messages holds what the throughput and latency scenarios share.
type Messages struct {
	Pairs     int
	Security  xmppclient.Security
	Mechanism string
	Payload   int           // body bytes
	Warmup    time.Duration // excluded from the figures
	Duration  time.Duration // measured window
	// Drain is how long to wait for messages in flight after the window
	// (counted lost after it); 0 means 3 s.
	Drain time.Duration
}

func (m *Messages) drainTime() time.Duration {
	if m.Drain <= 0 {
		return 3 * time.Second
	}
	return m.Drain
}

func (m *Messages) check(env Env) error {
	if m.Pairs < 1 || m.Duration <= 0 || m.Payload < 0 || m.Warmup < 0 {
		return fmt.Errorf("need pairs >= 1, duration > 0 (got %d, %v)", m.Pairs, m.Duration)
	}
	if len(env.Accounts) < 2*m.Pairs {
		return fmt.Errorf("%d accounts needed, %d created", 2*m.Pairs, len(env.Accounts))
	}
	return nil
}

// setup logs in senders on the first node and receivers on the last (the
// same node for a single server; two nodes of a cluster otherwise).
func (m *Messages) setup(ctx context.Context, t Target, env Env, label string) ([]*pair, error) {
	sa, err := t.Nodes[0].Addr(m.Security)
	if err != nil {
		return nil, err
	}
	ra, err := t.Nodes[len(t.Nodes)-1].Addr(m.Security)
	if err != nil {
		return nil, err
	}
	bar := env.bar(label+" log in", int64(2*m.Pairs), "sessions")
	defer bar.Done()
	snd, err := dialAll(ctx, sa, t, m.Security, m.Mechanism, env.Accounts[:m.Pairs], "s", env.Cache, bar)
	if err != nil {
		return nil, fmt.Errorf("log in senders: %w", err)
	}
	rcv, err := dialAll(ctx, ra, t, m.Security, m.Mechanism, env.Accounts[m.Pairs:2*m.Pairs], "r", env.Cache, bar)
	if err != nil {
		closeAll(snd)
		return nil, fmt.Errorf("log in receivers: %w", err)
	}
	body := strings.Repeat("x", m.Payload)
	ps := make([]*pair, m.Pairs)
	for i := range ps {
		ps[i] = &pair{snd: snd[i], rcv: rcv[i], wake: make(chan struct{}, 1),
			prefix: []byte("<message to='" + rcv[i].JID() + "' type='chat' id='"),
			suffix: []byte("'><body>" + body + "</body></message>")}
	}
	return ps, nil
}

func (p *pair) appendMsg(b []byte, ts int64) []byte {
	b = append(b, p.prefix...)
	b = appendInt(b, ts)
	return append(b, p.suffix...)
}

// appendTimed is appendMsg with the actual send time after the intended one: id='intended.sent'.
func (p *pair) appendTimed(b []byte, ts, sent int64) []byte {
	b = append(b, p.prefix...)
	b = appendInt(b, ts)
	b = append(b, '.')
	b = appendInt(b, sent)
	return append(b, p.suffix...)
}

func appendInt(b []byte, v int64) []byte {
	var tmp [20]byte
	i := len(tmp)
	if v == 0 {
		return append(b, '0')
	}
	for v > 0 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

// parseInt parses a non-negative decimal id; ok is false for anything else.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// receive reads until the connection fails or closes. It records the
// latency of every message whose timestamp is at or after from (ns since
// base). It never allocates per message.
func (p *pair) receive(base time.Time, from *atomic.Int64) {
	for {
		tok, err := p.rcv.Next()
		if err != nil {
			p.rerr = err
			return
		}
		if tok.Kind != xml.ElementKind || string(tok.Elem.Name()) != "message" {
			continue
		}
		id := tok.Elem.Attr("id")
		sent := int64(-1)
		if i := bytes.IndexByte(id, '.'); i >= 0 {
			v, ok := parseInt(id[i+1:])
			if !ok {
				continue
			}
			id, sent = id[:i], v
		}
		ts, ok := parseInt(id)
		if !ok {
			continue // not ours (e.g. a server notice)
		}
		now := int64(time.Since(base))
		if ts >= from.Load() {
			p.h.Record(now - ts)
			if sent >= 0 {
				p.hs.Record(now - sent)
			}
		}
		p.recv.Add(1)
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func closePairs(ps []*pair) {
	for _, p := range ps {
		p.snd.Close()
		p.rcv.Close()
	}
}

// drain waits until every sent message arrived or the timeout passes, and
// returns how many never arrived.
func drain(ps []*pair, timeout time.Duration) int64 {
	deadline := time.Now().Add(timeout)
	for {
		var missing int64
		for _, p := range ps {
			missing += p.sent.Load() - p.recv.Load()
		}
		if missing <= 0 || time.Now().After(deadline) {
			return max(missing, 0)
		}
		time.Sleep(10 * time.Millisecond) // bounded poll of counters at the end of a run
	}
}

func sum(ps []*pair, f func(*pair) int64) int64 {
	var n int64
	for _, p := range ps {
		n += f(p)
	}
	return n
}

// Throughput measures one-to-one messages per second in a closed loop: each
// pair keeps Window messages in flight, so the server runs at saturation
// without unbounded queues.
type Throughput struct {
	Messages
	Window int
}

// Name implements Scenario.
func (s *Throughput) Name() string { return "throughput" }

// Variant implements Scenario.
func (s *Throughput) Variant() string {
	return fmt.Sprintf("pairs=%d window=%d %v", s.Pairs, s.Window, s.Security)
}

// Accounts implements Scenario.
func (s *Throughput) Accounts() int { return 2 * s.Pairs }

// Run implements Scenario.
func (s *Throughput) Run(ctx context.Context, t Target, env Env) (Result, error) {
	res := Result{Scenario: s.Name(), Variant: s.Variant(), Target: t.Name, Metrics: map[string]float64{}}
	if err := s.check(env); err != nil || s.Window < 1 {
		return res, errors.Join(fmt.Errorf("throughput: bad parameters (window %d)", s.Window), err)
	}
	ps, err := s.setup(ctx, t, env, t.Name+" throughput")
	if err != nil {
		return res, err
	}
	defer closePairs(ps)
	base := time.Now()
	var from atomic.Int64
	from.Store(int64(s.Warmup))
	stop := make(chan struct{})
	var rwg, swg sync.WaitGroup
	for _, p := range ps {
		rwg.Go(func() { p.receive(base, &from) })
	}
	var serr atomic.Pointer[error]
	for _, p := range ps {
		swg.Go(func() {
			var sent int64
			for {
				free := int64(s.Window) - (sent - p.recv.Load())
				if free > 0 {
					b := p.snd.Buffer()
					now := int64(time.Since(base))
					for range free {
						b = p.appendMsg(b, now)
					}
					p.snd.SetBuffer(b)
					sent += free
					p.sent.Store(sent)
					if err := p.snd.Flush(); err != nil {
						serr.CompareAndSwap(nil, &err)
						return
					}
				}
				select {
				case <-stop:
					return
				case <-p.wake:
				}
			}
		})
	}
	bar := env.bar(fmt.Sprintf("%s throughput", t.Name), 0, "msgs")
	m := newMeter(t, nil)
	var r0 int64
	warm := time.NewTimer(s.Warmup - time.Since(base))
	defer warm.Stop()
	end := time.NewTimer(s.Warmup + s.Duration - time.Since(base))
	defer end.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	began := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-warm.C:
			r0 = sum(ps, func(p *pair) int64 { return p.recv.Load() })
			m.begin()
			began = true
		case <-end.C:
			break loop
		case <-tick.C:
			bar.Set(sum(ps, func(p *pair) int64 { return p.recv.Load() }))
			if serr.Load() != nil {
				break loop
			}
		}
	}
	tick.Stop()
	r1 := sum(ps, func(p *pair) int64 { return p.recv.Load() })
	if began {
		m.end(&res)
	}
	close(stop)
	swg.Wait()
	bar.Done()
	lost := drain(ps, s.drainTime())
	for _, p := range ps {
		p.rcv.Abort() // ends the receive loops
	}
	rwg.Wait()
	if e := serr.Load(); e != nil {
		return res, fmt.Errorf("throughput: send: %w", *e)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if !began {
		return res, errors.New("throughput: the run ended before the warm-up")
	}
	var h, hs hist.Histogram
	for _, p := range ps {
		h.Merge(&p.h)
		hs.Merge(&p.hs)
	}
	n := float64(r1 - r0)
	res.Metrics["messages"] = n
	res.Metrics["msgs_per_s"] = n / res.Seconds
	res.Metrics["p50_ms"] = ms(h.Quantile(0.5))
	res.Metrics["p99_ms"] = ms(h.Quantile(0.99))
	res.Metrics["lost"] = float64(lost)
	if n > 0 {
		res.Metrics["server_cpu_us_per_msg"] = res.ServerCPU * 1e6 / n
		res.Metrics["generator_cpu_us_per_msg"] = res.GeneratorCPU * 1e6 / n
	} else {
		return res, errors.New("throughput: no message arrived in the window")
	}
	return res, nil
}

// Latency sends at a fixed total rate in an open loop and measures each
// message's latency from the time it was meant to be sent, so a server that
// stalls is charged for the whole stall (no coordinated omission).
type Latency struct {
	Messages
	Rate   float64 // messages per second, all pairs together
	Pacing Pacing  // how the generator waits for each send time
}

// Name implements Scenario.
func (s *Latency) Name() string { return "latency" }

// Variant implements Scenario.
func (s *Latency) Variant() string {
	v := fmt.Sprintf("rate=%.0f pairs=%d %v", s.Rate, s.Pairs, s.Security)
	if s.Pacing != PaceThread {
		v += " pacing=" + s.Pacing.String()
	}
	return v
}

// Accounts implements Scenario.
func (s *Latency) Accounts() int { return 2 * s.Pairs }

// Percentiles reported by the latency scenario.
var Percentiles = []float64{50, 90, 99, 99.9, 99.99}

// Run implements Scenario.
func (s *Latency) Run(ctx context.Context, t Target, env Env) (Result, error) {
	res := Result{Scenario: s.Name(), Variant: s.Variant(), Target: t.Name, Metrics: map[string]float64{}}
	if err := s.check(env); err != nil || s.Rate <= 0 || s.Rate > 1e7 {
		return res, errors.Join(fmt.Errorf("latency: bad parameters (rate %v)", s.Rate), err)
	}
	ps, err := s.setup(ctx, t, env, t.Name+" latency")
	if err != nil {
		return res, err
	}
	defer closePairs(ps)
	interval := time.Duration(float64(time.Second) * float64(s.Pairs) / s.Rate)
	if interval <= 0 {
		return res, fmt.Errorf("latency: rate %v too high for %d pairs", s.Rate, s.Pairs)
	}
	clk := newClock()
	base := clk.base
	var from atomic.Int64
	from.Store(int64(s.Warmup))
	var rwg, swg sync.WaitGroup
	for _, p := range ps {
		rwg.Go(func() { p.receive(base, &from) })
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inWindow atomic.Int64 // messages meant to be sent inside the window
	var serr atomic.Pointer[error]
	fail := func(err error) { serr.CompareAndSwap(nil, &err) }
	var late hist.Histogram // the generator's lateness: actual - intended send time
	if s.Pacing == PaceTimers {
		for i, p := range ps {
			swg.Go(func() {
				if err := s.sendPair(sctx, p, i, len(ps), interval, base, &inWindow); err != nil {
					fail(err)
				}
			})
		}
	} else {
		swg.Go(func() {
			var w waiter
			if s.Pacing == PaceSpin {
				t := time.NewTimer(time.Hour)
				defer t.Stop()
				w = &spinWaiter{c: clk, timer: t}
			} else {
				defer lockThread()()
				w = &threadWaiter{c: clk}
			}
			if err := s.sendAll(sctx, ps, w, clk, &late, &inWindow); err != nil && sctx.Err() == nil {
				fail(err)
			}
		})
	}
	bar := env.bar(fmt.Sprintf("%s latency %.0f/s", t.Name, s.Rate), int64(s.Rate*(s.Warmup+s.Duration).Seconds()), "msgs")
	m := newMeter(t, nil)
	warm := time.NewTimer(s.Warmup)
	tick := time.NewTicker(200 * time.Millisecond)
	done := make(chan struct{})
	go func() { swg.Wait(); close(done) }()
	began := false
loop:
	for {
		select {
		case <-warm.C:
			m.begin()
			began = true
		case <-tick.C:
			bar.Set(sum(ps, func(p *pair) int64 { return p.recv.Load() }))
		case <-done:
			break loop
		case <-ctx.Done():
			cancel()
			<-done
			break loop
		}
	}
	tick.Stop()
	warm.Stop()
	if began {
		m.end(&res) // the window is the sending time; the drain below is not in it
	}
	lost := drain(ps, s.drainTime())
	bar.Set(sum(ps, func(p *pair) int64 { return p.recv.Load() }))
	bar.Done()
	for _, p := range ps {
		p.rcv.Abort()
	}
	rwg.Wait()
	if e := serr.Load(); e != nil {
		return res, fmt.Errorf("latency: send: %w", *e)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	var h, hs hist.Histogram
	for _, p := range ps {
		h.Merge(&p.h)
		hs.Merge(&p.hs)
		late.Merge(&p.late)
	}
	n := float64(h.Count())
	if n == 0 || !began {
		return res, errors.New("latency: no message arrived in the window")
	}
	res.Metrics["messages"] = n
	res.Metrics["target_rate"] = s.Rate
	res.Metrics["achieved_rate"] = float64(inWindow.Load()) / s.Duration.Seconds()
	res.Metrics["lost"] = float64(lost)
	res.Metrics["max_ms"] = ms(h.Max())
	res.Metrics["mean_ms"] = h.Mean() / 1e6
	for _, q := range Percentiles {
		v := ms(h.Quantile(q / 100))
		res.Metrics[fmt.Sprintf("p%v_ms", q)] = v
		res.Points = append(res.Points, Point{Series: "latency_ms", X: q, Y: v})
	}
	// From the actual send: what the server and the network added. The difference to the figures
	// above is the generator's pacing, measured itself as pace_*: how late the generator wrote each
	// message after its intended time.
	for _, q := range []float64{50, 99, 99.9} {
		res.Metrics[fmt.Sprintf("sent_p%v_ms", q)] = ms(hs.Quantile(q / 100))
		res.Metrics[fmt.Sprintf("pace_p%v_ms", q)] = ms(late.Quantile(q / 100))
	}
	res.Metrics["pace_max_ms"] = ms(late.Max())
	res.Metrics["server_cpu_us_per_msg"] = res.ServerCPU * 1e6 / n
	res.Metrics["generator_cpu_us_per_msg"] = res.GeneratorCPU * 1e6 / n
	return res, nil
}

// sendAll is the sender of PaceThread and PaceSpin: one goroutine for all
// pairs, on one schedule of the total rate, where message k is meant for
// k/rate after the start and goes to pair k mod pairs (so each pair sends
// at the per-pair rate, the pairs staggered evenly). After a wake-up it
// sends every message due, each stamped with its intended time and the
// actual one, and records how late it was.
func (s *Latency) sendAll(ctx context.Context, ps []*pair, w waiter, clk clock, late *hist.Histogram, inWindow *atomic.Int64) error {
	gap := float64(time.Second) / s.Rate
	endAt := int64(s.Warmup + s.Duration)
	warm := int64(s.Warmup)
	dirty := make([]int, 0, len(ps)) // pairs with messages to flush
	marked := make([]bool, len(ps))
	sent := make([]int64, len(ps))
	var k int64
	next := int64(0)
	for next < endAt {
		if err := w.wait(ctx, next); err != nil {
			return err
		}
		now := clk.now()
		for n := 0; next <= now && next < endAt && n < 10000; n++ {
			i := int(k % int64(len(ps)))
			p := ps[i]
			p.snd.SetBuffer(p.appendTimed(p.snd.Buffer(), next, now)) // the intended time first, not now
			sent[i]++
			if next >= warm {
				late.Record(now - next)
				inWindow.Add(1)
			}
			if !marked[i] {
				marked[i] = true
				dirty = append(dirty, i)
			}
			k++
			next = int64(float64(k) * gap)
		}
		for _, i := range dirty {
			p := ps[i]
			marked[i] = false
			p.sent.Store(sent[i])
			if err := p.snd.Flush(); err != nil {
				return fmt.Errorf("send to %s: %w", p.rcv.JID(), err)
			}
		}
		dirty = dirty[:0]
	}
	return nil
}

// sendPair is PaceTimers' sender of pair i of n: a Go timer per pair.
func (s *Latency) sendPair(ctx context.Context, p *pair, i, n int, interval time.Duration, base time.Time, inWindow *atomic.Int64) error {
	endAt := int64(s.Warmup + s.Duration)
	// Stagger the pairs over one interval so sends spread evenly.
	next := int64(interval) * int64(i) / int64(n)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var sent int64
	for next < endAt {
		now := int64(time.Since(base))
		if next > now {
			timer.Reset(time.Duration(next - now))
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
			now = int64(time.Since(base))
		}
		b := p.snd.Buffer()
		for k := 0; next <= now && next < endAt && k < 10000; k++ {
			b = p.appendTimed(b, next, now) // the intended time first, not now
			if next >= int64(s.Warmup) {
				p.late.Record(now - next)
				inWindow.Add(1)
			}
			next += int64(interval)
			sent++
		}
		p.snd.SetBuffer(b)
		p.sent.Store(sent)
		if err := p.snd.Flush(); err != nil {
			return err
		}
	}
	return nil
}
