package load

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/starling-xmpp/starling/perf/peer"
	"github.com/starling-xmpp/starling/perf/procstat"
	"github.com/starling-xmpp/starling/perf/xmppclient"
	"github.com/starling-xmpp/starling/xmpp/sasl"
)

// HolderSpec says which sessions a Holder opens.
type HolderSpec struct {
	Addr      string              `json:"addr"`
	Domain    string              `json:"domain"`
	Security  xmppclient.Security `json:"security"`
	Mechanism string              `json:"mechanism"`
	SourceIP  string              `json:"source_ip"`
	Accounts  []peer.Account      `json:"accounts"`
}

// Holder keeps idle sessions open, in this process or in a helper process
// (one process may hold at most about 19 000 sockets here).
type Holder interface {
	// Hold grows the number of open sessions to n.
	Hold(ctx context.Context, n int) error
	// CPU returns the CPU time the holder used so far.
	CPU() time.Duration
	// Close ends every session (and the helper process).
	Close() error
}

// HolderFactory starts a Holder.
type HolderFactory func(ctx context.Context, spec HolderSpec) (Holder, error)

// LocalHolder holds sessions in this process.
type LocalHolder struct {
	spec    HolderSpec
	cache   *sasl.SaltCache
	clients []*xmppclient.Client
	// OnLogin, when set, is called after each new session.
	OnLogin func()
}

// NewLocalHolder returns a holder in this process.
func NewLocalHolder(spec HolderSpec, cache *sasl.SaltCache) *LocalHolder {
	return &LocalHolder{spec: spec, cache: cache}
}

// Hold implements Holder.
func (h *LocalHolder) Hold(ctx context.Context, n int) error {
	if n > len(h.spec.Accounts) {
		return fmt.Errorf("hold %d sessions: only %d accounts", n, len(h.spec.Accounts))
	}
	if n <= len(h.clients) {
		return nil
	}
	accts := h.spec.Accounts[len(h.clients):n]
	var next atomic.Int64
	fresh := make([]*xmppclient.Client, len(accts))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(accts) || ctx.Err() != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				c, err := xmppclient.Dial(dctx, xmppclient.Config{Addr: h.spec.Addr, LocalAddr: h.spec.SourceIP,
					Domain: h.spec.Domain, User: accts[i].User, Password: accts[i].Password, Resource: "idle",
					Security: h.spec.Security, Mechanism: h.spec.Mechanism, Cache: h.cache, Presence: true})
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				c.Release()
				fresh[i] = c
				if h.OnLogin != nil {
					h.OnLogin()
				}
			}
		})
	}
	wg.Wait()
	for _, c := range fresh {
		if c != nil {
			h.clients = append(h.clients, c)
		}
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return fmt.Errorf("hold %d sessions (have %d): %w", n, len(h.clients), firstErr)
	}
	return nil
}

// Held returns the number of open sessions.
func (h *LocalHolder) Held() int { return len(h.clients) }

// CPU implements Holder; the caller's own CPU time already includes it.
func (h *LocalHolder) CPU() time.Duration { return 0 }

// Close implements Holder.
func (h *LocalHolder) Close() error {
	for _, c := range h.clients {
		c.Abort()
	}
	h.clients = nil
	return nil
}

// ServeHolder runs a helper process's side of ProcessHolders: it reads a
// HolderSpec as one JSON line, then a session count per line, answering
// "ok N" or "err MESSAGE" for each. It returns when in closes.
func ServeHolder(ctx context.Context, in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 1<<20)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read holder spec: %w", err)
	}
	var spec HolderSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("parse holder spec: %w", err)
	}
	h := NewLocalHolder(spec, sasl.NewSaltCache(0))
	defer h.Close()
	for range 1000 {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil // the parent closed our input: release everything
		}
		n, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			fmt.Fprintf(out, "err bad count %q\n", strings.TrimSpace(line))
			continue
		}
		if err := h.Hold(ctx, n); err != nil {
			fmt.Fprintf(out, "err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(out, "ok %d\n", h.Held())
	}
	return errors.New("holder: too many commands")
}

// ProcessHolders returns a factory that runs each holder as `exe args...`,
// a child that calls ServeHolder (starling-bench's hidden "hold" command).
// The child dies with this process.
func ProcessHolders(exe string, args ...string) HolderFactory {
	return func(ctx context.Context, spec HolderSpec) (Holder, error) {
		cmd := exec.Command(exe, args...)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		outp, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start holder process: %w", err)
		}
		p := &procHolder{cmd: cmd, in: in, out: bufio.NewReader(outp)}
		b, _ := json.Marshal(spec)
		if _, err := in.Write(append(b, '\n')); err != nil {
			p.Close()
			return nil, fmt.Errorf("send holder spec: %w", err)
		}
		return p, nil
	}
}

type procHolder struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	cpu time.Duration
}

func (p *procHolder) Hold(ctx context.Context, n int) error {
	if _, err := fmt.Fprintf(p.in, "%d\n", n); err != nil {
		return fmt.Errorf("holder process: %w", err)
	}
	type answer struct {
		s   string
		err error
	}
	ch := make(chan answer, 1)
	go func() { s, err := p.out.ReadString('\n'); ch <- answer{s, err} }()
	select {
	case <-ctx.Done():
		p.cmd.Process.Kill()
		return ctx.Err()
	case a := <-ch:
		if a.err != nil {
			return fmt.Errorf("holder process ended: %w", a.err)
		}
		if msg, ok := strings.CutPrefix(strings.TrimSpace(a.s), "err "); ok {
			return errors.New(msg)
		}
		return nil
	}
}

func (p *procHolder) CPU() time.Duration {
	u, err := procstat.Reader{}.Process(p.cmd.Process.Pid)
	if err != nil {
		return p.cpu
	}
	p.cpu = u.CPU
	return u.CPU
}

func (p *procHolder) Close() error {
	p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		p.cmd.Process.Kill()
		return <-done
	}
}

// Idle measures the server's resident memory per idle session: it logs in
// sessions in steps (1 000, 5 000, ...), lets the server settle, and divides
// the growth of its RSS since before the first session by the count.
type Idle struct {
	Steps      []int
	PerProcess int // sessions per holder (a process has 20 000 files here)
	Security   xmppclient.Security
	Mechanism  string
	Settle     time.Duration // pause before reading RSS at each step (then see settle)
	SourceIPs  []string      // one per holder, round robin
}

// Name implements Scenario.
func (s *Idle) Name() string { return "idle" }

// Variant implements Scenario.
func (s *Idle) Variant() string {
	return fmt.Sprintf("%s/%v", s.Mechanism, s.Security)
}

// Accounts implements Scenario.
func (s *Idle) Accounts() int {
	if len(s.Steps) == 0 {
		return 0
	}
	return s.Steps[len(s.Steps)-1]
}

// Run implements Scenario.
func (s *Idle) Run(ctx context.Context, t Target, env Env) (Result, error) {
	res := Result{Scenario: s.Name(), Variant: s.Variant(), Target: t.Name, Metrics: map[string]float64{}}
	if len(s.Steps) == 0 || s.PerProcess < 1 || !ascending(s.Steps) {
		return res, fmt.Errorf("idle: need ascending steps and sessions per process >= 1 (got %v, %d)", s.Steps, s.PerProcess)
	}
	if len(env.Accounts) < s.Accounts() {
		return res, fmt.Errorf("idle: %d accounts needed, %d created", s.Accounts(), len(env.Accounts))
	}
	addr, err := t.Nodes[0].Addr(s.Security)
	if err != nil {
		return res, err
	}
	factory := env.Holder
	var bar = env.bar(fmt.Sprintf("%s idle sessions", t.Name), int64(s.Accounts()), "sessions")
	defer bar.Done()
	if factory == nil {
		factory = func(ctx context.Context, spec HolderSpec) (Holder, error) {
			h := NewLocalHolder(spec, env.Cache)
			h.OnLogin = func() { bar.Add(1) }
			return h, nil
		}
	}
	var holders []Holder
	defer func() {
		for _, h := range holders {
			h.Close()
		}
	}()
	extra := func() time.Duration {
		var d time.Duration
		for _, h := range holders {
			d += h.CPU()
		}
		return d
	}
	m := newMeter(t, extra)
	base, _, err := s.settle(ctx, m)
	if err != nil {
		return res, err
	}
	if base.Procs == 0 {
		return res, errors.New("idle: cannot read the server's memory (no PID)")
	}
	res.Metrics["baseline_rss_mb"] = float64(base.RSS) / (1 << 20)
	m.begin()
	for _, n := range s.Steps {
		need := (n + s.PerProcess - 1) / s.PerProcess
		for len(holders) < need {
			k := len(holders)
			spec := HolderSpec{Addr: addr, Domain: t.Domain, Security: s.Security, Mechanism: s.Mechanism,
				Accounts: env.Accounts[k*s.PerProcess : min((k+1)*s.PerProcess, len(env.Accounts))]}
			if len(s.SourceIPs) > 0 {
				spec.SourceIP = s.SourceIPs[k%len(s.SourceIPs)]
			}
			h, err := factory(ctx, spec)
			if err != nil {
				return res, err
			}
			holders = append(holders, h)
		}
		errc := make(chan error, len(holders))
		for k, h := range holders {
			want := min(s.PerProcess, max(0, n-k*s.PerProcess))
			go func() { errc <- h.Hold(ctx, want) }()
		}
		var herr error
		for range holders {
			herr = errors.Join(herr, <-errc)
		}
		if herr != nil {
			return res, fmt.Errorf("idle: at %d sessions: %w", n, herr)
		}
		if env.Holder != nil {
			bar.Set(int64(n))
		}
		u, waited, err := s.settle(ctx, m)
		if err != nil {
			return res, err
		}
		res.Metrics[fmt.Sprintf("settle_s@%d", n)] = waited.Seconds()
		per := float64(u.RSS-base.RSS) / float64(n)
		res.Metrics[fmt.Sprintf("kb_per_session@%d", n)] = per / 1024
		res.Metrics[fmt.Sprintf("rss_mb@%d", n)] = float64(u.RSS) / (1 << 20)
		res.Points = append(res.Points, Point{Series: "kb_per_session", X: float64(n), Y: per / 1024})
		env.Log.Info("idle step", "target", t.Name, "sessions", n, "rss_mb", u.RSS>>20, "kb_per_session", int(per/1024))
	}
	m.end(&res)
	res.Metrics["sessions"] = float64(s.Steps[len(s.Steps)-1])
	res.Metrics["kb_per_session"] = res.Points[len(res.Points)-1].Y
	return res, nil
}

// Settling: after Settle, the server's RSS is read every settleEvery until settleReads readings in a
// row (a second) are within settleShare of the first of them, for at most settleMax more. Servers hand memory back on their own
// schedules (Go's scavenger and Starling's quiet-time GC target, Erlang's process hibernation, Lua's
// incremental collector), and idle memory is what is left once they have; a fixed pause would measure
// whichever server happened to be mid-way.
const (
	settleEvery = 500 * time.Millisecond
	settleReads = 3
	settleShare = 0.01
	settleMax   = 10 * time.Second
)

// settle waits as above and returns the last reading and how long it waited in all.
func (s *Idle) settle(ctx context.Context, m *meter) (procstat.Usage, time.Duration, error) {
	start := time.Now()
	if err := waitCtx(ctx, s.Settle); err != nil {
		return procstat.Usage{}, 0, err
	}
	u := m.server()
	first, still := u, 1
	for still < settleReads && time.Since(start) < s.Settle+settleMax {
		if err := waitCtx(ctx, settleEvery); err != nil {
			return u, time.Since(start), err
		}
		u = m.server()
		if math.Abs(float64(u.RSS-first.RSS)) <= settleShare*float64(first.RSS) {
			still++
		} else {
			first, still = u, 1
		}
	}
	return u, time.Since(start), nil
}

func ascending(s []int) bool {
	for i := range s {
		if s[i] < 1 || (i > 0 && s[i] <= s[i-1]) {
			return false
		}
	}
	return true
}

// SourceIPs returns n loopback source addresses 127.0.0.first, first+1, ...
func SourceIPs(first, n int) []string {
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, "127.0.0."+strconv.Itoa(first+i))
	}
	return out
}
