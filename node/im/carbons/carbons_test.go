package carbons

import (
	stdxml "encoding/xml"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
)

// fixture is a router with carbons and one available session per full JID.
type fixture struct {
	r       *router.Router
	clients map[string]*routertest.Client
}

func newFixture(t *testing.T, fulls ...string) *fixture {
	f := &fixture{r: router.New(router.Options{Domains: []string{"example.org"}}), clients: map[string]*routertest.Client{}}
	Register(f.r)
	for _, full := range fulls {
		c := routertest.Bind(t, f.r, full)
		c.Resource.SetPresence(true, 0, nil)
		f.clients[full] = c
	}
	return f
}

func (f *fixture) send(t *testing.T, from, stanza string) {
	f.clients[from].Send(t, stanza)
}

// take returns what the session of full was sent since the last take.
func (f *fixture) take(full string) []string {
	var out []string
	for _, b := range f.clients[full].Sink.Take() {
		out = append(out, string(b))
	}
	return out
}

func TestEnableAndCopies(t *testing.T) {
	f := newFixture(t, "romeo@example.org/orchard", "romeo@example.org/garden", "juliet@example.org/balcony", "juliet@example.org/chamber")
	for _, full := range []string{"romeo@example.org/garden", "juliet@example.org/chamber"} {
		f.send(t, full, "<iq type='set' id='e'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
		if got := f.take(full); len(got) != 1 || !strings.Contains(got[0], "type='result'") {
			t.Fatalf("enable: %v", got)
		}
	}
	f.send(t, "romeo@example.org/orchard", "<message to='juliet@example.org/balcony' type='chat' id='m1'><body>Arise, fair sun</body></message>")
	if got := f.take("juliet@example.org/balcony"); len(got) != 1 || !strings.Contains(got[0], "Arise") {
		t.Fatalf("balcony got %v", got)
	}
	sent := f.take("romeo@example.org/garden")
	recv := f.take("juliet@example.org/chamber")
	if len(sent) != 1 || len(recv) != 1 || len(f.take("romeo@example.org/orchard")) != 0 {
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
		f.clients["romeo@example.org/garden"].Resource.SetCarbons(true)
		f.clients["juliet@example.org/chamber"].Resource.SetCarbons(true)
		f.send(t, "romeo@example.org/orchard", msg)
		if got := append(f.take("romeo@example.org/garden"), f.take("juliet@example.org/chamber")...); len(got) != 0 {
			t.Errorf("%s was copied: %v", msg, got)
		}
	}
}

func TestBareJIDDeliveryCopiesToOthers(t *testing.T) {
	f := newFixture(t, "romeo@example.org/orchard", "juliet@example.org/balcony", "juliet@example.org/chamber")
	f.clients["juliet@example.org/chamber"].Resource.SetPresence(true, -1, nil) // never gets bare-JID messages itself
	f.clients["juliet@example.org/chamber"].Resource.SetCarbons(true)
	f.send(t, "romeo@example.org/orchard", "<message to='juliet@example.org' type='chat'><body>x</body></message>")
	if len(f.take("juliet@example.org/balcony")) != 1 {
		t.Fatal("the highest-priority resource did not get the message")
	}
	if got := f.take("juliet@example.org/chamber"); len(got) != 1 || !strings.Contains(got[0], "<received") {
		t.Fatalf("the carbons resource got %v", got)
	}
}
