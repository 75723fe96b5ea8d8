package peer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/starling-xmpp/starling/perf/xmppclient"
)

// Ejabberd is a private ejabberd instance (Debian's package) run straight
// from the Erlang VM as the ejabberd user, without ejabberdctl and without
// Erlang distribution, so no epmd daemon outlives it.
type Ejabberd struct {
	opts     Options
	dir      string
	c2s, tls int
	proc     process
}

// NewEjabberd returns an ejabberd on 127.0.0.1:c2sPort (plain/STARTTLS) and
// tlsPort (direct TLS), with state under opts.Dir/ejabberd.
func NewEjabberd(opts Options, c2sPort, tlsPort int) *Ejabberd {
	return &Ejabberd{opts: opts, dir: filepath.Join(opts.Dir, "ejabberd"), c2s: c2sPort, tls: tlsPort}
}

// Name implements Server.
func (e *Ejabberd) Name() string { return "ejabberd" }

// Domain implements Server.
func (e *Ejabberd) Domain() string { return e.opts.domain() }

// PID implements Server.
func (e *Ejabberd) PID() int { return e.proc.pid() }

// Endpoint implements Server.
func (e *Ejabberd) Endpoint(sec xmppclient.Security) Endpoint {
	port := e.c2s
	if sec == xmppclient.DirectTLS {
		port = e.tls
	}
	return Endpoint{Addr: "127.0.0.1:" + strconv.Itoa(port), Security: sec}
}

// Check implements Server: it installs the package when missing.
func (e *Ejabberd) Check(ctx context.Context) error {
	if err := EnsurePackages(ctx, e.opts.Log, "ejabberd"); err != nil {
		return err
	}
	if _, err := os.Stat("/usr/bin/erl"); err != nil {
		return fmt.Errorf("ejabberd installed but no Erlang runtime: %w", err)
	}
	return nil
}

// Version implements Server.
func (e *Ejabberd) Version(ctx context.Context) string { return PackageVersion(ctx, "ejabberd") }

var ejabberdConfig = template.Must(template.New("ejabberd.yml").Parse(`# Written by starling-bench: a private instance for measurements.
hosts:
  - {{.Domain}}
loglevel: warning
certfiles:
  - {{.Dir}}/both.pem
# No shaper: the server's own speed is measured, not a rate limit.
listen:
  -
    port: {{.C2S}}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    max_stanza_size: 262144
    starttls: true
  -
    port: {{.TLS}}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    max_stanza_size: 262144
    tls: true
auth_method: internal
acl:
  local:
    user_regexp: ""
access_rules:
  register:
    allow: all
  c2s:
    allow: all
registration_timeout: infinity
modules:
  mod_disco: {}
  mod_roster: {}
  mod_register:
    ip_access: all
    access: register
`))

func (e *Ejabberd) writeConfig() error {
	for _, d := range []string{e.dir, filepath.Join(e.dir, "spool"), filepath.Join(e.dir, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("ejabberd state dir: %w", err)
		}
	}
	if err := writeCert(e.dir, e.Domain()); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(e.dir, "ejabberd.yml"))
	if err != nil {
		return fmt.Errorf("write ejabberd config: %w", err)
	}
	err = ejabberdConfig.Execute(f, map[string]any{"Domain": e.Domain(), "Dir": e.dir, "C2S": e.c2s, "TLS": e.tls})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write ejabberd config: %w", err)
	}
	return chownTree(e.dir, "ejabberd")
}

// Start implements Server.
func (e *Ejabberd) Start(ctx context.Context) error {
	if err := e.writeConfig(); err != nil {
		return err
	}
	// The same VM flags as Debian's ejabberdctl, minus the node name: no
	// distribution means no epmd left behind.
	argv := []string{"/usr/bin/erl", "-noinput", "+K", "true", "+P", "250000",
		"-env", "ERL_CRASH_DUMP_BYTES", "0",
		"-mnesia", "dir", strconv.Quote(filepath.Join(e.dir, "spool")),
		"-s", "ejabberd"}
	env := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + e.dir,
		"EJABBERD_CONFIG_PATH=" + filepath.Join(e.dir, "ejabberd.yml"),
		"EJABBERD_LOG_PATH=" + filepath.Join(e.dir, "log", "ejabberd.log"),
		"ERL_MAX_PORTS=32000",
		"ERL_MAX_ETS_TABLES=1400",
		"ERL_LIBS=/usr/lib/x86_64-linux-gnu",
		"ERL_CRASH_DUMP=" + filepath.Join(e.dir, "log", "erl_crash.dump"),
	}
	logPath := filepath.Join(e.dir, "log", "console.log")
	account := ""
	if os.Geteuid() == 0 {
		account = "ejabberd" // the package's own user; ejabberd refuses nothing as root, but files stay theirs
	}
	if err := e.proc.start(argv, env, e.dir, account, logPath); err != nil {
		return fmt.Errorf("start ejabberd: %w", err)
	}
	if err := waitReady(ctx, &e.proc, e.Endpoint(xmppclient.Plain).Addr, e.Domain(), logPath); err != nil {
		e.proc.stop(5 * time.Second)
		return fmt.Errorf("start ejabberd: %w", err)
	}
	return nil
}

// Stop implements Server.
func (e *Ejabberd) Stop() error { return e.proc.stop(15 * time.Second) }

// CreateUsers implements Server with in-band registration, the fastest way
// that needs no Erlang distribution (ejabberdctl register starts a VM per user).
func (e *Ejabberd) CreateUsers(ctx context.Context, accounts []Account, progress func(int)) error {
	return ensureAccounts(ctx, e.dir, accounts, progress, func(ctx context.Context, a []Account, p func(int)) error {
		return registerIBR(ctx, e.Endpoint(xmppclient.Plain).Addr, e.Domain(), a, p)
	})
}

// luaString quotes s for a Lua configuration file.
func luaString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
