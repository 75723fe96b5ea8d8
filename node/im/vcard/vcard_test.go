package vcard

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
)

const domain = "example.com"

// newServer returns a router serving vCards on a fresh SQLite store with the accounts alice and bob
// of example.com.
func newServer(t testing.TB, opts Options) (*router.Router, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "starling.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice@" + domain, "bob@" + domain} {
		if err := st.CreateUser(t.Context(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := router.New(router.Options{Domains: []string{domain}, Accounts: st})
	opts.Store = st
	Register(r, opts)
	return r, st
}

func iq(typ, to, payload string) string {
	if to != "" {
		to = " to='" + to + "'"
	}
	return fmt.Sprintf("<iq type='%s' id='v1'%s>%s</iq>", typ, to, payload)
}

const get = "<vCard xmlns='vcard-temp'/>"

// TestVCard runs one conversation step by step: each step's state is what the steps before it left.
func TestVCard(t *testing.T) {
	r, _ := newServer(t, Options{})
	clients := map[string]*routertest.Client{
		"alice":  routertest.Bind(t, r, "alice@"+domain+"/phone"),
		"alice2": routertest.Bind(t, r, "alice@"+domain+"/laptop"),
		"bob":    routertest.Bind(t, r, "bob@"+domain+"/pc"),
	}
	card := "<vCard xmlns=\"vcard-temp\" version='3.0'>\n  <FN>Alice &amp; Co</FN><N><GIVEN>Alice</GIVEN><MIDDLE/></N>" +
		"<DESC><![CDATA[<b>bold</b>]]></DESC></vCard>"
	small := "<vCard xmlns='vcard-temp'><NICKNAME>al</NICKNAME></vCard>"
	steps := []struct {
		name, who, in string
		typ, cond     string
		from          string // the reply's 'from'
		inner         string // checked when the reply is a result
	}{
		{"own, none yet", "alice", iq("get", "", get), "result", "", "", get},
		{"someone else's, none yet", "bob", iq("get", "alice@example.com", get), "result", "", "alice@example.com", get},
		{"set", "alice", iq("set", "", card), "result", "", "", ""},
		{"own, from another resource, byte for byte", "alice2", iq("get", "", get), "result", "", "", card},
		{"own bare JID", "alice", iq("get", "alice@example.com", get), "result", "", "alice@example.com", card},
		{"someone else's", "bob", iq("get", "alice@example.com", get), "result", "", "alice@example.com", card},
		{"asking with content", "bob", iq("get", "alice@example.com", "<vCard xmlns='vcard-temp'><FN/></vCard>"), "result", "", "alice@example.com", card},
		{"replace, to own bare JID", "alice", iq("set", "alice@example.com", small), "result", "", "alice@example.com", ""},
		{"replaced", "bob", iq("get", "alice@example.com", get), "result", "", "alice@example.com", small},
		{"bob's is his own", "bob", iq("get", "", get), "result", "", "", get},

		{"set someone else's", "bob", iq("set", "alice@example.com", "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>"), "error", "forbidden", "alice@example.com", ""},
		{"set an unknown account's", "bob", iq("set", "nobody@example.com", small), "error", "forbidden", "nobody@example.com", ""},
		{"set the server's", "alice", iq("set", "example.com", small), "error", "forbidden", "example.com", ""},
		{"alice's untouched", "alice", iq("get", "", get), "result", "", "", small},
		{"unknown account", "alice", iq("get", "nobody@example.com", get), "error", "service-unavailable", "nobody@example.com", ""},
		{"the server's", "alice", iq("get", "example.com", get), "error", "item-not-found", "example.com", ""},
		{"not a vCard", "alice", iq("get", "", "<vcard xmlns='vcard-temp'/>"), "error", "feature-not-implemented", "", ""},

		{"empty set deletes", "alice", iq("set", "", "<vCard xmlns='vcard-temp'>\n</vCard>"), "result", "", "", ""},
		{"deleted", "bob", iq("get", "alice@example.com", get), "result", "", "alice@example.com", get},
		{"an attribute alone is kept", "alice", iq("set", "", "<vCard xmlns='vcard-temp' version='3.0'/>"), "result", "", "", ""},
		{"kept", "alice", iq("get", "", get), "result", "", "", "<vCard xmlns='vcard-temp' version='3.0'/>"},
	}
	for _, st := range steps {
		got := clients[st.who].Do(t, st.in)
		if got.Type != st.typ || got.Condition() != st.cond || got.ID != "v1" || got.From != st.from {
			t.Fatalf("%s: reply %s; want type %q condition %q from %q", st.name, got.Raw, st.typ, st.cond, st.from)
		}
		if st.typ == "result" && string(got.Inner) != st.inner {
			t.Fatalf("%s: result payload\n%s\nwant\n%s", st.name, got.Inner, st.inner)
		}
	}
}

// TestAvatarHash stores a vCard with a photo, as a XEP-0153 client does, and checks that the photo
// another user reads back hashes to what the publisher announced.
func TestAvatarHash(t *testing.T) {
	r, _ := newServer(t, Options{})
	alice := routertest.Bind(t, r, "alice@"+domain+"/phone")
	bob := routertest.Bind(t, r, "bob@"+domain+"/pc")
	photo := make([]byte, 20000)
	for i := range photo {
		photo[i] = byte(i * 7)
	}
	sum := sha1.Sum(photo)
	announced := hex.EncodeToString(sum[:])
	b64 := base64.StdEncoding.EncodeToString(photo)
	// Clients wrap base64 at 76 columns; the decoder must see exactly these line breaks again.
	var wrapped strings.Builder
	for i := 0; i < len(b64); i += 76 {
		wrapped.WriteString(b64[i:min(i+76, len(b64))])
		wrapped.WriteString("\r\n")
	}
	card := "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>" + wrapped.String() + "</BINVAL></PHOTO></vCard>"
	if got := alice.Do(t, iq("set", "", card)); got.Type != "result" {
		t.Fatalf("set: %s", got.Raw)
	}
	raw := bob.Exchange(t, iq("get", "alice@example.com", get))
	var v struct {
		Photo struct {
			BinVal string `xml:"BINVAL"`
		} `xml:"vCard>PHOTO"`
	}
	if err := xml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(v.Photo.BinVal))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha1.Sum(data); hex.EncodeToString(sum[:]) != announced {
		t.Fatalf("the photo read back hashes to %x, announced %s", sum, announced)
	}
}

func TestSizeLimit(t *testing.T) {
	tests := []struct {
		name  string
		opt   int // Options.MaxBytes
		bytes int // size of the vCard sent
		cond  string
	}{
		{"storage bound, at it", 0, storage.MaxDocumentBytes, ""},
		{"storage bound, over", 0, storage.MaxDocumentBytes + 1, "not-acceptable"},
		{"option, at it", 1000, 1000, ""},
		{"option, over", 1000, 1001, "not-acceptable"},
		{"option above the storage bound", 10 * storage.MaxDocumentBytes, storage.MaxDocumentBytes + 1, "not-acceptable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newServer(t, Options{MaxBytes: tt.opt})
			c := routertest.Bind(t, r, "alice@"+domain+"/phone")
			const open, end = "<vCard xmlns='vcard-temp'><DESC>", "</DESC></vCard>"
			card := open + strings.Repeat("x", tt.bytes-len(open)-len(end)) + end
			got := c.Do(t, iq("set", "", card))
			if got.Condition() != tt.cond {
				t.Fatalf("set of %d bytes: %s…, want condition %q", tt.bytes, got.Raw[:min(len(got.Raw), 300)], tt.cond)
			}
			want := get
			if tt.cond == "" {
				want = card
			}
			if got := c.Do(t, iq("get", "", get)); string(got.Inner) != want {
				t.Fatalf("get after set: %d bytes, want %d", len(got.Inner), len(want))
			}
		})
	}
}

// TestPrefixedChild: a vCard child whose prefix is declared on the stanza is stored with that
// declaration, so that it still parses when sent in another stanza.
func TestPrefixedChild(t *testing.T) {
	r, _ := newServer(t, Options{})
	c := routertest.Bind(t, r, "alice@"+domain+"/phone")
	if got := c.Do(t, "<iq type='set' id='v1' xmlns:x='urn:ext'><vCard xmlns='vcard-temp'><x:EXT>1</x:EXT></vCard></iq>"); got.Type != "result" {
		t.Fatalf("set: %s", got.Raw)
	}
	want := "<vCard xmlns='vcard-temp' xmlns:x='urn:ext'><x:EXT>1</x:EXT></vCard>"
	if got := c.Do(t, iq("get", "", get)); string(got.Inner) != want {
		t.Fatalf("get: %s, want %s", got.Inner, want)
	}
}

// TestStoreErrors: a database failure is internal-server-error, and an account deleted under an
// open session cannot store.
func TestStoreErrors(t *testing.T) {
	r, st := newServer(t, Options{})
	c := routertest.Bind(t, r, "alice@"+domain+"/phone")
	if err := st.DeleteUser(t.Context(), "alice@"+domain); err != nil {
		t.Fatal(err)
	}
	if got := c.Do(t, iq("set", "", "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>")); got.Condition() != "item-not-found" {
		t.Errorf("set for a deleted account: %s, want item-not-found", got.Raw)
	}
	st.Close()
	for _, in := range []string{iq("get", "", get), iq("get", "bob@example.com", get), iq("set", "", "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"), iq("set", "", get)} {
		if got := c.Do(t, in); got.Condition() != "internal-server-error" {
			t.Errorf("%s on a closed store: %s, want internal-server-error", in, got.Raw)
		}
	}
}
