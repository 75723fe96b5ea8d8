package carbons

import (
	"context"
	stdxml "encoding/xml"
	"strings"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

type sink struct {
	mu  sync.Mutex
	got []string
}

func (s *sink) Write(p []byte) error {
	s.mu.Lock()
	s.got = append(s.got, string(p))
	s.mu.Unlock()
	return nil
}

func (s *sink) WriteElement(e *xml.Element, set ...xml.Attr) error {
	return s.Write(e.AppendTo(nil, set...))
}

func (s *sink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

type closer struct{}

func (closer) CloseStream(string, string) {}

func parse(t *testing.T, s string) *xml.Element {
	d := xml.NewDecoder(xml.DefaultLimits())
	d.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" + s))
	d.Next()
	tok, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	return tok.Elem.Clone()
}

type fixture struct {
	r     *router.Router
	res   map[string]*router.Resource
	sinks map[string]*sink
}

func newFixture(t *testing.T, fulls ...string) *fixture {
	f := &fixture{r: router.New(router.Options{Domains: []string{"example.org"}}), res: map[string]*router.Resource{}, sinks: map[string]*sink{}}
	Register(f.r)
	for _, full := range fulls {
		s := &sink{}
		res := router.NewResource(jid.MustParse(full), s, closer{})
		f.r.Bind(context.Background(), res)
		res.SetPresence(true, 0, nil)
		f.res[full], f.sinks[full] = res, s
	}
	return f
}

func (f *fixture) send(t *testing.T, from, stanza string) {
	if err := f.r.Route(context.Background(), f.res[from], parse(t, stanza)); err != nil {
		t.Fatal(err)
	}
}

func TestEnableAndCopies(t *testing.T) {
	f := newFixture(t, "romeo@example.org/orchard", "romeo@example.org/garden", "juliet@example.org/balcony", "juliet@example.org/chamber")
	for _, full := range []string{"romeo@example.org/garden", "juliet@example.org/chamber"} {
		f.send(t, full, "<iq type='set' id='e'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
		if got := f.sinks[full].take(); len(got) != 1 || !strings.Contains(got[0], "type='result'") {
			t.Fatalf("enable: %v", got)
		}
	}
	f.send(t, "romeo@example.org/orchard", "<message to='juliet@example.org/balcony' type='chat' id='m1'><body>Arise, fair sun</body></message>")
	if got := f.sinks["juliet@example.org/balcony"].take(); len(got) != 1 || !strings.Contains(got[0], "Arise") {
		t.Fatalf("balcony got %v", got)
	}
	sent := f.sinks["romeo@example.org/garden"].take()
	recv := f.sinks["juliet@example.org/chamber"].take()
	if len(sent) != 1 || len(recv) != 1 || len(f.sinks["romeo@example.org/orchard"].take()) != 0 {
		t.Fatalf("copies: sent %v received %v", sent, recv)
	}
	for _, c := range []struct{ raw, kind, owner string }{{sent[0], "sent", "romeo@example.org"}, {recv[0], "received", "juliet@example.org"}} {
		var m struct {
			From string `xml:"from,attr"`
			Wrap []struct {
				XMLName   stdxml.Name
				Forwarded struct {
					Message struct {
						XMLName stdxml.Name
						From    string `xml:"from,attr"`
						Body    string `xml:"body"`
					} `xml:"jabber:client message"`
				} `xml:"urn:xmpp:forward:0 forwarded"`
			} `xml:",any"`
		}
		if err := stdxml.Unmarshal([]byte(c.raw), &m); err != nil {
			t.Fatalf("%s: %v", c.raw, err)
		}
		if m.From != c.owner || len(m.Wrap) != 1 || m.Wrap[0].XMLName.Local != c.kind || m.Wrap[0].XMLName.Space != NS ||
			m.Wrap[0].Forwarded.Message.From != "romeo@example.org/orchard" || m.Wrap[0].Forwarded.Message.Body != "Arise, fair sun" {
			t.Fatalf("%s copy: %s", c.kind, c.raw)
		}
	}
}

func TestNotCopied(t *testing.T) {
	for _, msg := range []string{
		"<message to='juliet@example.org/balcony' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>",
		"<message to='juliet@example.org/balcony' type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>",
		"<message to='juliet@example.org/balcony' type='headline'><body>x</body></message>",
		"<message to='juliet@example.org/balcony'><subject>no body</subject></message>",
		"<message to='juliet@example.org/balcony' type='groupchat'><body>x</body></message>",
	} {
		f := newFixture(t, "romeo@example.org/orchard", "romeo@example.org/garden", "juliet@example.org/balcony", "juliet@example.org/chamber")
		f.res["romeo@example.org/garden"].SetCarbons(true)
		f.res["juliet@example.org/chamber"].SetCarbons(true)
		f.send(t, "romeo@example.org/orchard", msg)
		if got := append(f.sinks["romeo@example.org/garden"].take(), f.sinks["juliet@example.org/chamber"].take()...); len(got) != 0 {
			t.Errorf("%s was copied: %v", msg, got)
		}
	}
}

func TestBareJIDDeliveryCopiesToOthers(t *testing.T) {
	f := newFixture(t, "romeo@example.org/orchard", "juliet@example.org/balcony", "juliet@example.org/chamber")
	f.res["juliet@example.org/chamber"].SetPresence(true, -1, nil) // never gets bare-JID messages itself
	f.res["juliet@example.org/chamber"].SetCarbons(true)
	f.send(t, "romeo@example.org/orchard", "<message to='juliet@example.org' type='chat'><body>x</body></message>")
	if len(f.sinks["juliet@example.org/balcony"].take()) != 1 {
		t.Fatal("the highest-priority resource did not get the message")
	}
	if got := f.sinks["juliet@example.org/chamber"].take(); len(got) != 1 || !strings.Contains(got[0], "<received") {
		t.Fatalf("the carbons resource got %v", got)
	}
}
