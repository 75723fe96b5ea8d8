package private

import (
	"context"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
)

const domain = "example.com"

// newServer returns a router serving private XML on a fresh SQLite store with the accounts alice and
// bob of example.com.
func newServer(t testing.TB) (*router.Router, *sqlite.Store) {
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
	Register(r, Options{Store: st})
	return r, st
}

func q(typ, attrs, inner string) string {
	return fmt.Sprintf("<iq type='%s' id='p1'%s><query xmlns='jabber:iq:private'>%s</query></iq>", typ, attrs, inner)
}

// TestPrivate runs one conversation step by step: each step's state is what the steps before it left.
func TestPrivate(t *testing.T) {
	r, _ := newServer(t)
	clients := map[string]*routertest.Client{
		"alice":  routertest.Bind(t, r, "alice@"+domain+"/phone"),
		"alice2": routertest.Bind(t, r, "alice@"+domain+"/laptop"),
		"bob":    routertest.Bind(t, r, "bob@"+domain+"/pc"),
	}
	prefs := "<prefs xmlns='urn:example:prefs' theme='dark'>\n  <font size=\"12\">Fira &amp; Co</font><![CDATA[<raw>]]></prefs>"
	emptyPrefs := "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>"
	big := "<big xmlns='urn:big'>" + strings.Repeat("x", storage.MaxDocumentBytes) + "</big>"
	var many strings.Builder
	for i := range MaxGetChildren + 1 {
		fmt.Fprintf(&many, "<e xmlns='urn:n:%d'/>", i)
	}
	steps := []struct {
		name, who, in string
		typ, cond     string
		inner         string // checked when the reply is a result
	}{
		{"nothing stored", "alice", q("get", "", "<prefs xmlns='urn:example:prefs'/>"), "result", "", emptyPrefs},
		{"store", "alice", q("set", "", prefs), "result", "", ""},
		{"read back from another resource, byte for byte", "alice2", q("get", "", "<prefs xmlns='urn:example:prefs'/>"), "result", "", "<query xmlns='jabber:iq:private'>" + prefs + "</query>"},
		{"the asking element's content does not matter", "alice", q("get", " to='alice@example.com'", "<prefs xmlns='urn:example:prefs'><x/></prefs>"), "result", "", "<query xmlns='jabber:iq:private'>" + prefs + "</query>"},
		{"other name, same namespace", "alice", q("get", "", "<other xmlns='urn:example:prefs'/>"), "result", "", "<query xmlns='jabber:iq:private'><other xmlns='urn:example:prefs'/></query>"},
		{"replace", "alice", q("set", "", "<prefs xmlns='urn:example:prefs'/>"), "result", "", ""},
		{"replaced", "alice", q("get", "", "<prefs xmlns='urn:example:prefs'/>"), "result", "", "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>"},
		{"prefix declared outside the element", "alice", "<iq type='set' id='p1' xmlns:p='urn:p'><query xmlns='jabber:iq:private'><p:data a='1'><p:x/></p:data></query></iq>", "result", "", ""},
		{"stored with its declaration", "alice", q("get", "", "<data xmlns='urn:p'/>"), "result", "", "<query xmlns='jabber:iq:private'><p:data a='1' xmlns:p='urn:p'><p:x/></p:data></query>"},
		{"two elements of one name, one of another", "alice", q("set", "", "<b xmlns='storage:x'>1</b><c xmlns='storage:x'/><b xmlns='storage:x'>2</b>"), "result", "", ""},
		{"several asked, one twice", "alice", q("get", "", "<b xmlns='storage:x'/><c xmlns='storage:x'/><b xmlns='storage:x'/><d xmlns='storage:x'/>"), "result", "",
			"<query xmlns='jabber:iq:private'><b xmlns='storage:x'>1</b><b xmlns='storage:x'>2</b><c xmlns='storage:x'/><d xmlns='storage:x'/></query>"},
		{"another user's storage is their own", "bob", q("get", "", "<prefs xmlns='urn:example:prefs'/>"), "result", "", emptyPrefs},

		{"get another user's", "bob", q("get", " to='alice@example.com'", "<prefs xmlns='urn:example:prefs'/>"), "error", "forbidden", ""},
		{"set another user's", "bob", q("set", " to='alice@example.com'", "<prefs xmlns='urn:example:prefs'>bob was here</prefs>"), "error", "forbidden", ""},
		{"set an unknown user's", "bob", q("set", " to='nobody@example.com'", "<prefs xmlns='urn:example:prefs'/>"), "error", "forbidden", ""},
		{"to the server", "alice", q("get", " to='example.com'", "<prefs xmlns='urn:example:prefs'/>"), "error", "forbidden", ""},
		{"alice's kept", "alice", q("get", "", "<prefs xmlns='urn:example:prefs'/>"), "result", "", "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>"},

		{"get without child", "alice", q("get", "", ""), "error", "not-acceptable", ""},
		{"set without child", "alice", q("set", "", "  "), "error", "not-acceptable", ""},
		{"child inherits jabber:iq:private", "alice", q("set", "", "<prefs/>"), "error", "not-acceptable", ""},
		{"child in jabber:client", "alice", q("get", "", "<message xmlns='jabber:client'/>"), "error", "not-acceptable", ""},
		{"child in jabber:server", "alice", q("set", "", "<message xmlns='jabber:server'/>"), "error", "not-acceptable", ""},
		{"child in no namespace", "alice", q("set", "", "<x xmlns=''/>"), "error", "not-acceptable", ""},
		{"one bad child spoils the set", "alice", q("set", "", "<ok xmlns='urn:ok'/><bad/>"), "error", "not-acceptable", ""},
		{"nothing of the spoilt set stored", "alice", q("get", "", "<ok xmlns='urn:ok'/>"), "result", "", "<query xmlns='jabber:iq:private'><ok xmlns='urn:ok'/></query>"},
		{"too large", "alice", q("set", "", big), "error", "not-acceptable", ""},
		{"too many asked", "alice", q("get", "", many.String()), "error", "not-acceptable", ""},
		{"not a query", "alice", "<iq type='get' id='p1'><storage xmlns='jabber:iq:private'/></iq>", "error", "bad-request", ""},
	}
	for _, st := range steps {
		got := clients[st.who].Do(t, st.in)
		if got.Type != st.typ || got.Condition() != st.cond || got.ID != "p1" {
			t.Fatalf("%s: reply %s; want type %q condition %q", st.name, got.Raw, st.typ, st.cond)
		}
		if st.typ == "result" && string(got.Inner) != st.inner {
			t.Fatalf("%s: result payload\n%s\nwant\n%s", st.name, got.Inner, st.inner)
		}
	}
}

// TestQuota fills an account's private storage and checks that a new element is then refused while a
// stored one can still be replaced.
func TestQuota(t *testing.T) {
	r, _ := newServer(t)
	c := routertest.Bind(t, r, "alice@"+domain+"/phone")
	var b strings.Builder
	for i := range storage.MaxDocumentsPerKind {
		fmt.Fprintf(&b, "<e xmlns='urn:n:%d'/>", i)
	}
	if got := c.Do(t, q("set", "", b.String())); got.Type != "result" {
		t.Fatalf("filling the store: %s", got.Raw)
	}
	if got := c.Do(t, q("set", "", "<e xmlns='urn:n:new'/>")); got.Condition() != "not-acceptable" {
		t.Fatalf("one more: %s, want not-acceptable", got.Raw)
	}
	if got := c.Do(t, q("set", "", "<e xmlns='urn:n:0'>again</e>")); got.Type != "result" {
		t.Fatalf("replace in a full store: %s", got.Raw)
	}
}

// TestStoreFailure checks that a database error is an internal-server-error, not a silent empty answer.
func TestStoreFailure(t *testing.T) {
	r, st := newServer(t)
	c := routertest.Bind(t, r, "alice@"+domain+"/phone")
	st.Close()
	for _, typ := range []string{"get", "set"} {
		if got := c.Do(t, q(typ, "", "<prefs xmlns='urn:example:prefs'/>")); got.Condition() != "internal-server-error" {
			t.Errorf("%s on a closed store: %s, want internal-server-error", typ, got.Raw)
		}
	}
}

// TestDeletedAccount: a session whose account was deleted cannot store for it.
func TestDeletedAccount(t *testing.T) {
	r, st := newServer(t)
	c := routertest.Bind(t, r, "alice@"+domain+"/phone")
	if err := st.DeleteUser(t.Context(), "alice@"+domain); err != nil {
		t.Fatal(err)
	}
	if got := c.Do(t, q("set", "", "<prefs xmlns='urn:example:prefs'/>")); got.Condition() != "item-not-found" {
		t.Errorf("set for a deleted account: %s, want item-not-found", got.Raw)
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ ns, local, want string }{
		{"storage:bookmarks", "storage", "{storage:bookmarks}storage"},
		{"urn:a}b", "c", "{urn:a}b}c"},
		{"urn:a", "b}c", "{urn:a}b}c"}, // not an NCName: never reaches Key from XML
	}
	for _, tt := range tests {
		if got := Key(tt.ns, tt.local); got != tt.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tt.ns, tt.local, got, tt.want)
		}
	}
}

// memStore is a Store in a map, for the fuzz target, which runs too many requests for a database.
type memStore struct {
	mu   sync.Mutex
	docs map[string][]byte
}

func (m *memStore) Document(_ context.Context, owner, kind, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[owner+"\x00"+kind+"\x00"+key]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return d, nil
}

func (m *memStore) PutDocument(_ context.Context, owner, kind, key string, xml []byte) error {
	if err := storage.CheckDocument(kind, key, xml); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.docs[owner+"\x00"+kind+"\x00"+key] = xml
	return nil
}

// FuzzPrivate sends arbitrary query content as a set and then as a get. Whatever the content, each
// request gets exactly one well-formed reply, and what a successful set stored comes back in the get
// as well-formed XML carrying the elements' names and namespaces.
func FuzzPrivate(f *testing.F) {
	for _, s := range []string{
		"<prefs xmlns='urn:example:prefs' theme='dark'><font>x</font></prefs>",
		"<p:d xmlns:p='urn:p'><q/></p:d>",
		"<b xmlns='storage:x'>1</b><b xmlns='storage:x'>2</b><c xmlns='storage:x'/>",
		"<prefs/>",
		"<x xmlns=''/>",
		"text<a xmlns='urn:a'><![CDATA[]]>&amp;</a>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, inner string) {
		set, ok := routertest.ParseOne([]byte(q("set", "", inner)))
		if !ok {
			return
		}
		r := router.New(router.Options{Domains: []string{domain}})
		Register(r, Options{Store: &memStore{docs: map[string][]byte{}}})
		c := routertest.Bind(t, r, "alice@"+domain+"/phone")
		if err := r.Route(t.Context(), c.Resource, set); err != nil {
			t.Fatal(err)
		}
		out := c.Sink.Take()
		if len(out) != 1 {
			t.Fatalf("set: %d replies", len(out))
		}
		setReply := routertest.DecodeReply(t, out[0])
		get, ok := routertest.ParseOne([]byte(q("get", "", inner)))
		if !ok {
			t.Fatal("the get of a parsed set does not parse")
		}
		if err := r.Route(t.Context(), c.Resource, get); err != nil {
			t.Fatal(err)
		}
		out = c.Sink.Take()
		if len(out) != 1 {
			t.Fatalf("get: %d replies", len(out))
		}
		getReply := routertest.DecodeReply(t, out[0])
		if setReply.Type != "result" {
			return
		}
		if getReply.Type != "result" {
			// Only a get of more distinct elements than a get may ask for fails after a set that worked.
			if getReply.Condition() != "not-acceptable" {
				t.Fatalf("get after a successful set: %s", getReply.Raw)
			}
			return
		}
		var res struct {
			Query struct {
				XMLName xml.Name
				Items   []struct{ XMLName xml.Name } `xml:",any"`
			} `xml:"query"`
		}
		if err := xml.Unmarshal(out[0], &res); err != nil {
			t.Fatalf("get result %s: %v", out[0], err)
		}
		for _, it := range res.Query.Items {
			if it.XMLName.Space == "" || it.XMLName.Space == NS || it.XMLName.Space == "jabber:client" {
				t.Fatalf("result holds %v, a namespace that was refused or lost: %s", it.XMLName, out[0])
			}
		}
		if len(res.Query.Items) == 0 {
			t.Fatalf("a successful set and get with no element back: %s", out[0])
		}
	})
}
