package stream

import (
	"encoding/xml"
	"strings"
	"testing"

	sx "github.com/starling-xmpp/starling/xmpp/xml"
)

func header(t *testing.T, s string) *sx.Element {
	d := sx.NewDecoder(sx.DefaultLimits())
	d.Feed([]byte(s))
	tok, err := d.Next()
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return tok.Elem
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in   string
		cond string
		to   string
	}{
		{"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>", "", "example.org"},
		{"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.1'>", "", ""},
		{"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", "invalid-namespace", ""},
		{"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", "invalid-namespace", ""},
		{"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", "unsupported-version", ""},
		{"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>", "unsupported-version", ""},
		{"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.x'>", "unsupported-version", ""},
	}
	for _, tt := range tests {
		h, err := ParseHeader(header(t, tt.in), NSClient)
		switch {
		case tt.cond == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.cond != "" && (err == nil || err.Condition != tt.cond):
			t.Errorf("%s: error %v, want %s", tt.in, err, tt.cond)
		case tt.cond == "" && h.To != tt.to:
			t.Errorf("%s: to %q", tt.in, h.To)
		}
	}
}

func TestOpenAndErrorsAreWellFormed(t *testing.T) {
	open := Header{NS: NSClient, From: "example.org", ID: "a'b", Version: "1.0", Lang: "en"}.AppendOpen(nil)
	f := (&Features{StartTLS: true, TLSRequired: true, Mechanisms: []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"},
		CBTypes: []string{"tls-exporter"}, Bind: true, Session: true, RosterVer: true, PreApproval: true, Register: true}).Append(nil)
	e := (&Error{Condition: "see-other-host", Body: "node2.example.org:5222", Text: "go <there>"}).Append(nil)
	doc := string(open) + string(f) + string(e) + Close
	d := xml.NewDecoder(strings.NewReader(doc))
	var names []string
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			names = append(names, se.Name.Local)
		}
	}
	want := "stream features starttls required mechanisms mechanism mechanism sasl-channel-binding channel-binding register bind session optional ver sub error see-other-host text"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("elements\n got %s\nwant %s\nin %s", got, want, doc)
	}
	if !strings.Contains(doc, "node2.example.org:5222</see-other-host>") || !strings.Contains(doc, "id='a&apos;b'") && !strings.Contains(doc, "id='a&#39;b'") {
		t.Fatalf("doc %s", doc)
	}
}
