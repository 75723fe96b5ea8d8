// Package node is the Starling server: it builds a node from its typed configuration (storage, accounts,
// router and features, TLS, client listeners, HTTP) and runs it until its context ends. Each part lives
// in a folder of its own below; this package only wires them together.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/starling-xmpp/starling/node/accounts"
	"github.com/starling-xmpp/starling/node/c2s"
	"github.com/starling-xmpp/starling/node/config"
	"github.com/starling-xmpp/starling/node/conn"
	"github.com/starling-xmpp/starling/node/httpapi"
	"github.com/starling-xmpp/starling/node/im/adhoc"
	"github.com/starling-xmpp/starling/node/im/adhoc/admin"
	"github.com/starling-xmpp/starling/node/im/blocking"
	"github.com/starling-xmpp/starling/node/im/carbons"
	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/im/offline"
	"github.com/starling-xmpp/starling/node/im/ping"
	"github.com/starling-xmpp/starling/node/im/presence"
	"github.com/starling-xmpp/starling/node/im/private"
	"github.com/starling-xmpp/starling/node/im/register"
	"github.com/starling-xmpp/starling/node/im/roster"
	"github.com/starling-xmpp/starling/node/im/vcard"
	"github.com/starling-xmpp/starling/node/im/version"
	"github.com/starling-xmpp/starling/node/metrics"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/backend"
	"github.com/starling-xmpp/starling/node/throttle"
	"github.com/starling-xmpp/starling/node/tlsconf"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Options carry what the configuration file does not: the logger, the registry, the version.
type Options struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: a new one
	Version  string
	// ThrottleWindow shortens the throttling "minute" (tests); zero means a minute.
	ThrottleWindow time.Duration
	// ThrottleUserspace polices in userspace even where eBPF could load.
	ThrottleUserspace bool
}

// Node is one running Starling server.
type Node struct {
	cfg      *config.Config
	log      *slog.Logger
	store    storage.Store
	accounts *accounts.Accounts
	router   *router.Router
	c2s      *c2s.Server
	metrics  *metrics.Metrics
	registry *prometheus.Registry
	tls      *tls.Config
	version  string
	throttle *throttle.Manager
	// registration is XEP-0077, which the client listener also serves before authentication.
	registration *register.Service

	mu        sync.Mutex
	listeners []net.Listener
	direct    []bool
	httpLn    net.Listener
}

// New builds a node and opens its listeners (so that the ports are known, and taken, when New
// returns), without serving yet. On any error everything opened so far is closed again.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *Node, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	n := &Node{cfg: cfg, log: opts.Logger, registry: opts.Registry, version: opts.Version}
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	c2sPolicy, err := ParsePolicy(cfg.TrafficThrottling)
	if err != nil {
		return nil, err
	}
	if n.metrics, err = metrics.New(n.registry); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	// The meter attaches to the node's cgroup before any socket exists: sockets take their cgroup
	// when they are created (DESIGN §5).
	if n.throttle, err = throttle.New(ctx, throttle.Options{Window: opts.ThrottleWindow, Userspace: opts.ThrottleUserspace,
		Logger: n.log, Registerer: n.registry}); err != nil {
		return nil, err
	}
	if n.store, err = backend.Open(ctx, cfg.Database.URI, cfg.DataDir); err != nil {
		return nil, fmt.Errorf("open storage %s: %w", cfg.Database.URI, err)
	}
	n.accounts = accounts.New(n.store, 0)
	tlsCfg, leaf, err := tlsconf.Load(tlsconf.Options{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
		DataDir: cfg.DataDir, Domains: cfg.VirtualHosts, Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.tls = tlsCfg
	ropts := router.Options{
		Domains:  cfg.VirtualHosts,
		Accounts: n.accounts,
		Logger:   n.log,
		Observe:  n.metrics.ObserveRoute,
	}
	var off *offline.Offline
	if cfg.OfflineMessagesLimit > 0 {
		if off, err = offline.New(offline.Options{Store: n.store, Limit: cfg.OfflineMessagesLimit, Logger: n.log}); err != nil {
			return nil, fmt.Errorf("offline storage: %w", err)
		}
		ropts.Offline = off
	}
	n.router = router.New(ropts)
	if err := n.registerFeatures(off); err != nil {
		return nil, err
	}
	limits := xml.DefaultLimits()
	limits.MaxStanzaBytes = cfg.C2S.MaxStanzaSize
	limits.MaxDepth = cfg.C2S.MaxDepth
	limits.MaxAttrs = cfg.C2S.MaxAttributes
	limits.MaxElements = cfg.C2S.MaxElements
	tlsRequired := true
	for _, l := range cfg.C2S.Listeners {
		if l.Socket == config.SocketPlain && !l.TLSRequired {
			tlsRequired = false
		}
	}
	n.c2s, err = c2s.New(c2s.Options{
		Domains:          cfg.VirtualHosts,
		DefaultDomain:    cfg.DefaultVirtualHost,
		TLS:              tlsCfg,
		Leaf:             leaf,
		StartTLSRequired: tlsRequired,
		Router:           n.router,
		Lookup:           n.accounts.Lookup,
		Limits:           limits,
		Conn: conn.Options{
			MaxPending: cfg.C2S.MaxPendingOutput,
			Silence:    cfg.C2S.PingAfter,
		},
		IdleTimeout:        cfg.C2S.IdleTimeout,
		PingWhitespace:     cfg.C2S.PingType == "whitespace",
		MaxAuthFailures:    cfg.C2S.MaxAuthAttempts,
		MaxConnsPerIP:      cfg.C2S.MaxConnectionsPerIP,
		MaxResources:       cfg.C2S.MaxResources,
		ResumeTimeout:      resumeTimeout(cfg.C2S.ResumptionTimeout),
		AuthPerIPPerMinute: cfg.C2S.MaxAuthAttemptsPerIP,
		Throttle:           n.throttle,
		Registration:       n.registration,
		Logger:             n.log,
		Metrics:            n.metrics,
		Version:            n.version,
	})
	if err != nil {
		return nil, err
	}
	for _, l := range cfg.C2S.Listeners {
		for _, addr := range l.Addrs() {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, fmt.Errorf("c2s listener %s (%s): %w", addr, l.Pos, err)
			}
			n.listeners = append(n.listeners, ln)
			n.direct = append(n.direct, l.Socket == config.SocketTLS)
			if strings.TrimSpace(cfg.TrafficThrottling.Value) == unpoliced {
				continue
			}
			if err := n.throttle.SetPort(uint16(ln.Addr().(*net.TCPAddr).Port), "c2s", c2sPolicy); err != nil {
				return nil, err
			}
		}
	}
	if cfg.HTTP.Enabled {
		for _, addr := range cfg.HTTP.Addrs()[:1] {
			if n.httpLn, err = net.Listen("tcp", addr); err != nil {
				return nil, fmt.Errorf("http listener %s: %w", addr, err)
			}
		}
	}
	return n, nil
}

// registerFeatures wires every feature module into the router: the one place that lists them.
func (n *Node) registerFeatures(off *offline.Offline) error {
	ros, err := roster.New(roster.Options{Store: n.store, Router: n.router, Logger: n.log})
	if err != nil {
		return fmt.Errorf("roster: %w", err)
	}
	block, err := blocking.New(blocking.Options{Store: n.store, Accounts: n.store, Sessions: n.router, Logger: n.log})
	if err != nil {
		return fmt.Errorf("blocking: %w", err)
	}
	popts := presence.Options{Router: n.router, Roster: ros, Blocker: block, Logger: n.log}
	if off != nil {
		popts.Offline = off
	}
	pres, err := presence.New(popts)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	n.router.HandlePresence(pres)
	block.SetPresence(pres)
	if off != nil {
		off.SetBlocker(block)
	}
	block.Register(n.router)
	n.accounts.OnDeleted(block.Forget)
	n.router.HandleIQ(roster.NS, roster.NewHandler(ros, pres))

	d := disco.New(disco.Options{Admins: n.cfg.Admins, Roster: n.store})
	d.Register(n.router)
	if off != nil {
		d.AddFeatures(disco.FeatureMsgOffline)
	}
	ping.Register(n.router)
	private.Register(n.router, private.Options{Store: n.store, Logger: n.log})
	vcard.Register(n.router, vcard.Options{Store: n.store, Logger: n.log})
	carbons.Register(n.router)
	version.Register(n.router, version.Options{Version: n.version})
	reg, err := register.New(register.Options{Enabled: n.cfg.Registration, Accounts: n.accounts, Sessions: n.router, Logger: n.log})
	if err != nil {
		return fmt.Errorf("in-band registration: %w", err)
	}
	reg.Register(n.router)
	n.registration = reg
	cmds, err := admin.Commands(admin.Options{Accounts: n.accounts, Sessions: n.router, Logger: n.log})
	if err != nil {
		return fmt.Errorf("admin commands: %w", err)
	}
	a := adhoc.New(adhoc.Options{Admins: n.cfg.Admins, Logger: n.log})
	if err := a.Add(cmds...); err != nil {
		return fmt.Errorf("admin commands: %w", err)
	}
	a.Register(n.router, d)
	return nil
}

// C2SAddrs returns the addresses the client listeners got (port 0 in tests becomes a real port).
func (n *Node) C2SAddrs() (plain, direct []net.Addr) {
	for i, ln := range n.listeners {
		if n.direct[i] {
			direct = append(direct, ln.Addr())
		} else {
			plain = append(plain, ln.Addr())
		}
	}
	return plain, direct
}

// HTTPAddr returns the HTTP listener's address, or nil when HTTP is off.
func (n *Node) HTTPAddr() net.Addr {
	if n.httpLn == nil {
		return nil
	}
	return n.httpLn.Addr()
}

// Accounts gives the account manager (the CLI and tests create users through it).
func (n *Node) Accounts() *accounts.Accounts { return n.accounts }

// DetachedSessions counts stream-management sessions waiting to be resumed (XEP-0198).
func (n *Node) DetachedSessions() int { return n.c2s.Detached() }

// Router gives the router (tests inspect sessions through it).
func (n *Node) Router() *router.Router { return n.router }

// Run serves until ctx ends, then shuts down: clients get <system-shutdown/>, storage is closed.
func (n *Node) Run(ctx context.Context) error {
	errc := make(chan error, len(n.listeners)+1)
	for i, ln := range n.listeners {
		n.log.Info("c2s listening", "addr", ln.Addr().String(), "direct_tls", n.direct[i])
		go func() { errc <- n.c2s.Serve(ctx, ln, n.direct[i]) }()
	}
	var hs *http.Server
	if n.httpLn != nil {
		hs = &http.Server{Handler: httpapi.New(httpapi.Options{Registry: n.registry, Health: n.health,
			Extra: map[string]http.Handler{"GET /throttle": httpapi.JSON(func() any { return n.throttle.Status() })}}),
			ReadHeaderTimeout: 10 * time.Second}
		n.log.Info("http listening", "addr", n.httpLn.Addr().String())
		go func() {
			if err := hs.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	n.log.Info("starling node running", "version", n.version, "domains", n.cfg.VirtualHosts, "data_dir", n.cfg.DataDir, "storage", n.cfg.Database.Driver)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	n.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if hs != nil {
		hs.Shutdown(sctx)
	}
	if err := n.c2s.Shutdown(sctx); err != nil {
		n.log.Warn("shutdown", "err", err)
	}
	n.closeAll()
	return runErr
}

func (n *Node) health(ctx context.Context) error {
	if err := n.store.Ping(ctx); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

func (n *Node) closeAll() {
	for _, ln := range n.listeners {
		ln.Close()
	}
	if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
	if n.throttle != nil {
		n.throttle.Close()
	}
}

// resumeTimeout maps the config's "0 = off" onto c2s's "0 = default, <0 = off".
func resumeTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Check validates what the config reader leaves to the node (the throttling settings), so that
// `starling config check` finds every error a start would.
func Check(cfg *config.Config) error {
	var errs []error
	for _, s := range []config.Setting{cfg.TrafficThrottling, cfg.HTTrafficThrottling} {
		if _, err := ParsePolicy(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unpoliced is the setting that leaves a listener's connections out of the meter altogether (no counting,
// no limits): for comparing the meter's cost, or for a node behind another policer.
const unpoliced = "none"

// ParsePolicy parses a throttling setting, reporting a bad one at its file:line:col.
func ParsePolicy(s config.Setting) (throttle.Policy, error) {
	if strings.TrimSpace(s.Value) == unpoliced {
		return throttle.Policy{}, nil
	}
	p, err := throttle.ParsePolicy(s.Value)
	var se *throttle.SyntaxError
	if errors.As(err, &se) {
		return p, s.Errorf(se.Column-1, "%s", se.Msg)
	}
	return p, err
}

// Throttle gives the traffic manager (tests and the HTTP view read its status).
func (n *Node) Throttle() *throttle.Manager { return n.throttle }
