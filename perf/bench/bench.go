package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/starling-xmpp/starling/perf/load"
	"github.com/starling-xmpp/starling/perf/peer"
	"github.com/starling-xmpp/starling/perf/progress"
	"github.com/starling-xmpp/starling/xmpp/sasl"
)

// Ports of the private instances: none collides with Starling's defaults
// (5222/5223/5280/5277) or with a system ejabberd or Prosody, and all lie
// below the kernel's ephemeral range (32768–60999): a listener there failed
// to bind while a client socket of an earlier scenario held the port.
const (
	StarlingPort, StarlingTLSPort = 28222, 28223
	// StarlingHTTPPort serves GET /throttle, which says which traffic meter runs.
	StarlingHTTPPort              = 28280
	EjabberdPort, EjabberdTLSPort = 15222, 15223
	ProsodyPort, ProsodyTLSPort   = 25222, 25223
)

// ServerNames are the servers a run can measure, in report order.
var ServerNames = []string{"starling", "ejabberd", "prosody"}

// Config is one benchmark run.
type Config struct {
	Plan           Plan
	Groups         []string // run only these groups of the plan; empty: all
	Servers        []string // subset of ServerNames
	Dir            string   // state of the private instances
	Repo           string   // module root, to build Starling
	StarlingBinary string   // prebuilt starling; empty builds it
	StarlingRev    string   // git revision to build ("HEAD"); empty builds the working tree
	// StarlingPorts overrides StarlingPort, StarlingTLSPort and
	// StarlingHTTPPort (tests pick free ones).
	StarlingPorts [3]int
	Holder        load.HolderFactory
	Log           *slog.Logger
	Progress      io.Writer // stderr; nil draws nothing
	Command       string    // the command line, recorded in the report
}

// Run is the record of one benchmark run, written as JSON.
type Run struct {
	Plan     string        `json:"plan"`
	Started  time.Time     `json:"started"`
	Seconds  float64       `json:"seconds"`
	Machine  Machine       `json:"machine"`
	Servers  []ServerInfo  `json:"servers"`
	Commands []string      `json:"commands"`
	Results  []load.Result `json:"results"`
}

// ServerInfo says what was measured and, if not, why.
type ServerInfo struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Available bool   `json:"available"`
	Note      string `json:"note,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	// Meter is the traffic meter a Starling target ran with, as the node
	// reported it ("ebpf", "userspace", or "none" for an unmetered target).
	Meter string `json:"meter,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	NProc    int    `json:"nproc"`
	Model    string `json:"cpu_model"`
	MemTotal string `json:"mem_total"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
	Go       string `json:"go"`
	NoFile   string `json:"nofile"`
}

// ReadMachine reads the machine's description from /proc and /etc.
func ReadMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				f := strings.Fields(line)
				m.NoFile = f[len(f)-3]
			}
		}
	}
	return m
}

func (c Config) servers() ([]peer.Server, error) {
	opts := peer.Options{Dir: c.Dir, Log: c.Log}
	want := c.Servers
	if len(want) == 0 {
		want = ServerNames
	}
	var out []peer.Server
	for _, n := range want {
		switch n {
		case "starling":
			port, tlsPort, httpPort := StarlingPort, StarlingTLSPort, StarlingHTTPPort
			if c.StarlingPorts[0] != 0 {
				port, tlsPort, httpPort = c.StarlingPorts[0], c.StarlingPorts[1], c.StarlingPorts[2]
			}
			s := peer.NewStarling(opts, c.Repo, c.StarlingBinary, port, tlsPort)
			s.HTTPPort = httpPort
			s.Rev = c.StarlingRev
			out = append(out, s)
		case "ejabberd":
			out = append(out, peer.NewEjabberd(opts, EjabberdPort, EjabberdTLSPort))
		case "prosody":
			out = append(out, peer.NewProsody(opts, ProsodyPort, ProsodyTLSPort))
		default:
			return nil, fmt.Errorf("unknown server %q (have %v)", n, ServerNames)
		}
	}
	return out, nil
}

// Execute runs the plan. It returns the results gathered so far even when
// it fails or ctx is cancelled, and leaves no server running in any case.
func Execute(ctx context.Context, c Config) (*Run, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	run := &Run{Plan: c.Plan.Name, Started: time.Now().UTC(), Machine: ReadMachine(), Commands: []string{c.Command}}
	defer func() { run.Seconds = time.Since(run.Started).Seconds() }()
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return run, fmt.Errorf("state dir: %w", err)
	}
	// The servers drop root and must reach their state directories.
	os.Chmod(c.Dir, 0o755)
	all, err := c.servers()
	if err != nil {
		return run, err
	}
	var servers []peer.Server
	for _, s := range all {
		info := ServerInfo{Name: s.Name(), Endpoint: s.Endpoint(0).Addr}
		if err := s.Check(ctx); err != nil {
			info.Note = err.Error()
			if errors.Is(err, peer.ErrUnavailable) {
				c.Log.Warn("Starling target unavailable: measuring the other servers only", "reason", err)
			} else {
				c.Log.Error("server cannot run here", "server", s.Name(), "err", err)
			}
		} else {
			info.Available = true
			servers = append(servers, s)
		}
		info.Version = s.Version(ctx)
		run.Servers = append(run.Servers, info)
	}
	if len(servers) == 0 {
		return run, errors.New("no server can be measured here")
	}
	ts := newTargets(servers, run)
	// Stop everything on every way out, including a cancelled ctx.
	defer func() {
		for _, s := range ts.all() {
			if err := s.Stop(); err != nil {
				c.Log.Error("stop server", "server", s.Name(), "err", err)
			}
		}
	}()
	env := load.Env{Accounts: peer.Accounts(c.accounts()), Cache: sasl.NewSaltCache(0), Log: c.Log, Progress: c.Progress, Holder: c.Holder}
	ready := map[string]bool{} // accounts exist, per server family
	for _, g := range c.Plan.Groups {
		if len(c.Groups) > 0 && !slices.Contains(c.Groups, g.Name) {
			continue
		}
		all := ts.of(ctx, g)
		skip := map[string]bool{} // unavailable or failed: not tried again in later rounds
		rounds := max(g.Rounds, 1)
		for round := range rounds {
			for i := range all {
				// Rotate the order each round (ABC, BCA, CAB) so that a drift of
				// the machine's load is not charged to one target.
				t := all[(i+round)%len(all)]
				if err := ctx.Err(); err != nil {
					return run, err
				}
				if skip[t.name] {
					continue
				}
				if t.err != nil {
					c.Log.Warn("target unavailable", "group", g.Name, "target", t.name, "reason", t.err)
					run.Results = append(run.Results, load.Result{Scenario: g.Name, Group: g.Name, Target: t.name, Error: t.err.Error(), Unavailable: true})
					skip[t.name] = true
					continue
				}
				s := t.server
				rs, err := runGroup(ctx, c, env, g, s, !ready[t.family])
				if rounds > 1 {
					for i := range rs {
						rs[i].Round = round + 1
					}
				}
				run.Results = append(run.Results, rs...)
				ts.started(s, err)
				if err != nil {
					c.Log.Error("group failed", "group", g.Name, "server", s.Name(), "err", err)
					run.Results = append(run.Results, load.Result{Scenario: g.Name, Group: g.Name, Target: s.Name(), Error: err.Error(),
						Unavailable: errors.Is(err, peer.ErrUnavailable)})
					skip[t.name] = true
					continue
				}
				ready[t.family] = true
			}
		}
	}
	return run, ctx.Err()
}

// accounts is the number of accounts the selected groups need (a run of a
// few groups does not create the 19 000 of the idle step).
func (c Config) accounts() int {
	p := Plan{Name: c.Plan.Name}
	for _, g := range c.Plan.Groups {
		if len(c.Groups) == 0 || slices.Contains(c.Groups, g.Name) {
			p.Groups = append(p.Groups, g)
		}
	}
	return p.Accounts()
}

// runGroup starts s fresh, creates the accounts the first time, runs the
// group's scenarios, and stops s.
func runGroup(ctx context.Context, c Config, env load.Env, g Group, s peer.Server, first bool) (out []load.Result, err error) {
	c.Log.Info("starting server", "server", s.Name(), "group", g.Name)
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if serr := s.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop %s: %w", s.Name(), serr)
		}
	}()
	if first {
		var bar *progress.Bar
		if c.Progress != nil {
			bar = progress.New(c.Progress, s.Name()+" accounts", int64(len(env.Accounts)), "accounts")
		} else {
			bar = progress.Discard("accounts", 0)
		}
		err := s.CreateUsers(ctx, env.Accounts, func(n int) { bar.Set(int64(n)) })
		bar.Done()
		if err != nil {
			return nil, fmt.Errorf("create accounts: %w", err)
		}
		// Account creation is load of its own: measure from a fresh start.
		if err := s.Stop(); err != nil {
			return nil, err
		}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
	}
	version := s.Version(ctx)
	t := load.SingleNode(s)
	for _, sc := range g.Scenarios {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		res, err := sc.Run(ctx, t, env)
		res.Version = version
		res.Group = g.Name
		if err != nil {
			res.Error = err.Error()
			c.Log.Error("scenario failed", "server", s.Name(), "scenario", sc.Name(), "variant", sc.Variant(), "err", err)
		} else {
			c.Log.Info("scenario done", "server", s.Name(), "scenario", sc.Name(), "variant", sc.Variant(), "metrics", brief(res))
		}
		out = append(out, res)
		if s.PID() == 0 {
			return out, fmt.Errorf("%s is no longer running", s.Name())
		}
	}
	return out, nil
}

func brief(r load.Result) string {
	var b bytes.Buffer
	for _, k := range []string{"logins_per_s", "msgs_per_s", "p99_ms", "kb_per_session", "lost"} {
		if v, ok := r.Metrics[k]; ok {
			fmt.Fprintf(&b, "%s=%.4g ", k, v)
		}
	}
	fmt.Fprintf(&b, "server_cpu=%.2fs gen_cpu=%.2fs", r.ServerCPU, r.GeneratorCPU)
	if r.Errors > 0 {
		fmt.Fprintf(&b, " errors=%d (first: %.200s)", r.Errors, r.ErrorSample)
	}
	return b.String()
}
