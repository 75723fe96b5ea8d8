package ping

import (
	"encoding/xml"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	sxml "github.com/starling-xmpp/starling/xmpp/xml"
)

// sink captures what the server queues for the client.
type sink struct {
	mu  sync.Mutex
	got [][]byte
}

func (s *sink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, append([]byte(nil), p...))
	return nil
}

func (s *sink) WriteElement(e *sxml.Element, set ...sxml.Attr) error {
	return s.Write(e.AppendTo(nil, set...))
}

type nopCloser struct{}

func (nopCloser) CloseStream(string, string) {}

// parse decodes one stanza as a client sends it in a jabber:client stream.
func parse(t testing.TB, s string) *sxml.Element {
	t.Helper()
	d := sxml.NewDecoder(sxml.Limits{})
	d.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"))
	d.Feed([]byte(s))
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	tok, err := d.Next()
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return tok.Elem.Clone()
}

// reply is the part of an iq reply the tests check.
type reply struct {
	Type  string `xml:"type,attr"`
	ID    string `xml:"id,attr"`
	From  string `xml:"from,attr"`
	To    string `xml:"to,attr"`
	Inner []byte `xml:",innerxml"`
	Error *struct {
		Type string `xml:"type,attr"`
		Cond []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
}

func (r reply) condition() string {
	if r.Error == nil || len(r.Error.Cond) == 0 {
		return ""
	}
	return r.Error.Cond[0].XMLName.Local
}

func TestPing(t *testing.T) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	Register(r)
	tests := []struct {
		name, in         string
		typ, cond, from  string
		emptyResultInner bool
	}{
		{"server", "<iq type='get' id='1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "result", "", "example.com", true},
		{"no to", "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "result", "", "", true},
		{"own bare", "<iq type='get' id='1' to='alice@example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "result", "", "alice@example.com", true},
		{"other bare", "<iq type='get' id='1' to='bob@example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "error", "service-unavailable", "bob@example.com", false},
		{"set", "<iq type='set' id='1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "error", "feature-not-implemented", "example.com", false},
		{"wrong element", "<iq type='get' id='1' to='example.com'><pong xmlns='urn:xmpp:ping'/></iq>", "error", "service-unavailable", "example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			res := router.NewResource(jid.MustParse("alice@example.com/phone"), s, nopCloser{})
			r.Bind(t.Context(), res)
			defer r.Unbind(t.Context(), res)
			if err := r.Route(t.Context(), res, parse(t, tt.in)); err != nil {
				t.Fatal(err)
			}
			if len(s.got) != 1 {
				t.Fatalf("got %d replies, want 1: %q", len(s.got), s.got)
			}
			var got reply
			if err := xml.Unmarshal(s.got[0], &got); err != nil {
				t.Fatalf("reply %q: %v", s.got[0], err)
			}
			if got.Type != tt.typ || got.condition() != tt.cond || got.ID != "1" || got.From != tt.from || got.To != "alice@example.com/phone" {
				t.Errorf("reply %s: want type %q condition %q from %q", s.got[0], tt.typ, tt.cond, tt.from)
			}
			if tt.emptyResultInner && len(got.Inner) != 0 {
				t.Errorf("result has content: %s", s.got[0])
			}
		})
	}
}
