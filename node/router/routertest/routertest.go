// Package routertest is for tests: it holds the scaffolding that the tests of the router and of the
// features plugged into it (node/im/...) share, so that each test says only what it checks. It gives
// a recording Sink and Closer for a router.Resource, Parse to turn a stanza as a client writes it into
// an element, Reply to read the server's answer with encoding/xml, and Client, a bound session that
// sends stanzas through router.Route as its c2s session would.
//
// Nothing here is used by the server itself.
package routertest

import (
	"bytes"
	"encoding/xml"
	"slices"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	sxml "github.com/starling-xmpp/starling/xmpp/xml"
)

// StreamHeader opens the jabber:client stream that Parse decodes a stanza inside, as a client sends it.
const StreamHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"

// Sink is a router.Sink that records every stanza a resource is sent, each as its own copy of the
// bytes a connection would write. It is safe for concurrent use: features may deliver from other
// goroutines than the test's.
type Sink struct {
	mu  sync.Mutex
	got [][]byte
}

// Write records a copy of p, which the caller may reuse.
func (s *Sink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, append([]byte(nil), p...))
	return nil
}

// WriteElement records e serialised with set applied, as a connection would write it.
func (s *Sink) WriteElement(e *sxml.Element, set ...sxml.Attr) error {
	return s.Write(e.AppendTo(nil, set...))
}

// Take returns the stanzas recorded since the last Take, oldest first, and forgets them.
func (s *Sink) Take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

// TakeString is Take with the stanzas joined as they would follow each other on the wire; "" when
// nothing was sent.
func (s *Sink) TakeString() string { return string(bytes.Join(s.Take(), nil)) }

// All returns the stanzas recorded since the last Take without forgetting them.
func (s *Sink) All() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// Len is the number of stanzas recorded since the last Take.
func (s *Sink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// Closer is a router.Closer that records the stream error conditions a session was ended with. It is
// safe for concurrent use.
type Closer struct {
	mu    sync.Mutex
	conds []string
}

// CloseStream records condition; the text is for people and no test checks it.
func (c *Closer) CloseStream(condition, _ string) {
	c.mu.Lock()
	c.conds = append(c.conds, condition)
	c.mu.Unlock()
}

// Conditions returns the conditions recorded so far, in order.
func (c *Closer) Conditions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.conds)
}

// Discard is a router.Sink and router.Closer that drops everything: for benchmarks, where recording
// would be part of what is measured.
type Discard struct{}

// Write drops p.
func (Discard) Write([]byte) error { return nil }

// WriteElement drops the element without serialising it.
func (Discard) WriteElement(*sxml.Element, ...sxml.Attr) error { return nil }

// CloseStream does nothing.
func (Discard) CloseStream(string, string) {}

// Parse decodes s, one stanza as a client sends it inside a jabber:client stream, and returns a copy
// that outlives the decoder. It ends the test if s is not exactly that.
func Parse(t testing.TB, s string) *sxml.Element {
	t.Helper()
	d := sxml.NewDecoder(sxml.Limits{})
	d.Feed([]byte(StreamHeader))
	d.Feed([]byte(s))
	if tok, err := d.Next(); err != nil || tok.Kind != sxml.StreamStart {
		t.Fatalf("stream header: %v %v", tok.Kind, err)
	}
	tok, err := d.Next()
	if err != nil || tok.Kind != sxml.ElementKind {
		t.Fatalf("parse %q: %v %v", s, tok.Kind, err)
	}
	return tok.Elem.Clone()
}

// ParseOne decodes b as the only element of a jabber:client stream; ok is false if b is not exactly
// one well-formed element. It is the oracle of fuzz targets, which must not end the test on bad input.
func ParseOne(b []byte) (el *sxml.Element, ok bool) {
	d := sxml.NewDecoder(sxml.Limits{})
	d.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"))
	d.Feed(b)
	d.Feed([]byte("</stream:stream>"))
	if _, err := d.Next(); err != nil {
		return nil, false
	}
	tok, err := d.Next()
	if err != nil || tok.Kind != sxml.ElementKind {
		return nil, false
	}
	el = tok.Elem.Clone()
	if tok, err := d.Next(); err != nil || tok.Kind != sxml.StreamEnd {
		return nil, false
	}
	return el, true
}

// Reply is the part of a stanza the server sends (an iq answer, a message or presence, or their
// error) that most tests check. A test that needs the payload embeds Reply in a struct of its own or
// decodes Raw again.
type Reply struct {
	Type  string `xml:"type,attr"`
	ID    string `xml:"id,attr"`
	From  string `xml:"from,attr"`
	To    string `xml:"to,attr"`
	Inner []byte `xml:",innerxml"`
	Error *struct {
		Type string `xml:"type,attr"`
		// Cond holds every child of <error>; the defined condition comes first (RFC 6120 §8.3.2).
		Cond []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
	// Raw is the stanza as received, for error messages and further decoding.
	Raw []byte `xml:"-"`
}

// Condition is the local name of the error's condition element, "" if the stanza is no error.
func (r Reply) Condition() string {
	if r.Error == nil || len(r.Error.Cond) == 0 {
		return ""
	}
	return r.Error.Cond[0].XMLName.Local
}

// DecodeReply decodes one stanza the server sent; it ends the test if raw is not XML.
func DecodeReply(t testing.TB, raw []byte) Reply {
	t.Helper()
	r := Reply{Raw: raw}
	if err := xml.Unmarshal(raw, &r); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return r
}

// Client is a session bound on a router, driven by a test as its c2s session would drive it: what it
// sends goes through router.Route, what it is sent lands in Sink, and a stream error in Closer.
//
// Its methods take the test explicitly, so that one client serves the subtests of a test.
type Client struct {
	Router   *router.Router   // where Send routes
	Resource *router.Resource // the session, bound by Bind
	Sink     *Sink            // what the session was sent
	Closer   *Closer          // how the session was ended, if it was
}

// NewClient makes a client for the full JID full on r without binding it, for tests that check what
// binding does. It panics if full is not a JID, a mistake in the test itself.
func NewClient(r *router.Router, full string) *Client {
	s, c := &Sink{}, &Closer{}
	return &Client{Router: r, Resource: router.NewResource(jid.MustParse(full), s, c), Sink: s, Closer: c}
}

// Bind makes a client for full and binds it on r. A session it replaces is told so by the router, as
// in the server.
func Bind(t testing.TB, r *router.Router, full string) *Client {
	t.Helper()
	c := NewClient(r, full)
	r.Bind(t.Context(), c.Resource)
	return c
}

// Send routes stanza from the client; it ends the test if the router refuses it as no stanza.
func (c *Client) Send(t testing.TB, stanza string) {
	t.Helper()
	if err := c.Router.Route(t.Context(), c.Resource, Parse(t, stanza)); err != nil {
		t.Fatalf("route %s: %v", stanza, err)
	}
}

// Exchange sends stanza and returns the one stanza the client was sent since the last Take; it ends
// the test if there was not exactly one.
func (c *Client) Exchange(t testing.TB, stanza string) []byte {
	t.Helper()
	c.Send(t, stanza)
	got := c.Sink.Take()
	if len(got) != 1 {
		t.Fatalf("%s: got %d replies, want 1: %q", stanza, len(got), got)
	}
	return got[0]
}

// Do is Exchange with the answer decoded.
func (c *Client) Do(t testing.TB, stanza string) Reply {
	t.Helper()
	return DecodeReply(t, c.Exchange(t, stanza))
}

// BenchRoute measures routing stanza from a bound session of full on r whose output is discarded: the
// cost of the router and of the handler the stanza reaches. It reports allocations, and bytes per
// operation as the stanza's size.
func BenchRoute(b *testing.B, r *router.Router, full, stanza string) {
	b.Helper()
	res := router.NewResource(jid.MustParse(full), Discard{}, Discard{})
	r.Bind(b.Context(), res)
	e := Parse(b, stanza)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Raw())))
	for b.Loop() {
		r.Route(b.Context(), res, e)
	}
}
