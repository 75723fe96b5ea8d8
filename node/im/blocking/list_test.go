package blocking

import (
	"slices"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/router/routertest"
)

func TestListBlocks(t *testing.T) {
	l := newList([]string{"romeo@example.com", "nurse@example.com/home", "evil.example", "example.net/bot"})
	tests := []struct {
		contact string
		want    bool
	}{
		{"romeo@example.com", true},
		{"romeo@example.com/phone", true}, // a bare JID blocks all its resources
		{"nurse@example.com/home", true},
		{"nurse@example.com/work", false}, // a full JID blocks that resource only
		{"nurse@example.com", false},
		{"anyone@evil.example", true}, // a domain blocks everyone there
		{"anyone@evil.example/x", true},
		{"evil.example", true},
		{"sub.evil.example", false},
		{"example.net/bot", true},
		{"someone@example.net/bot", true}, // domain/resource, XEP-0016 §2.1
		{"someone@example.net/other", false},
		{"juliet@example.com", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := l.Blocks([]byte(tt.contact)); got != tt.want {
			t.Errorf("Blocks(%q) = %v, want %v", tt.contact, got, tt.want)
		}
	}
	if empty.Blocks([]byte("romeo@example.com")) {
		t.Error("the empty list blocks")
	}
}

func TestListBlocksAllocatesNothing(t *testing.T) {
	l := newList([]string{"romeo@example.com", "evil.example"})
	c := []byte("someone@example.org/res")
	if n := testing.AllocsPerRun(1000, func() { l.Blocks(c) }); n != 0 {
		t.Errorf("%v allocations per lookup, want 0", n)
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
		wantErr   string
	}{
		{"empty", "<blocklist xmlns='urn:xmpp:blocking'/>", nil, ""},
		{"items in order", "<blocklist xmlns='urn:xmpp:blocking'><item jid='b@example.com'/><item jid='a@example.com/r'/><item jid='example.org'/></blocklist>",
			[]string{"b@example.com", "a@example.com/r", "example.org"}, ""},
		{"prepared on reading", "<blocklist xmlns='urn:xmpp:blocking'><item jid='Romeo@Example.COM'/></blocklist>", []string{"romeo@example.com"}, ""},
		{"unknown children ignored", "<blocklist xmlns='urn:xmpp:blocking'><x xmlns='urn:x'/><item jid='a@example.com'/></blocklist>", []string{"a@example.com"}, ""},
		{"wrong element", "<block xmlns='urn:xmpp:blocking'/>", nil, "not a <blocklist/>"},
		{"wrong namespace", "<blocklist xmlns='urn:other'/>", nil, "not a <blocklist/>"},
		{"bad JID", "<blocklist xmlns='urn:xmpp:blocking'><item jid='a@b@c'/></blocklist>", nil, "a@b@c"},
		{"item without JID", "<blocklist xmlns='urn:xmpp:blocking'><item/></blocklist>", nil, "needs a 'jid'"},
		{"duplicate", "<blocklist xmlns='urn:xmpp:blocking'><item jid='a@example.com'/><item jid='A@example.com'/></blocklist>", nil, "twice"},
		{"trailing element", "<blocklist xmlns='urn:xmpp:blocking'/><blocklist xmlns='urn:xmpp:blocking'/>", nil, "trailing"},
		{"not XML", "<blocklist", nil, "blocklist document"},
		{"nothing", "", nil, "blocklist document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseList([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.JIDs(); !slices.Equal(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzParseList checks that ParseList never panics, accepts only well-formed XML (encoding/xml's
// judgement, through routertest.ParseOne), and that what it accepts survives Encode and ParseList
// unchanged.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"<blocklist xmlns='urn:xmpp:blocking'/>",
		"<blocklist xmlns='urn:xmpp:blocking'><item jid='a@example.com'/><item jid='example.org/r'/></blocklist>",
		"<blocklist xmlns='urn:xmpp:blocking'><item jid='&#x52;omeo@example.com'/></blocklist>",
		"<blocklist xmlns='urn:xmpp:blocking'><item/></blocklist>",
		"<b:blocklist xmlns:b='urn:xmpp:blocking'><b:item jid='x@y'/></b:blocklist>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		l, err := ParseList(doc)
		if err != nil {
			return
		}
		if _, ok := routertest.ParseOne(doc); !ok {
			t.Fatalf("accepted %q, which is not one well-formed element", doc)
		}
		again, err := ParseList(l.Encode())
		if err != nil {
			t.Fatalf("own encoding %q of %q rejected: %v", l.Encode(), doc, err)
		}
		if !slices.Equal(again.JIDs(), l.JIDs()) {
			t.Fatalf("round trip changed %q into %q", l.JIDs(), again.JIDs())
		}
	})
}
