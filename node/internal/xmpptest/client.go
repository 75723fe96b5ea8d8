// Package xmpptest is a small XMPP client for the node's in-process tests: it negotiates a stream the
// way a real client does (STARTTLS or direct TLS, SASL, bind) with the project's own protocol library,
// then sends raw XML and waits for elements with deadlines, never sleeps.
package xmpptest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/xmpp/sasl"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Options for Dial.
type Options struct {
	Domain    string
	User      string // localpart; "" stops after the stream features (for negotiation tests)
	Password  string
	Resource  string
	Mechanism string // default SCRAM-SHA-256
	DirectTLS bool
	NoTLS     bool // stay in plaintext
	NoBind    bool // stop after authentication and the restarted stream's features
	Timeout   time.Duration
}

// Client is one test connection.
type Client struct {
	t        testing.TB
	nc       net.Conn
	dec      *xml.Decoder
	timeout  time.Duration
	JID      string
	Features *xml.Element // the last stream features
	TLS      *tls.ConnectionState
}

// Dial connects and negotiates; any failure fails the test.
func Dial(t testing.TB, addr string, o Options) *Client {
	t.Helper()
	c, err := DialErr(addr, o)
	if err != nil {
		t.Fatalf("xmpptest: %s: %v", addr, err)
	}
	c.t = t
	t.Cleanup(func() { c.nc.Close() })
	return c
}

// DialErr is Dial returning the error.
func DialErr(addr string, o Options) (*Client, error) {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Mechanism == "" {
		o.Mechanism = "SCRAM-SHA-256"
	}
	nc, err := net.DialTimeout("tcp", addr, o.Timeout)
	if err != nil {
		return nil, err
	}
	c := &Client{nc: nc, dec: xml.NewDecoder(xml.DefaultLimits()), timeout: o.Timeout}
	if err := c.negotiate(o); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) negotiate(o Options) error {
	tcfg := &tls.Config{InsecureSkipVerify: true, ServerName: o.Domain, MinVersion: tls.VersionTLS12}
	if o.DirectTLS {
		tc := tls.Client(c.nc, tcfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("direct TLS: %w", err)
		}
		c.nc = tc
		st := tc.ConnectionState()
		c.TLS = &st
	}
	if err := c.open(o.Domain); err != nil {
		return err
	}
	if !o.NoTLS && !o.DirectTLS && c.Features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
		c.SendRaw("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		e, err := c.NextErr()
		if err != nil || string(e.Name()) != "proceed" {
			return fmt.Errorf("starttls: %v %v", e, err)
		}
		tc := tls.Client(c.nc, tcfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("starttls handshake: %w", err)
		}
		c.nc = tc
		st := tc.ConnectionState()
		c.TLS = &st
		c.dec = xml.NewDecoder(xml.DefaultLimits())
		if err := c.open(o.Domain); err != nil {
			return err
		}
	}
	if o.User == "" {
		return nil
	}
	if err := c.auth(o); err != nil {
		return err
	}
	c.dec = xml.NewDecoder(xml.DefaultLimits())
	if err := c.open(o.Domain); err != nil {
		return err
	}
	if o.NoBind {
		return nil
	}
	res := ""
	if o.Resource != "" {
		res = "<resource>" + o.Resource + "</resource>"
	}
	c.SendRaw("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" + res + "</bind></iq>")
	e, err := c.NextErr()
	if err != nil {
		return err
	}
	j := e.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind")
	if string(e.Attr("type")) != "result" || j == nil || j.Child("", "jid") == nil {
		return fmt.Errorf("bind: %s", e)
	}
	c.JID = string(j.Child("", "jid").Text())
	return nil
}

func (c *Client) open(domain string) error {
	c.SendRaw("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + "' version='1.0'>")
	c.nc.SetReadDeadline(time.Now().Add(c.timeout))
	for {
		tok, err := c.dec.Next()
		if err == xml.ErrNeedMore {
			if _, err := c.dec.ReadFrom(c.nc); err != nil {
				return fmt.Errorf("read stream header: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if tok.Kind == xml.StreamStart {
			break
		}
		return fmt.Errorf("expected a stream header, got %v", tok.Elem)
	}
	f, err := c.NextErr()
	if err != nil {
		return err
	}
	if string(f.Name()) != "features" {
		return fmt.Errorf("expected stream features, got %s", f)
	}
	c.Features = f
	return nil
}

func (c *Client) auth(o Options) error {
	cl, err := sasl.NewClient(o.Mechanism, sasl.ClientConfig{Username: o.User, Password: o.Password})
	if err != nil {
		return err
	}
	out, _, err := cl.Step(nil)
	if err != nil {
		return err
	}
	c.SendRaw("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + o.Mechanism + "'>" + b64(out) + "</auth>")
	for {
		e, err := c.NextErr()
		if err != nil {
			return err
		}
		switch string(e.Name()) {
		case "challenge":
			in, err := base64.StdEncoding.DecodeString(string(e.Text()))
			if err != nil {
				return err
			}
			out, _, err := cl.Step(in)
			if err != nil {
				return err
			}
			c.SendRaw("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + b64(out) + "</response>")
		case "success":
			if t := strings.TrimSpace(string(e.Text())); t != "" {
				in, err := base64.StdEncoding.DecodeString(t)
				if err != nil {
					return err
				}
				if _, _, err := cl.Step(in); err != nil {
					return fmt.Errorf("server signature: %w", err)
				}
			}
			return nil
		default:
			return &AuthError{Elem: e.String()}
		}
	}
}

// AuthError is a SASL failure.
type AuthError struct{ Elem string }

func (e *AuthError) Error() string { return "authentication failed: " + e.Elem }

func b64(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// SendRaw writes raw XML.
func (c *Client) SendRaw(s string) {
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := c.nc.Write([]byte(s)); err != nil && c.t != nil {
		c.t.Fatalf("xmpptest: write: %v", err)
	}
}

// Send is SendRaw with fmt formatting.
func (c *Client) Send(format string, args ...any) { c.SendRaw(fmt.Sprintf(format, args...)) }

// ErrStreamEnd is returned when the server closed the stream.
var ErrStreamEnd = errors.New("stream closed by the server")

// NextErr returns the next depth-1 element (an owned copy).
func (c *Client) NextErr() (*xml.Element, error) {
	return c.NextBefore(time.Now().Add(c.timeout))
}

// NextBefore returns the next depth-1 element that arrives before the deadline.
func (c *Client) NextBefore(deadline time.Time) (*xml.Element, error) {
	c.nc.SetReadDeadline(deadline)
	for {
		tok, err := c.dec.Next()
		if err == xml.ErrNeedMore {
			if _, err := c.dec.ReadFrom(c.nc); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		switch tok.Kind {
		case xml.StreamEnd:
			return nil, ErrStreamEnd
		case xml.ElementKind:
			return tok.Elem.Clone(), nil
		}
	}
}

// Next returns the next element or fails the test.
func (c *Client) Next() *xml.Element {
	c.t.Helper()
	e, err := c.NextErr()
	if err != nil {
		c.t.Fatalf("xmpptest %s: waiting for an element: %v", c.JID, err)
	}
	return e
}

// Expect reads elements until one satisfies match (others are skipped) or the timeout passes.
func (c *Client) Expect(what string, match func(*xml.Element) bool) *xml.Element {
	c.t.Helper()
	deadline := time.Now().Add(c.timeout)
	for time.Now().Before(deadline) {
		e, err := c.NextErr()
		if err != nil {
			c.t.Fatalf("xmpptest %s: waiting for %s: %v", c.JID, what, err)
		}
		if match(e) {
			return e
		}
	}
	c.t.Fatalf("xmpptest %s: no %s before the deadline", c.JID, what)
	return nil
}

// ExpectID waits for the stanza answering id.
func (c *Client) ExpectID(id string) *xml.Element {
	c.t.Helper()
	return c.Expect("reply to "+id, func(e *xml.Element) bool { return string(e.Attr("id")) == id })
}

// Close ends the stream and the connection.
func (c *Client) Close() {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write([]byte("</stream:stream>"))
	c.nc.Close()
}

// Conn returns the underlying connection.
func (c *Client) Conn() net.Conn { return c.nc }

// WaitClosed waits until the server closes the connection, returning the stream error condition, if any.
func (c *Client) WaitClosed(ctx context.Context) (condition string, err error) {
	for {
		e, err := c.NextErr()
		if err != nil {
			return condition, err
		}
		if string(e.Name()) == "error" {
			if f := e.FirstChild(); f != nil {
				condition = string(f.Name())
			}
		}
	}
}
