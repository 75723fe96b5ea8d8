// Package xmppclient is the load generator's XMPP client: it dials plain,
// STARTTLS or direct TLS, authenticates with SASL PLAIN or SCRAM-SHA-1/256
// (caching salted passwords), binds a resource, sends initial presence, and
// then exchanges raw stanza bytes with batched writes and no per-message
// allocation. Streams are parsed by the project's xmpp/xml decoder and SASL
// runs through its xmpp/sasl client.
package xmppclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/starling-xmpp/starling/xmpp/sasl"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Security says how the client protects its connection.
type Security int

const (
	// Plain sends everything in clear (loopback measurements of the XMPP core).
	Plain Security = iota
	// StartTLS upgrades the stream with <starttls/>.
	StartTLS
	// DirectTLS starts TLS before the stream (XEP-0368).
	DirectTLS
)

// String returns the name used in flags and results.
func (s Security) String() string {
	switch s {
	case Plain:
		return "plain"
	case StartTLS:
		return "starttls"
	case DirectTLS:
		return "tls"
	}
	return fmt.Sprintf("Security(%d)", int(s))
}

// ParseSecurity parses "plain", "starttls" or "tls".
func ParseSecurity(s string) (Security, error) {
	switch s {
	case "plain":
		return Plain, nil
	case "starttls":
		return StartTLS, nil
	case "tls":
		return DirectTLS, nil
	}
	return 0, fmt.Errorf("unknown security %q (want plain, starttls or tls)", s)
}

// Config describes one client session.
type Config struct {
	Addr      string // server host:port
	LocalAddr string // source IP to dial from; empty lets the kernel choose
	Domain    string // XMPP domain, the stream's "to"
	User      string // local part
	Password  string
	Resource  string
	Security  Security
	Mechanism string          // "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", ...
	Cache     *sasl.SaltCache // shared salted-password cache; may be nil
	Presence  bool            // send initial presence after binding
	// TLSConfig is used for StartTLS and DirectTLS; nil means a config that
	// accepts the harness's self-signed loopback certificates.
	TLSConfig *tls.Config
}

// Client is one established XMPP session. Reads and writes may run in two
// different goroutines; each side is single-goroutine.
type Client struct {
	conn   net.Conn
	rd     *reader
	wbuf   []byte
	jid    string
	domain string
}

// ErrConflict is returned by Register when the account exists already.
var ErrConflict = errors.New("account exists")

// Namespaces the client checks elements against.
const (
	nsTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind = "urn:ietf:params:xml:ns:xmpp-bind"
)

func header(domain string) string {
	return "<?xml version='1.0'?><stream:stream to='" + domain +
		"' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
}

func tlsConfig(cfg *Config) *tls.Config {
	if cfg.TLSConfig != nil {
		return cfg.TLSConfig
	}
	// The harness's servers present self-signed certificates on loopback.
	return &tls.Config{InsecureSkipVerify: true, ServerName: cfg.Domain}
}

// dial opens the TCP (and for DirectTLS the TLS) connection and ties its
// deadline to ctx so that every blocking step below honours cancellation.
func dial(ctx context.Context, cfg *Config) (net.Conn, func() bool, error) {
	d := net.Dialer{}
	if cfg.LocalAddr != "" {
		ip := net.ParseIP(cfg.LocalAddr)
		if ip == nil {
			return nil, nil, fmt.Errorf("bad source address %q", cfg.LocalAddr)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", cfg.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	if cfg.Security == DirectTLS {
		tc := tls.Client(c, tlsConfig(cfg))
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			c.Close()
			return nil, nil, fmt.Errorf("TLS handshake with %s: %w", cfg.Addr, err)
		}
		c = tc
	}
	return c, stop, nil
}

// Dial connects, negotiates the stream, authenticates, binds and (if asked)
// sends initial presence. ctx bounds the whole negotiation.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	conn, stop, err := dial(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, rd: newReader(conn), domain: cfg.Domain}
	if err := c.negotiate(ctx, &cfg); err != nil {
		stop()
		c.conn.Close()
		return nil, fmt.Errorf("session %s@%s: %w", cfg.User, cfg.Domain, err)
	}
	if !stop() {
		c.conn.Close()
		return nil, ctx.Err()
	}
	c.conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *Client) negotiate(ctx context.Context, cfg *Config) error {
	feats, err := c.open()
	if err != nil {
		return err
	}
	if cfg.Security == StartTLS {
		if !bytes.Contains(feats, []byte("<starttls")) {
			return errors.New("server does not offer STARTTLS")
		}
		if err := c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
			return err
		}
		e, err := c.next()
		if err != nil {
			return fmt.Errorf("read STARTTLS answer: %w", err)
		}
		if !e.Is(nsTLS, "proceed") {
			return fmt.Errorf("STARTTLS refused: %.200s", e.Raw())
		}
		if c.rd.dec.Buffered() != 0 {
			return errors.New("data after <proceed/> before the TLS handshake")
		}
		tc := tls.Client(c.conn, tlsConfig(cfg))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("STARTTLS handshake: %w", err)
		}
		c.conn = tc
		c.rd.restart(tc)
		if feats, err = c.open(); err != nil {
			return err
		}
	}
	if !bytes.Contains(feats, []byte(">"+cfg.Mechanism+"<")) {
		return &UnsupportedError{What: "SASL mechanism " + cfg.Mechanism}
	}
	mech, err := sasl.NewClient(cfg.Mechanism, sasl.ClientConfig{Username: cfg.User, Password: cfg.Password, Cache: cfg.Cache})
	if err != nil {
		return err
	}
	if err := c.authenticate(cfg.Mechanism, mech); err != nil {
		return err
	}
	if feats, err = c.open(); err != nil {
		return err
	}
	if err := c.bind(cfg.Resource); err != nil {
		return err
	}
	if bytes.Contains(feats, []byte("urn:ietf:params:xml:ns:xmpp-session")) && !sessionOptional(feats) {
		if err := c.iq("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>", "sess"); err != nil {
			return fmt.Errorf("session establishment: %w", err)
		}
	}
	if cfg.Presence {
		if err := c.send("<presence/>"); err != nil {
			return err
		}
	}
	return nil
}

// UnsupportedError says the server does not offer what the scenario asked for.
type UnsupportedError struct{ What string }

func (e *UnsupportedError) Error() string { return e.What + " not offered by the server" }

func sessionOptional(feats []byte) bool {
	i := bytes.Index(feats, []byte("urn:ietf:params:xml:ns:xmpp-session"))
	rest := feats[i:]
	end := bytes.Index(rest, []byte("</session>"))
	return end >= 0 && bytes.Contains(rest[:end], []byte("<optional"))
}

// open sends a stream header and returns the raw <stream:features/>.
func (c *Client) open() ([]byte, error) {
	if err := c.send(header(c.domain)); err != nil {
		return nil, err
	}
	tok, err := c.rd.next()
	if err != nil {
		return nil, fmt.Errorf("read stream header: %w", err)
	}
	if tok.Kind != xml.StreamStart {
		return nil, fmt.Errorf("expected stream header, got %v", tok.Kind)
	}
	e, err := c.next()
	if err != nil {
		return nil, fmt.Errorf("read stream features: %w", err)
	}
	if !e.Is(xml.NSStream, "features") {
		return nil, fmt.Errorf("expected stream features, got %.200s", e.Raw())
	}
	return bytes.Clone(e.Raw()), nil
}

// next reads the next element and turns stream errors and stream ends into
// errors. The element is valid until the following read.
func (c *Client) next() (*xml.Element, error) {
	tok, err := c.rd.next()
	if err != nil {
		return nil, err
	}
	switch {
	case tok.Kind == xml.StreamEnd:
		return nil, errors.New("server closed the stream")
	case tok.Kind != xml.ElementKind:
		return nil, fmt.Errorf("unexpected %v", tok.Kind)
	case tok.Elem.Is(xml.NSStream, "error"):
		return nil, fmt.Errorf("stream error: %.300s", tok.Elem.Raw())
	}
	return tok.Elem, nil
}

func (c *Client) authenticate(name string, m *sasl.Client) error {
	first, done, err := m.Step(nil)
	if err != nil {
		return err
	}
	resp := "="
	if len(first) > 0 {
		resp = base64.StdEncoding.EncodeToString(first)
	}
	if err := c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + name + "'>" + resp + "</auth>"); err != nil {
		return err
	}
	for range 8 { // SCRAM needs one round trip; bound the loop anyway
		e, err := c.next()
		if err != nil {
			return fmt.Errorf("SASL %s: %w", name, err)
		}
		var data []byte
		if e.Is(nsSASL, "challenge") || e.Is(nsSASL, "success") {
			if data, err = sasl.DecodePayload(bytes.TrimSpace(e.Text())); err != nil {
				return fmt.Errorf("SASL %s: bad payload from server: %w", name, err)
			}
		}
		switch {
		case e.Is(nsSASL, "challenge"):
			r, _, err := m.Step(data)
			if err != nil {
				return err
			}
			if err := c.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(r) + "</response>"); err != nil {
				return err
			}
		case e.Is(nsSASL, "success"):
			if !done { // SCRAM: verify the server's signature before trusting it
				if _, done, err = m.Step(data); err != nil {
					return err
				}
			}
			if !done {
				return fmt.Errorf("SASL %s: success before the exchange finished", name)
			}
			c.rd.restart(c.conn)
			return nil
		case e.Is(nsSASL, "failure"):
			return fmt.Errorf("SASL %s failed: %.300s", name, e.Raw())
		default:
			return fmt.Errorf("SASL %s: unexpected %.200s", name, e.Raw())
		}
	}
	return fmt.Errorf("SASL %s: too many challenges", name)
}

func (c *Client) bind(resource string) error {
	req := "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
	if resource != "" {
		req += "<resource>" + resource + "</resource>"
	}
	if err := c.send(req + "</bind></iq>"); err != nil {
		return err
	}
	for range 16 {
		e, err := c.next()
		if err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if string(e.Name()) != "iq" || string(e.Attr("id")) != "bind" {
			continue // e.g. an early presence or a server ping
		}
		if string(e.Attr("type")) != "result" {
			return fmt.Errorf("bind refused: %.300s", e.Raw())
		}
		var j []byte
		if b := e.Child(nsBind, "bind"); b != nil {
			if je := b.Child(nsBind, "jid"); je != nil {
				j = je.Text()
			}
		}
		if len(j) == 0 {
			return fmt.Errorf("bind result without a JID: %.300s", e.Raw())
		}
		c.jid = string(j)
		return nil
	}
	return errors.New("bind: no answer among the first 16 stanzas")
}

// iq sends req and waits for the response with the given id.
func (c *Client) iq(req, id string) error {
	if err := c.send(req); err != nil {
		return err
	}
	for range 16 {
		e, err := c.next()
		if err != nil {
			return err
		}
		if string(e.Name()) != "iq" || string(e.Attr("id")) != id {
			continue
		}
		if string(e.Attr("type")) != "result" {
			return fmt.Errorf("iq %s failed: %.300s", id, e.Raw())
		}
		return nil
	}
	return fmt.Errorf("iq %s: no answer among the first 16 stanzas", id)
}

func (c *Client) send(s string) error {
	c.wbuf = append(c.wbuf[:0], s...)
	return c.Flush()
}

// Register creates an account with in-band registration (XEP-0077) on a
// fresh unauthenticated stream. It returns ErrConflict if the account exists.
func Register(ctx context.Context, cfg Config) error {
	conn, stop, err := dial(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stop()
	defer conn.Close()
	c := &Client{conn: conn, rd: newReader(conn), domain: cfg.Domain}
	feats, err := c.open()
	if err != nil {
		return fmt.Errorf("register %s: %w", cfg.User, err)
	}
	if cfg.Security == StartTLS {
		return errors.New("register: use plain or direct TLS")
	}
	_ = feats
	err = c.iq("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>"+cfg.User+
		"</username><password>"+cfg.Password+"</password></query></iq>", "reg")
	if err != nil {
		if strings.Contains(err.Error(), "<conflict") {
			return ErrConflict
		}
		return fmt.Errorf("register %s: %w", cfg.User, err)
	}
	return nil
}

// JID returns the full JID the server bound.
func (c *Client) JID() string { return c.jid }

// Buffer returns the pending output buffer for appending stanzas without
// allocating; pass the result to SetBuffer. The next Flush writes it.
func (c *Client) Buffer() []byte { return c.wbuf }

// SetBuffer stores the pending output returned by appending to Buffer.
func (c *Client) SetBuffer(b []byte) { c.wbuf = b }

// Write appends p to the pending output.
func (c *Client) Write(p []byte) (int, error) {
	c.wbuf = append(c.wbuf, p...)
	return len(p), nil
}

// Flush writes the pending output with one write call.
func (c *Client) Flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.conn.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Next returns the next token from the server (xmpp/xml). The token's
// element is valid until the following call.
func (c *Client) Next() (xml.Token, error) { return c.rd.next() }

// SetReadDeadline bounds the next reads.
func (c *Client) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline bounds the next writes.
func (c *Client) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// Close ends the stream politely (without waiting for the server's
// answer) and closes the connection.
func (c *Client) Close() error {
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.wbuf = append(c.wbuf[:0], "</stream:stream>"...)
	c.Flush()
	return c.conn.Close()
}

// Abort closes the connection without ending the stream.
func (c *Client) Abort() error { return c.conn.Close() }

// Probe opens a stream and reads the server's features, then closes. It
// reports whether a server is ready to serve clients on addr.
func Probe(ctx context.Context, addr, domain string, sec Security) error {
	cfg := Config{Addr: addr, Domain: domain, Security: sec}
	conn, stop, err := dial(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stop()
	defer conn.Close()
	c := &Client{conn: conn, rd: newReader(conn), domain: domain}
	if _, err := c.open(); err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	return nil
}

// Release returns the client's buffers for a session that will sit idle,
// so that holding thousands of sessions costs the generator little memory.
// Reading stays possible; the decoder takes a buffer again when needed.
func (c *Client) Release() {
	c.rd.dec.Release()
	c.wbuf = nil
}
