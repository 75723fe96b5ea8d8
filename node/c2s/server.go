// Package c2s is the client listener: it accepts client connections, negotiates the stream (STARTTLS or
// direct TLS, SASL, resource binding; RFC 6120 §5–§7, XEP-0368) and hands every stanza of a bound
// session to the router. The per-connection state is kept small: an idle session is one parked
// reader goroutine, a session struct and the TLS state.
package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/starling-xmpp/starling/node/conn"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/throttle"
	"github.com/starling-xmpp/starling/xmpp/sasl"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Registration serves in-band registration (XEP-0077) before authentication.
type Registration interface {
	// Enabled reports whether registration is offered at all.
	Enabled() bool
	// HandleUnauthenticated answers a jabber:iq:register request from a client that has not
	// authenticated, returning the whole reply stanza.
	HandleUnauthenticated(ctx context.Context, domain string, e *xml.Element) []byte
}

// Metrics receives what the listener counts. A nil Metrics counts nothing.
type Metrics interface {
	ConnOpened()
	ConnClosed(reason conn.Reason)
	SessionBound()
	SessionEnded()
	Auth(mechanism string, ok bool)
	StanzaIn(kind string)
	StanzaOut(kind string)
}

// Options configure a Server.
type Options struct {
	// Domains are the served domains; DefaultDomain answers a stream header without 'to'.
	Domains       []string
	DefaultDomain string
	// TLS is the server TLS configuration; Leaf is its certificate (for tls-server-end-point).
	TLS  *tls.Config
	Leaf *x509.Certificate
	// StartTLSRequired refuses SASL on a plaintext stream (the default and RFC 6120's advice).
	StartTLSRequired bool
	Router           *router.Router
	// Lookup gives the SASL credential lookup of a domain.
	Lookup       func(domain string) sasl.Lookup
	Registration Registration
	// SASLSecret keys the fake salts of unknown users.
	SASLSecret []byte
	Limits     xml.Limits
	Conn       conn.Options
	// MaxAuthFailures ends a connection after that many failed SASL exchanges (default 3).
	MaxAuthFailures int
	// MaxResources bounds the sessions one account may have bound at once (default 64).
	MaxResources int
	// MaxConnsPerIP bounds simultaneous connections from one address (default 100; <0 unlimited).
	MaxConnsPerIP int
	// AuthPerIPPerMinute bounds failed SASL exchanges from one address per minute (default 60; <0
	// unlimited); past it, new exchanges from that address are refused until the minute ends.
	AuthPerIPPerMinute int
	// IdleTimeout closes a connection silent this long. A bound client silent for Conn.Silence is
	// pinged (XEP-0199) first; a connection that has not bound a resource is closed at its first
	// silence. Default 5 minutes.
	IdleTimeout time.Duration
	// ResumeTimeout is how long a stream-management session whose link died waits for its client
	// to resume it (XEP-0198); 0 offers no resumption. Default 5 minutes; <0 turns it off.
	ResumeTimeout time.Duration
	// PingWhitespace keeps silent clients alive with a space instead of an XEP-0199 ping.
	PingWhitespace bool
	// Throttle, if set, polices connections (DESIGN §2): bytes in the kernel or the userspace meter,
	// stanzas here.
	Throttle *throttle.Manager
	Logger   *slog.Logger
	Metrics  Metrics
	// Version is announced nowhere but logs.
	Version string
	// NoPoller keeps a parked goroutine per idle connection instead of the epoll poller (for tests
	// and comparisons).
	NoPoller bool
}

// Server accepts client connections on any number of listeners.
type Server struct {
	opts    Options
	log     *slog.Logger
	domains map[string]struct{}

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	perIP     map[netip.Addr]int
	auths     map[netip.Addr]*window
	closing   bool
	wg        sync.WaitGroup
	resumable map[string]*session // XEP-0198 resumption ids
	poller    *conn.Poller        // nil: idle connections keep a goroutine
	connOpts  conn.Options        // shared by every connection: set in NewServer, never written after
}

type window struct {
	minute int64
	n      int
}

// New checks opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Router == nil || opts.Lookup == nil {
		return nil, errors.New("c2s: Router and Lookup are required")
	}
	if len(opts.Domains) == 0 {
		return nil, errors.New("c2s: no domain to serve")
	}
	if opts.DefaultDomain == "" {
		opts.DefaultDomain = opts.Domains[0]
	}
	if opts.MaxAuthFailures <= 0 {
		opts.MaxAuthFailures = 3
	}
	switch {
	case opts.ResumeTimeout == 0:
		opts.ResumeTimeout = 5 * time.Minute
	case opts.ResumeTimeout < 0:
		opts.ResumeTimeout = 0
	}
	if opts.MaxResources <= 0 {
		opts.MaxResources = 64
	}
	if opts.MaxConnsPerIP == 0 {
		opts.MaxConnsPerIP = 100
	}
	if opts.AuthPerIPPerMinute == 0 {
		opts.AuthPerIPPerMinute = 60
	}
	if opts.Limits == (xml.Limits{}) {
		opts.Limits = xml.DefaultLimits()
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		domains:   make(map[string]struct{}),
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
		perIP:     make(map[netip.Addr]int),
		auths:     make(map[netip.Addr]*window),
		resumable: make(map[string]*session),
	}
	for _, d := range opts.Domains {
		s.domains[d] = struct{}{}
	}
	if !opts.NoPoller {
		// The sweep honours silence periods to within a quarter of them (at most a second).
		tick := min(max(opts.Conn.Silence/4, 10*time.Millisecond), time.Second)
		if opts.Conn.Silence == 0 {
			tick = time.Second
		}
		p, err := conn.NewPoller(tick)
		if err != nil {
			return nil, err
		}
		s.poller = p
	}
	s.connOpts = opts.Conn
	s.connOpts.Poller = s.poller
	if s.poller != nil && s.connOpts.Hot == 0 {
		// A quarter second keeps a conversation on the fast wake-up path; a session silent longer costs no
		// goroutine.
		s.connOpts.Hot = 250 * time.Millisecond
	}
	return s, nil
}

// Serve accepts connections on ln until ctx ends or Shutdown is called. With directTLS the TLS
// handshake comes first (XEP-0368); otherwise the stream starts in plaintext and offers STARTTLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener, directTLS bool) error {
	if directTLS && s.opts.TLS == nil {
		return errors.New("c2s: direct TLS listener without a certificate")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			// Out of file descriptors and similar: back off instead of spinning.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.log.Warn("c2s: accept failed", "addr", ln.Addr(), "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		delay = 0
		tc, ok := nc.(*net.TCPConn)
		if !ok {
			nc.Close()
			continue
		}
		ip := remoteIP(tc)
		if !s.admit(ip) {
			s.log.Warn("c2s: too many connections from one address", "ip", ip)
			tc.SetLinger(0)
			tc.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveConn(ctx, tc, directTLS, ip)
	}
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func (s *Server) admit(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.opts.MaxConnsPerIP > 0 && s.perIP[ip] >= s.opts.MaxConnsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) release(ip netip.Addr) {
	s.mu.Lock()
	if s.perIP[ip] <= 1 {
		delete(s.perIP, ip)
	} else {
		s.perIP[ip]--
	}
	s.mu.Unlock()
}

// authBlocked reports whether ip used up its failed-authentication budget for this minute.
func (s *Server) authBlocked(ip netip.Addr) bool {
	if s.opts.AuthPerIPPerMinute < 0 {
		return false
	}
	now := time.Now().Unix() / 60
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.auths[ip]
	return w != nil && w.minute == now && w.n >= s.opts.AuthPerIPPerMinute
}

// authFailed counts a failed authentication from ip. Only failures count: many users behind one
// address (a NAT, an office) log in legitimately, a password guesser fails.
func (s *Server) authFailed(ip netip.Addr) {
	now := time.Now().Unix() / 60
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.auths[ip]
	if w == nil || w.minute != now {
		if len(s.auths) > 100_000 {
			// Bound the table: forget other addresses' past minutes.
			for k, v := range s.auths {
				if v.minute != now {
					delete(s.auths, k)
				}
			}
		}
		w = &window{minute: now}
		s.auths[ip] = w
	}
	w.n++
}

// serveConn sets a connection up and reads until it parks or ends; the goroutine then exits, and the
// connection lives on without one (see conn.Serve). The connection is done when both its reader has
// ended and its socket has closed.
func (s *Server) serveConn(ctx context.Context, tc *net.TCPConn, directTLS bool, ip netip.Addr) {
	c, err := conn.New(tc, &s.connOpts)
	if err != nil {
		s.log.Warn("c2s: connection setup failed", "err", err)
		s.release(ip)
		s.wg.Done()
		return
	}
	var thr *throttle.Conn
	if s.opts.Throttle != nil {
		err := c.Wrap(func(nc net.Conn) (net.Conn, error) {
			w, t, err := s.opts.Throttle.Track(nc)
			thr = t
			return w, err
		})
		if err != nil {
			s.log.Error("c2s: cannot police a connection; closed it", "remote", c.RemoteAddr(), "err", err)
			s.release(ip)
			s.wg.Done()
			return
		}
	}
	s.opts.Metrics.ConnOpened()
	sess := newSession(s, c, ip)
	sess.thr = thr
	thr.SetOwner(sess)
	sess.pending.Store(2)
	c.OnClose(sess)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close(conn.ReasonShutdown)
		sess.done()
		return
	}
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	sess.run(ctx, directTLS)
}

// sessionDone forgets a connection whose reader ended and whose socket closed.
func (s *Server) sessionDone(sess *session) {
	sess.thr.Release()
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.opts.Metrics.ConnClosed(sess.c.Reason())
	s.release(sess.ip)
	s.wg.Done()
}

// Shutdown stops accepting, ends every session with <system-shutdown/>, and waits for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	var detached []*session
	for _, sess := range s.resumable {
		if sess.detached {
			detached = append(detached, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.CloseStream("system-shutdown", "the server is shutting down")
	}
	// Sessions waiting for their clients to resume end now: their unacknowledged messages go offline.
	for _, sess := range detached {
		sess.expire()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		if s.poller != nil {
			return s.poller.Close()
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("c2s: shutdown: %d sessions still open: %w", s.Sessions(), ctx.Err())
	}
}

// Sessions counts open connections.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

type nopMetrics struct{}

func (nopMetrics) ConnOpened()            {}
func (nopMetrics) ConnClosed(conn.Reason) {}
func (nopMetrics) SessionBound()          {}
func (nopMetrics) SessionEnded()          {}
func (nopMetrics) Auth(string, bool)      {}
func (nopMetrics) StanzaIn(string)        {}
func (nopMetrics) StanzaOut(string)       {}
