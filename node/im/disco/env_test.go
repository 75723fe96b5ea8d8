package disco

import (
	"encoding/xml"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
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

// result is a disco reply as a client reads it.
type result struct {
	reply
	Query struct {
		XMLName    xml.Name
		Node       string `xml:"node,attr"`
		Identities []struct {
			Category string `xml:"category,attr"`
			Type     string `xml:"type,attr"`
			Name     string `xml:"name,attr"`
		} `xml:"identity"`
		Features []struct {
			Var string `xml:"var,attr"`
		} `xml:"feature"`
		Items []struct {
			JID  string `xml:"jid,attr"`
			Node string `xml:"node,attr"`
			Name string `xml:"name,attr"`
		} `xml:"item"`
	} `xml:"query"`
}

// identities summarises the identities as "category/type/name".
func (r *result) identities() []string {
	var out []string
	for _, id := range r.Query.Identities {
		out = append(out, id.Category+"/"+id.Type+"/"+id.Name)
	}
	return out
}

func (r *result) features() []string {
	var out []string
	for _, f := range r.Query.Features {
		out = append(out, f.Var)
	}
	return out
}

// items summarises the items as "jid node name".
func (r *result) items() []string {
	var out []string
	for _, it := range r.Query.Items {
		out = append(out, it.JID+" "+it.Node+" "+it.Name)
	}
	return out
}

// do routes one stanza from res and decodes the single reply.
func do(t *testing.T, r *router.Router, res *router.Resource, s *sink, in string) *result {
	t.Helper()
	s.mu.Lock()
	s.got = nil
	s.mu.Unlock()
	if err := r.Route(t.Context(), res, parse(t, in)); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 {
		t.Fatalf("%s: got %d replies, want 1: %q", in, len(s.got), s.got)
	}
	var got result
	if err := xml.Unmarshal(s.got[0], &got); err != nil {
		t.Fatalf("reply %q: %v", s.got[0], err)
	}
	if got.Type == "result" && got.Query.XMLName.Local != "query" {
		t.Fatalf("result without query: %s", s.got[0])
	}
	return &got
}
