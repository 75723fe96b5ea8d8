package routertest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	sxml "github.com/starling-xmpp/starling/xmpp/xml"
)

// fatalTB stands in for a test so that a helper's failure can be checked: Fatalf records the
// message and ends the goroutine, as testing.T.FailNow does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs fn with a fatalTB and reports the message it failed with, "" if it did not fail.
func fails(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestSink(t *testing.T) {
	s := &Sink{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				s.Write(fmt.Appendf(nil, "<m n='%d-%d'/>", i, j))
			}
		})
	}
	wg.Wait()
	if n := s.Len(); n != 400 {
		t.Fatalf("Len %d after 400 concurrent writes", n)
	}
	if n := len(s.All()); n != 400 || s.Len() != 400 {
		t.Fatalf("All gave %d and left %d, want 400 and 400", n, s.Len())
	}
	if got := s.Take(); len(got) != 400 || s.Len() != 0 || s.Take() != nil {
		t.Fatalf("Take gave %d and left %d", len(got), s.Len())
	}

	// Write keeps a copy: the caller reuses its buffer.
	buf := []byte("<a/>")
	s.Write(buf)
	copy(buf, "<b/>")
	e := Parse(t, "<message to='b@example.com'><body>x</body></message>")
	s.WriteElement(e, sxml.Attr{Name: []byte("from"), Value: []byte("a@example.com/r")})
	want := "<a/><message to='b@example.com' from='a@example.com/r'><body>x</body></message>"
	if got := s.TakeString(); got != want {
		t.Errorf("TakeString %q, want %q", got, want)
	}
	if got := s.TakeString(); got != "" {
		t.Errorf("TakeString after Take %q", got)
	}
}

func TestCloser(t *testing.T) {
	c := &Closer{}
	if got := c.Conditions(); len(got) != 0 {
		t.Fatalf("new closer has %q", got)
	}
	c.CloseStream("conflict", "replaced")
	c.CloseStream("policy-violation", "")
	if got := c.Conditions(); !slices.Equal(got, []string{"conflict", "policy-violation"}) {
		t.Errorf("conditions %q", got)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		name, ns string // "" name: Parse must fail
	}{
		{"<message to='a@example.com'><body>hi</body></message>", "message", "jabber:client"},
		{"<presence/>", "presence", "jabber:client"},
		{"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "iq", "jabber:client"},
		{"<p:iq xmlns:p='jabber:server'/>", "iq", "jabber:server"},
		{"", "", ""},
		{"<message", "", ""},
		{"<message></presence>", "", ""},
		{"</message>", "", ""},
	}
	for _, tt := range tests {
		var el *sxml.Element
		msg := fails(t, func(tb testing.TB) { el = Parse(tb, tt.in) })
		if tt.name == "" {
			if msg == "" {
				t.Errorf("Parse(%q) succeeded", tt.in)
			}
			continue
		}
		if msg != "" {
			t.Errorf("Parse(%q): %s", tt.in, msg)
			continue
		}
		if string(el.Name()) != tt.name || string(el.Space()) != tt.ns || string(el.Raw()) != tt.in {
			t.Errorf("Parse(%q) = {%s}%s %q", tt.in, el.Space(), el.Name(), el.Raw())
		}
	}
}

func TestParseOne(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"<message/>", true},
		{"<message to='b@example.com'><body>1 &gt; 0</body></message>", true},
		{"  <presence/>\n", true},
		{"", false},
		{"text", false},
		{"<message>", false},
		{"<message/><message/>", false},
		{"<message/>junk", false},
		{"<a<b/>", false},
	}
	for _, tt := range tests {
		el, ok := ParseOne([]byte(tt.in))
		if ok != tt.ok || ok && el == nil {
			t.Errorf("ParseOne(%q) = %v, %v; want ok %v", tt.in, el, ok, tt.ok)
		}
	}
}

// FuzzParseOne checks that ParseOne never panics and that an element it accepts is accepted again,
// unchanged, from its own bytes.
func FuzzParseOne(f *testing.F) {
	for _, s := range []string{"<message/>", "<iq type='get'><q xmlns='urn:x'/></iq>", "<message", "<a/><b/>", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		el, ok := ParseOne(in)
		if !ok {
			return
		}
		again, ok := ParseOne(el.Raw())
		if !ok || string(again.Raw()) != string(el.Raw()) || again.NumAttrs() != el.NumAttrs() {
			t.Fatalf("ParseOne(%q) accepted %q, which does not parse back the same", in, el.Raw())
		}
	})
}

func TestReply(t *testing.T) {
	tests := []struct {
		raw                string
		typ, id, from, to  string
		cond, inner, fails string
	}{
		{raw: "<iq type='result' id='1' from='example.com' to='a@example.com/r'/>", typ: "result", id: "1", from: "example.com", to: "a@example.com/r"},
		{raw: "<iq type='result' id='2'><query xmlns='urn:x'/></iq>", typ: "result", id: "2", inner: "<query xmlns='urn:x'/>"},
		{raw: "<iq type='error' id='3'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></iq>",
			typ: "error", id: "3", cond: "service-unavailable",
			inner: "<ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error>"},
		{raw: "<message type='error'><error/></message>", typ: "error", inner: "<error/>"},
		{raw: "<iq", fails: "reply"},
	}
	for _, tt := range tests {
		var r Reply
		msg := fails(t, func(tb testing.TB) { r = DecodeReply(tb, []byte(tt.raw)) })
		if tt.fails != "" {
			if msg == "" {
				t.Errorf("DecodeReply(%q) succeeded", tt.raw)
			}
			continue
		}
		if msg != "" {
			t.Errorf("DecodeReply(%q): %s", tt.raw, msg)
			continue
		}
		if r.Type != tt.typ || r.ID != tt.id || r.From != tt.from || r.To != tt.to || r.Condition() != tt.cond || string(r.Inner) != tt.inner || string(r.Raw) != tt.raw {
			t.Errorf("DecodeReply(%q) = %+v, condition %q", tt.raw, r, r.Condition())
		}
	}
}

func TestClient(t *testing.T) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	r.HandleIQ("urn:x", router.IQHandlerFunc(func(_ context.Context, q *router.IQ) error {
		if q.Type == "set" {
			return stanza.New(stanza.NotAllowed, "")
		}
		return q.Result([]byte("<q xmlns='urn:x'/>"))
	}))
	c := Bind(t, r, "alice@example.com/phone")
	if r.Resource(jid.MustParse("alice@example.com/phone")) != c.Resource {
		t.Fatal("Bind did not bind")
	}
	got := c.Do(t, "<iq type='get' id='g' to='example.com'><q xmlns='urn:x'/></iq>")
	if got.Type != "result" || got.ID != "g" || got.From != "example.com" || got.To != "alice@example.com/phone" || string(got.Inner) != "<q xmlns='urn:x'/>" {
		t.Errorf("result %+v", got)
	}
	if got := c.Do(t, "<iq type='set' id='s'><q xmlns='urn:x'/></iq>"); got.Type != "error" || got.Condition() != "not-allowed" {
		t.Errorf("error %s", got.Raw)
	}

	// An iq result gets no answer, and a nonza is no stanza: both end the test.
	if msg := fails(t, func(tb testing.TB) { c.Exchange(tb, "<iq type='result' id='r' to='example.com'/>") }); msg == "" {
		t.Error("Exchange without an answer succeeded")
	}
	if msg := fails(t, func(tb testing.TB) { c.Send(tb, "<r xmlns='urn:xmpp:sm:3'/>") }); msg == "" {
		t.Error("Send of a nonza succeeded")
	}
	// Two stanzas where one is wanted end the test too.
	c.Sink.Write([]byte("<message/>"))
	if msg := fails(t, func(tb testing.TB) { c.Exchange(tb, "<iq type='get' id='g' to='example.com'><q xmlns='urn:x'/></iq>") }); msg == "" {
		t.Error("Exchange with two stanzas received succeeded")
	}

	// A second session for the same full JID replaces the first.
	again := Bind(t, r, "alice@example.com/phone")
	if r.Resource(jid.MustParse("alice@example.com/phone")) != again.Resource {
		t.Error("the second Bind did not replace the first")
	}
	if n := NewClient(r, "bob@example.com/x"); r.Resource(n.Resource.JID()) != nil || n.Sink == nil || n.Closer == nil {
		t.Error("NewClient bound its resource or lacks a sink or closer")
	}
}

func TestBenchRoute(t *testing.T) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	var calls atomic.Int64
	r.HandleIQ("urn:x", router.IQHandlerFunc(func(_ context.Context, q *router.IQ) error {
		calls.Add(1)
		return q.Result(nil)
	}))
	in := "<iq type='get' id='b' to='example.com'><q xmlns='urn:x'/></iq>"
	res := testing.Benchmark(func(b *testing.B) { BenchRoute(b, r, "alice@example.com/phone", in) })
	if res.N == 0 || calls.Load() < int64(res.N) {
		t.Fatalf("%d iterations, the handler ran %d times", res.N, calls.Load())
	}
	if res.Bytes != int64(len(in)) {
		t.Errorf("bytes per operation %d, want the stanza's %d", res.Bytes, len(in))
	}
}
