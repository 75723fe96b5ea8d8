package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/starling-xmpp/starling/perf/xmppclient"
)

// Meter is how a Starling node counts its client connections' bytes: the
// eBPF-cost scenario runs the same load against each and compares.
type Meter string

// The meters a Starling target can run with.
const (
	// MeterDefault is the node as deployed: the zero-limit policy, counted
	// by eBPF when the node can load it (root), else in userspace. The mode
	// is recorded, not required.
	MeterDefault Meter = ""
	// MeterEBPF is MeterDefault that must run the eBPF meter: a node that
	// fell back to userspace is reported unavailable, not mislabelled.
	MeterEBPF Meter = "ebpf"
	// MeterUserspace is the same policy counted in userspace
	// (`starling run --throttle-userspace`), even as root.
	MeterUserspace Meter = "userspace"
	// MeterNone leaves client connections out of the meter altogether
	// ('cm-traffic-throttling' = 'none').
	MeterNone Meter = "none"
)

// Starling is a Starling node built from the repository and started as
// `starling run --config FILE` with a configuration the harness writes.
type Starling struct {
	opts     Options
	repo     string // module root to build cmd/starling from
	binary   string // prebuilt binary; empty: build from repo
	dir      string
	c2s, tls int
	// HTTPPort is the node's HTTP listener (GET /throttle tells which meter
	// runs); 0 leaves it off, and the meter cannot be verified.
	HTTPPort int
	meter    Meter
	mode     string // the meter mode the running node reported
	proc     process
	built    string
	// Rev, when set, builds that git revision of repo (exported with git
	// archive) instead of the working tree, so a measurement does not pick
	// up someone's uncommitted edits.
	Rev string
	rev string // the commit built
}

// NewStarling returns a Starling node on 127.0.0.1:c2sPort (plain/STARTTLS)
// and tlsPort (direct TLS). binary may name a prebuilt starling; otherwise
// Check builds ./cmd/starling in repo.
func NewStarling(opts Options, repo, binary string, c2sPort, tlsPort int) *Starling {
	return &Starling{opts: opts, repo: repo, binary: binary, dir: filepath.Join(opts.Dir, "starling"), c2s: c2sPort, tls: tlsPort}
}

// WithMeter returns another target on the same binary, state, accounts and
// ports that runs with meter m. The two must not run at the same time.
func (s *Starling) WithMeter(m Meter) *Starling {
	return &Starling{opts: s.opts, repo: s.repo, binary: s.binary, dir: s.dir, c2s: s.c2s, tls: s.tls, HTTPPort: s.HTTPPort,
		meter: m, built: s.built, Rev: s.Rev, rev: s.rev}
}

// Name implements Server: "starling", "starling-userspace" or
// "starling-unmetered" (results name the meter the target ran with).
func (s *Starling) Name() string {
	switch s.meter {
	case MeterUserspace:
		return "starling-userspace"
	case MeterNone:
		return "starling-unmetered"
	}
	return "starling"
}

// Meter is the meter the target asks for.
func (s *Starling) Meter() Meter { return s.meter }

// MeterMode is the meter the node reported at its last start ("ebpf" or
// "userspace"), or "" when it was not read.
func (s *Starling) MeterMode() string { return s.mode }

// Domain implements Server.
func (s *Starling) Domain() string { return s.opts.domain() }

// PID implements Server.
func (s *Starling) PID() int { return s.proc.pid() }

// Endpoint implements Server.
func (s *Starling) Endpoint(sec xmppclient.Security) Endpoint {
	port := s.c2s
	if sec == xmppclient.DirectTLS {
		port = s.tls
	}
	return Endpoint{Addr: "127.0.0.1:" + strconv.Itoa(port), Security: sec}
}

// ErrUnavailable marks a target that cannot be measured on this checkout.
var ErrUnavailable = errors.New("target unavailable")

// Check implements Server: it builds the binary, or says clearly why the
// Starling target is unavailable.
func (s *Starling) Check(ctx context.Context) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("starling state dir: %w", err)
	}
	if s.meter == MeterEBPF && os.Geteuid() != 0 {
		return fmt.Errorf("%s: %w: the eBPF meter needs root (this run is uid %d)", s.Name(), ErrUnavailable, os.Geteuid())
	}
	if s.meter != MeterDefault && s.HTTPPort == 0 {
		return fmt.Errorf("%s: no HTTP port to read the meter mode from", s.Name())
	}
	if s.built != "" {
		return nil // built for another meter of the same tree
	}
	if s.binary != "" {
		if _, err := os.Stat(s.binary); err != nil {
			return fmt.Errorf("starling: %w: binary %s: %v", ErrUnavailable, s.binary, err)
		}
		s.built = s.binary
		return nil
	}
	src := s.repo
	if s.Rev != "" {
		var err error
		if src, err = s.export(ctx); err != nil {
			return fmt.Errorf("starling: %w: %v", ErrUnavailable, err)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "cmd", "starling", "main.go")); err != nil {
		return fmt.Errorf("starling: %w: no cmd/starling in %s yet", ErrUnavailable, src)
	}
	out := filepath.Join(s.dir, "starling")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/starling")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("starling: %w: go build ./cmd/starling failed: %v\n%s", ErrUnavailable, err, tail(b, 1500))
	}
	s.built = out
	return nil
}

// Version implements Server.
func (s *Starling) Version(ctx context.Context) string {
	if s.built == "" {
		return "unavailable"
	}
	out, err := exec.CommandContext(ctx, s.built, "version").Output()
	v := strings.TrimSpace(string(out))
	if err != nil {
		v = "unknown"
	}
	if s.rev != "" {
		v += " (commit " + s.rev + ")"
	}
	return v
}

// export writes the tree of s.Rev into the state directory and returns it.
func (s *Starling) export(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", s.repo, "rev-parse", "--short=12", s.Rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("resolve revision %q in %s: %w", s.Rev, s.repo, err)
	}
	s.rev = strings.TrimSpace(string(out))
	src := filepath.Join(s.dir, "src-"+s.rev)
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err == nil {
		return src, nil
	}
	tmp := src + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "-C", s.repo, "archive", "--format=tar", s.rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", tmp)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	if err := archive.Start(); err != nil {
		return "", fmt.Errorf("git archive: %w", err)
	}
	uerr := untar.Run()
	aerr := archive.Wait()
	if err := errors.Join(aerr, uerr); err != nil {
		return "", fmt.Errorf("export %s: %w", s.rev, err)
	}
	if err := os.Rename(tmp, src); err != nil {
		return "", err
	}
	return src, nil
}

var starlingConfig = template.Must(template.New("config.tdsl").Parse(`# Written by starling-bench: a private node for measurements.
'config-type' = 'default'
'default-virtual-host' = '{{.Domain}}'
'data-dir' = '{{.Data}}'
dataSource {
    default () {
        uri = 'sqlite:{{.Data}}/starling.db'
    }
}
logging {
    rootLevel = 'WARNING'
}
{{if .Unmetered}}# Client connections left out of the traffic meter altogether.
'cm-traffic-throttling' = 'none'
{{else}}# No limits (0 is unlimited): the server's own speed is measured, not a
# policy. Client connections are still counted by the traffic meter.
'cm-traffic-throttling' = 'xmpp:0:0:disc,bin:0:0:disc'
{{end}}'tls-cert-file' = '{{.Dir}}/cert.pem'
'tls-key-file' = '{{.Dir}}/key.pem'
c2s {
    connections {
        {{.C2S}} () {
            ifc = [ '127.0.0.1' ]
            'tls-required' = false
        }
        {{.TLS}} () {
            ifc = [ '127.0.0.1' ]
            socket = 'ssl'
        }
        # The defaults would also listen on every interface, and collide
        # with any other Starling on this machine.
        5222 (active: false) {}
        5223 (active: false) {}
    }
    'max-connections-per-ip' = 1000000
    # Only failed SASL attempts count against an address, but the harness
    # must never be refused because of its own test accounts.
    'max-auth-attempts-per-ip' = 1048576
}
# In-band registration makes creating 19 000 accounts fast.
'vhost-register-enabled' = true
{{if .HTTP}}# GET /throttle says which traffic meter runs.
http () {
    port = {{.HTTP}}
    ifc = [ '127.0.0.1' ]
}
{{end}}`))

func (s *Starling) configPath() string { return filepath.Join(s.dir, "config.tdsl") }

// dataDir holds the database and the accounts marker. It is per built
// revision: a database made by another build may have another schema.
func (s *Starling) dataDir() string {
	if s.rev != "" {
		return filepath.Join(s.dir, "data-"+s.rev)
	}
	return filepath.Join(s.dir, "data-worktree")
}

func (s *Starling) writeConfig() error {
	if err := os.MkdirAll(s.dataDir(), 0o755); err != nil {
		return fmt.Errorf("starling state dir: %w", err)
	}
	if err := writeCert(s.dir, s.Domain()); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := starlingConfig.Execute(&b, map[string]any{"Domain": s.Domain(), "Dir": s.dir, "Data": s.dataDir(), "C2S": s.c2s, "TLS": s.tls,
		"HTTP": s.HTTPPort, "Unmetered": s.meter == MeterNone}); err != nil {
		return fmt.Errorf("starling config: %w", err)
	}
	if err := os.WriteFile(s.configPath(), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write starling config: %w", err)
	}
	return nil
}

// Start implements Server.
func (s *Starling) Start(ctx context.Context) error {
	if s.built == "" {
		if err := s.Check(ctx); err != nil {
			return err
		}
	}
	if err := s.writeConfig(); err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, "starling.log")
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + s.dir}
	argv := []string{s.built, "run", "--config", s.configPath()}
	if s.meter == MeterUserspace {
		argv = append(argv, "--throttle-userspace")
	}
	s.mode = ""
	if err := s.proc.start(argv, env, s.dir, "", logPath); err != nil {
		return fmt.Errorf("start %s: %w", s.Name(), err)
	}
	if err := waitReady(ctx, &s.proc, s.Endpoint(xmppclient.Plain).Addr, s.Domain(), logPath); err != nil {
		s.proc.stop(5 * time.Second)
		return fmt.Errorf("start %s: %w", s.Name(), err)
	}
	if s.HTTPPort == 0 {
		return nil
	}
	if err := s.verifyMeter(ctx); err != nil {
		s.proc.stop(5 * time.Second)
		return fmt.Errorf("start %s: %w", s.Name(), err)
	}
	return nil
}

// meterStatus is the part of GET /throttle (node/throttle.Status) read here.
type meterStatus struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
	Conns  []struct {
		Port uint16 `json:"port"`
	} `json:"connections"`
}

func (s *Starling) readMeter(ctx context.Context) (meterStatus, error) {
	var st meterStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(s.HTTPPort)+"/throttle", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("read the traffic meter: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return st, fmt.Errorf("read the traffic meter: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /throttle: %s: %.200s", resp.Status, b)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("GET /throttle: %w", err)
	}
	if st.Mode == "" {
		return st, errors.New("GET /throttle: no meter mode in the answer")
	}
	return st, nil
}

// verifyMeter checks that the node runs the meter the target's name says:
// it holds one client stream open (the server answered, so it tracked the
// socket), reads GET /throttle, and looks for that connection in the meter.
func (s *Starling) verifyMeter(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Endpoint(xmppclient.Plain).Addr)
	if err != nil {
		return fmt.Errorf("verify the meter: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	open := "<?xml version='1.0'?><stream:stream to='" + s.Domain() + "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	if _, err := io.WriteString(c, open); err != nil {
		return fmt.Errorf("verify the meter: open a stream: %w", err)
	}
	if _, err := c.Read(make([]byte, 64)); err != nil {
		return fmt.Errorf("verify the meter: no stream header: %w", err)
	}
	st, err := s.readMeter(ctx)
	if err != nil {
		return err
	}
	s.mode = st.Mode
	tracked := false
	for _, cs := range st.Conns {
		tracked = tracked || int(cs.Port) == s.c2s
	}
	switch s.meter {
	case MeterEBPF:
		if st.Mode != "ebpf" {
			return fmt.Errorf("%w: the node runs the %s meter, not eBPF (%s)", ErrUnavailable, st.Mode, st.Reason)
		}
	case MeterUserspace:
		if st.Mode != "userspace" {
			return fmt.Errorf("asked for the userspace meter, the node runs %s", st.Mode)
		}
	case MeterNone:
		if tracked {
			return fmt.Errorf("'cm-traffic-throttling' = 'none', yet the %s meter counts a client connection on port %d", st.Mode, s.c2s)
		}
		return nil
	}
	if !tracked {
		return fmt.Errorf("the %s meter does not count the client connection on port %d", st.Mode, s.c2s)
	}
	return nil
}

// Stop implements Server.
func (s *Starling) Stop() error { return s.proc.stop(10 * time.Second) }

// CreateUsers implements Server: in-band registration when the node allows
// it, else `starling user add JID --password P` for each account.
func (s *Starling) CreateUsers(ctx context.Context, accounts []Account, progress func(int)) error {
	return ensureAccounts(ctx, s.dataDir(), accounts, progress, func(ctx context.Context, a []Account, p func(int)) error {
		if len(a) == 0 {
			return nil
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := xmppclient.Register(rctx, xmppclient.Config{Addr: s.Endpoint(xmppclient.Plain).Addr, Domain: s.Domain(), User: a[0].User, Password: a[0].Password})
		cancel()
		if err == nil || errors.Is(err, xmppclient.ErrConflict) {
			return registerIBR(ctx, s.Endpoint(xmppclient.Plain).Addr, s.Domain(), a, p)
		}
		s.opts.Log.Info("starling: in-band registration refused; creating accounts with the CLI", "err", err)
		return s.addUsersCLI(ctx, a, p)
	})
}

func (s *Starling) addUsersCLI(ctx context.Context, accounts []Account, progress func(int)) error {
	var next, done atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(accounts) || ctx.Err() != nil {
					return
				}
				a := accounts[i]
				cmd := exec.CommandContext(ctx, s.built, "user", "add", a.User+"@"+s.Domain(), "--password", a.Password, "--config", s.configPath())
				cmd.Dir = s.dir
				if out, err := cmd.CombinedOutput(); err != nil && !bytes.Contains(bytes.ToLower(out), []byte("exist")) {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("starling user add %s: %v: %s", a.User, err, tail(out, 300))
					}
					mu.Unlock()
					return
				}
				if n := done.Add(1); progress != nil {
					progress(int(n))
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
