package peer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/starling-xmpp/starling/perf/xmppclient"
)

// Prosody is a private Prosody instance (Debian's package) run in the
// foreground as the prosody user (Prosody refuses to run as root).
type Prosody struct {
	opts     Options
	dir      string
	c2s, tls int
	proc     process
}

// NewProsody returns a Prosody on 127.0.0.1:c2sPort (plain/STARTTLS) and
// tlsPort (direct TLS), with state under opts.Dir/prosody.
func NewProsody(opts Options, c2sPort, tlsPort int) *Prosody {
	return &Prosody{opts: opts, dir: filepath.Join(opts.Dir, "prosody"), c2s: c2sPort, tls: tlsPort}
}

// Name implements Server.
func (p *Prosody) Name() string { return "prosody" }

// Domain implements Server.
func (p *Prosody) Domain() string { return p.opts.domain() }

// PID implements Server.
func (p *Prosody) PID() int { return p.proc.pid() }

// Endpoint implements Server.
func (p *Prosody) Endpoint(sec xmppclient.Security) Endpoint {
	port := p.c2s
	if sec == xmppclient.DirectTLS {
		port = p.tls
	}
	return Endpoint{Addr: "127.0.0.1:" + strconv.Itoa(port), Security: sec}
}

// Check implements Server: it installs the package when missing.
func (p *Prosody) Check(ctx context.Context) error {
	return EnsurePackages(ctx, p.opts.Log, "prosody")
}

// Version implements Server.
func (p *Prosody) Version(ctx context.Context) string { return PackageVersion(ctx, "prosody") }

var prosodyConfig = template.Must(template.New("prosody.cfg.lua").Funcs(template.FuncMap{"lua": luaString}).Parse(`-- Written by starling-bench: a private instance for measurements.
pidfile = {{lua .PID}}
data_path = {{lua .Data}}
daemonize = false
log = { warn = {{lua .Log}} }
-- epoll: the select backend stops at 1024 sockets.
network_backend = "epoll"
interfaces = { "127.0.0.1" }
c2s_ports = { {{.C2S}} }
c2s_direct_tls_ports = { {{.TLS}} }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
min_seconds_between_registrations = 0
authentication = "internal_hashed"
storage = "internal"
-- No mod_limits: the server's own speed is measured, not a rate limit.
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "register"; "ping" }
modules_disabled = { "s2s"; "offline"; "c2s_limits" }
ssl = { certificate = {{lua .Cert}}; key = {{lua .Key}} }
certificates = {{lua .Dir}}
VirtualHost {{lua .Domain}}
`))

func (p *Prosody) writeConfig() error {
	data := filepath.Join(p.dir, "data")
	for _, d := range []string{p.dir, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("prosody state dir: %w", err)
		}
	}
	if err := writeCert(p.dir, p.Domain()); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(p.dir, "prosody.cfg.lua"))
	if err != nil {
		return fmt.Errorf("write prosody config: %w", err)
	}
	err = prosodyConfig.Execute(f, map[string]any{
		"PID": filepath.Join(p.dir, "prosody.pid"), "Data": data, "Log": filepath.Join(p.dir, "prosody.log"),
		"C2S": p.c2s, "TLS": p.tls, "Cert": filepath.Join(p.dir, "cert.pem"), "Key": filepath.Join(p.dir, "key.pem"),
		"Dir": p.dir, "Domain": p.Domain(),
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write prosody config: %w", err)
	}
	return chownTree(p.dir, "prosody")
}

// Start implements Server.
func (p *Prosody) Start(ctx context.Context) error {
	if err := p.writeConfig(); err != nil {
		return err
	}
	argv := []string{"/usr/bin/prosody", "-F", "--config", filepath.Join(p.dir, "prosody.cfg.lua")}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + p.dir}
	logPath := filepath.Join(p.dir, "console.log")
	account := ""
	if os.Geteuid() == 0 {
		account = "prosody"
	}
	if err := p.proc.start(argv, env, p.dir, account, logPath); err != nil {
		return fmt.Errorf("start prosody: %w", err)
	}
	if err := waitReady(ctx, &p.proc, p.Endpoint(xmppclient.Plain).Addr, p.Domain(), logPath); err != nil {
		p.proc.stop(5 * time.Second)
		return fmt.Errorf("start prosody: %w", err)
	}
	return nil
}

// Stop implements Server.
func (p *Prosody) Stop() error { return p.proc.stop(10 * time.Second) }

// CreateUsers implements Server with in-band registration over loopback,
// which Prosody exempts from its registration throttle.
func (p *Prosody) CreateUsers(ctx context.Context, accounts []Account, progress func(int)) error {
	return ensureAccounts(ctx, p.dir, accounts, progress, func(ctx context.Context, a []Account, pr func(int)) error {
		return registerIBR(ctx, p.Endpoint(xmppclient.Plain).Addr, p.Domain(), a, pr)
	})
}
