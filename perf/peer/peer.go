// Package peer runs the XMPP servers that a benchmark measures: private
// instances of ejabberd and Prosody from Debian, and Starling, each with its
// own generated configuration and state directory on loopback ports that do
// not collide with Starling's defaults. It installs what is missing, creates
// the test accounts, starts a server, waits until it serves clients, and
// stops it (its whole process group) on every exit path.
package peer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/starling-xmpp/starling/perf/xmppclient"
)

// Endpoint is one client listener of a server.
type Endpoint struct {
	Addr     string              `json:"addr"`
	Security xmppclient.Security `json:"security"`
}

// Server is one XMPP server under test.
type Server interface {
	// Name is the short name used in results ("starling", "ejabberd", "prosody").
	Name() string
	// Check reports why the server cannot be run here, or nil.
	Check(ctx context.Context) error
	// Version returns the server's version string.
	Version(ctx context.Context) string
	// Start writes the configuration, starts the server and waits until it
	// serves clients. Start after Stop restarts it with the same state.
	Start(ctx context.Context) error
	// Stop ends the server and every process it started.
	Stop() error
	// PID is the server's main process while it runs, else 0.
	PID() int
	// Domain is the XMPP domain served.
	Domain() string
	// Endpoint returns the listener for a client security mode.
	Endpoint(sec xmppclient.Security) Endpoint
	// CreateUsers makes sure the accounts exist.
	CreateUsers(ctx context.Context, accounts []Account, progress func(done int)) error
}

// Account is one test user.
type Account struct {
	User, Password string
}

// Accounts returns n test accounts with predictable names, so that a later
// run against the same state directory finds them again.
func Accounts(n int) []Account {
	out := make([]Account, n)
	for i := range out {
		out[i] = Account{User: fmt.Sprintf("bench%05d", i), Password: fmt.Sprintf("pw-%05d", i)}
	}
	return out
}

// Options are shared by every server.
type Options struct {
	Dir    string // state root; each server gets Dir/<name>
	Domain string // "localhost" when empty
	Log    *slog.Logger
}

func (o Options) domain() string {
	if o.Domain == "" {
		return "localhost"
	}
	return o.Domain
}

// process runs one server command in its own process group as a given user.
type process struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs argv as account (empty: the current user) with env, output
// appended to logPath. The child is killed if the harness dies.
func (p *process) start(argv []string, env []string, dir, account, logPath string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("already running")
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: Stop signals every process the server forked.
	// Pdeathsig: if the harness is killed outright, the server goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if account != "" {
		uid, gid, err := lookupUser(account)
		if err != nil {
			out.Close()
			return err
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	}
	// The parent-death signal follows the thread that forked, not the
	// process (go.dev/issue/27505): if that thread ended (a goroutine that
	// exits while locked to it takes it along), the server would be killed
	// in mid-run. So the child is started from a thread locked for as long
	// as it runs, which then waits for it.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		out.Close()
		close(done)
	}()
	if err := <-started; err != nil {
		out.Close()
		if account != "" && errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("start %s as %s (every folder above %s must be searchable by that user): %w", argv[0], account, dir, err)
		}
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	p.cmd = cmd
	p.done = done
	return nil
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0 // exited on its own (crashed)
	default:
		return p.cmd.Process.Pid
	}
}

// exited returns a channel closed when the process ends (nil if not started).
func (p *process) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// stop sends SIGTERM to the group, waits up to grace, then SIGKILLs the group.
func (p *process) stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	// Whatever is left in the group (BEAM helpers, a stuck server) goes now.
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-done
	return nil
}

func lookupUser(name string) (uint32, uint32, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid), nil
}

// chownTree gives dir to account so a server that drops root can write it.
func chownTree(dir, account string) error {
	if account == "" || os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := lookupUser(account)
	if err != nil {
		return err
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(uid), int(gid))
	})
}

// waitReady polls until a stream can be opened on addr, the process exits,
// or ctx ends.
func waitReady(ctx context.Context, p *process, addr, domain, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	exited := p.exited()
	backoff := 20 * time.Millisecond
	var last error
	for attempt := 0; attempt < 10000; attempt++ {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		last = xmppclient.Probe(pctx, addr, domain, xmppclient.Plain)
		pcancel()
		if last == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-exited:
			t.Stop()
			return fmt.Errorf("server exited while starting (see %s)", logPath)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("server not ready on %s: %w (last: %v; see %s)", addr, ctx.Err(), last, logPath)
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	return fmt.Errorf("server not ready on %s: %v", addr, last)
}

// writeCert writes a self-signed certificate and key for domain into dir
// (cert.pem, key.pem, and both.pem with the two concatenated).
func writeCert(dir, domain string) error {
	if _, err := os.Stat(filepath.Join(dir, "both.pem")); err == nil {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: domain},
		DNSNames:     []string{domain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "both.pem": append(append([]byte{}, keyPEM...), certPEM...)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// registerIBR creates accounts with in-band registration, a few at a time.
// An account that exists already counts as created.
func registerIBR(ctx context.Context, addr, domain string, accounts []Account, progress func(int)) error {
	const workers = 8
	var next, done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(accounts) || ctx.Err() != nil {
					return
				}
				a := accounts[i]
				var err error
				for try := range 3 { // a busy server may drop a connection; retry a little
					rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
					err = xmppclient.Register(rctx, xmppclient.Config{Addr: addr, Domain: domain, User: a.User, Password: a.Password})
					cancel()
					if err == nil || errors.Is(err, xmppclient.ErrConflict) || try == 2 {
						break
					}
				}
				if err != nil && !errors.Is(err, xmppclient.ErrConflict) {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("register %s: %w", a.User, err)
					}
					mu.Unlock()
					return
				}
				n := done.Add(1)
				if progress != nil {
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

// markerCount reads how many accounts a previous run created in dir.
func markerCount(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "accounts"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(string(b))
	return n
}

func writeMarker(dir string, n int) error {
	return os.WriteFile(filepath.Join(dir, "accounts"), []byte(strconv.Itoa(n)), 0o644)
}

// ensureAccounts creates only the accounts past those a previous run made
// (names are predictable, so the first N exist already).
func ensureAccounts(ctx context.Context, dir string, accounts []Account, progress func(int), create func(context.Context, []Account, func(int)) error) error {
	have := markerCount(dir)
	if have >= len(accounts) {
		if progress != nil {
			progress(len(accounts))
		}
		return nil
	}
	p := progress
	if p != nil {
		p = func(n int) { progress(have + n) }
	}
	if err := create(ctx, accounts[have:], p); err != nil {
		return err
	}
	return writeMarker(dir, len(accounts))
}
