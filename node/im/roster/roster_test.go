package roster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
	"go.uber.org/goleak"
)

// memStore is an in-memory Store with the semantics of storage.Rosters.
type memStore struct {
	mu    sync.Mutex
	items map[string]map[string]storage.RosterItem
	ver   map[string]int64
	fail  error
}

func newMemStore() *memStore {
	return &memStore{items: make(map[string]map[string]storage.RosterItem), ver: make(map[string]int64)}
}

func (m *memStore) Roster(_ context.Context, owner string) ([]storage.RosterItem, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, 0, m.fail
	}
	var out []storage.RosterItem
	for _, it := range m.items[owner] {
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b storage.RosterItem) int { return strings.Compare(a.Contact, b.Contact) })
	return out, m.ver[owner], nil
}

func (m *memStore) RosterItem(_ context.Context, owner, contact string) (storage.RosterItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return storage.RosterItem{}, m.fail
	}
	it, ok := m.items[owner][contact]
	if !ok {
		return it, storage.ErrNotFound
	}
	return it, nil
}

func (m *memStore) PutRosterItem(_ context.Context, owner string, it storage.RosterItem) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := storage.CheckRosterItem(it); err != nil {
		return 0, err
	}
	if m.items[owner] == nil {
		m.items[owner] = make(map[string]storage.RosterItem)
	}
	m.items[owner][it.Contact] = it
	m.ver[owner]++
	return m.ver[owner], nil
}

func (m *memStore) DeleteRosterItem(_ context.Context, owner, contact string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[owner][contact]; !ok {
		return m.ver[owner], storage.ErrNotFound
	}
	delete(m.items[owner], contact)
	m.ver[owner]++
	return m.ver[owner], nil
}

// removals records RosterItemRemoved calls.
type removals struct{ got []string }

func (r *removals) RosterItemRemoved(_ context.Context, owner string, it storage.RosterItem) {
	r.got = append(r.got, owner+" removed "+it.Contact+" ("+it.Subscription+")")
}

type env struct {
	t       *testing.T
	store   *memStore
	router  *router.Router
	roster  *Roster
	removed *removals
}

func newEnv(t *testing.T, opts Options) *env {
	st := newMemStore()
	r := router.New(router.Options{Domains: []string{"example.com"}})
	opts.Store, opts.Router = st, r
	ros, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rm := &removals{}
	r.HandleIQ(NS, NewHandler(ros, rm))
	return &env{t: t, store: st, router: r, roster: ros, removed: rm}
}

type client struct {
	*routertest.Client
	e *env
}

func (e *env) bind(full string) *client {
	return &client{Client: routertest.Bind(e.t, e.router, full), e: e}
}

func (c *client) send(s string) {
	c.e.t.Helper()
	c.Send(c.e.t, s)
}

// got summarises the output:
//
//	result id [ver=V] [items...]   an iq result ("-" for no query)
//	push ver=V item                a roster push
//	error/condition id             an error
//
// and items as jid/subscription[/ask][/approved][/name][/group,group].
func (c *client) got() []string {
	var out []string
	for _, b := range c.Sink.Take() {
		el := routertest.Parse(c.e.t, string(b))
		typ, id := string(el.Attr("type")), string(el.Attr("id"))
		switch {
		case typ == "error":
			out = append(out, "error/"+string(el.Child("", "error").FirstChild().Name())+" "+id)
		case typ == "result":
			q := el.Child(NS, "query")
			if q == nil {
				out = append(out, "result "+id+" -")
				continue
			}
			s := "result " + id
			if v := q.Attr("ver"); v != nil {
				s += " ver=" + string(v)
			}
			for it := q.FirstChild(); it != nil; it = it.NextSibling() {
				s += " " + itemSummary(it)
			}
			out = append(out, s)
		case typ == "set":
			if el.HasAttr("from") {
				out = append(out, "push with from")
			}
			if string(el.Attr("to")) != string(c.Resource.Full()) {
				out = append(out, "push to "+string(el.Attr("to")))
			}
			q := el.Child(NS, "query")
			out = append(out, "push ver="+string(q.Attr("ver"))+" "+itemSummary(q.FirstChild()))
		default:
			out = append(out, string(b))
		}
	}
	return out
}

func itemSummary(it *xml.Element) string {
	s := string(it.Attr("jid")) + "/" + string(it.Attr("subscription"))
	if it.HasAttr("ask") {
		s += "/ask"
	}
	if it.HasAttr("approved") {
		s += "/approved"
	}
	if n := it.Attr("name"); n != nil {
		s += "/" + string(n)
	}
	var groups []string
	for g := it.FirstChild(); g != nil; g = g.NextSibling() {
		groups = append(groups, string(g.Text()))
	}
	if groups != nil {
		s += "/" + strings.Join(groups, ",")
	}
	return s
}

func (c *client) expect(want ...string) {
	c.e.t.Helper()
	if got := c.got(); !slices.Equal(got, want) {
		c.e.t.Errorf("%s received\n\t%s\nwant\n\t%s", c.Resource.Full(), strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestGetAndVersioning(t *testing.T) {
	e := newEnv(t, Options{})
	e.store.PutRosterItem(t.Context(), "alice@example.com", storage.RosterItem{Contact: "bob@example.com", Name: "Bob", Groups: []string{"Friends", "Work"}, Subscription: "both"})
	e.store.PutRosterItem(t.Context(), "alice@example.com", storage.RosterItem{Contact: "carol@example.com", Subscription: "none", PendingOut: true})
	e.store.PutRosterItem(t.Context(), "alice@example.com", storage.RosterItem{Contact: "eve@example.com", Subscription: "none", PendingIn: true})
	e.store.PutRosterItem(t.Context(), "alice@example.com", storage.RosterItem{Contact: "gina@example.com", Subscription: "to", PreApproved: true})
	all := "bob@example.com/both/Bob/Friends,Work carol@example.com/none/ask gina@example.com/to/approved"
	a := e.bind("alice@example.com/a")
	if a.Resource.RosterRequested() {
		t.Fatal("interested before asking")
	}
	tests := []struct {
		query string
		want  string
	}{
		{"<query xmlns='jabber:iq:roster'/>", "result q " + all},                         // no versioning: no ver
		{"<query xmlns='jabber:iq:roster' ver=''/>", "result q ver=4 " + all},            // first versioned get
		{"<query xmlns='jabber:iq:roster' ver='2'/>", "result q ver=4 " + all},           // stale
		{"<query xmlns='jabber:iq:roster' ver='4'/>", "result q -"},                      // current: empty result
		{"<query xmlns='jabber:iq:roster' ver='ver4'/>", "result q ver=4 " + all},        // not ours
		{"<query xmlns='jabber:iq:roster'><item jid='x@y'/></query>", "result q " + all}, // children of a get are ignored
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			e.t = t
			a.send("<iq type='get' id='q'>" + tc.query + "</iq>")
			a.expect(tc.want)
		})
	}
	e.t = t
	if !a.Resource.RosterRequested() {
		t.Error("a resource that got the roster is not interested")
	}
	a.send("<iq type='get' id='q' to='bob@example.com'><query xmlns='jabber:iq:roster'/></iq>")
	a.expect("error/forbidden q")
	a.send("<iq type='get' id='q' to='alice@example.com'><query xmlns='jabber:iq:roster'/></iq>")
	a.expect("result q " + all)
	e.store.fail = errors.New("disk on fire")
	a.send("<iq type='get' id='q'><query xmlns='jabber:iq:roster'/></iq>")
	a.expect("error/internal-server-error q")
}

func TestSetAndPush(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.bind("alice@example.com/a")
	b := e.bind("alice@example.com/b") // never asks for the roster: not interested
	c := e.bind("alice@example.com/c")
	a.send("<iq type='get' id='g'><query xmlns='jabber:iq:roster' ver=''/></iq>")
	c.send("<iq type='get' id='g'><query xmlns='jabber:iq:roster' ver=''/></iq>")
	a.got()
	c.got()

	a.send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='Bob@Example.com' name='Bob &amp; co'><group>Friends</group><group>Lovers</group></item></query></iq>")
	a.expect("push ver=1 bob@example.com/none/Bob & co/Friends,Lovers", "result s1 -")
	c.expect("push ver=1 bob@example.com/none/Bob & co/Friends,Lovers")
	b.expect()

	// An update keeps the subscription state; 'subscription' values other than remove and 'ask'
	// are ignored (RFC 6121 §2.1.2.5).
	e.store.PutRosterItem(t.Context(), "alice@example.com", storage.RosterItem{Contact: "bob@example.com", Name: "Bob", Subscription: "to", PendingIn: true, PendingInStanza: []byte("<presence/>")})
	c.send("<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='bob@example.com' subscription='both' ask='subscribe'/></query></iq>")
	a.expect("push ver=3 bob@example.com/to")
	c.expect("push ver=3 bob@example.com/to", "result s2 -")
	it, _ := e.store.RosterItem(t.Context(), "alice@example.com", "bob@example.com")
	if it.Subscription != "to" || !it.PendingIn || string(it.PendingInStanza) != "<presence/>" || it.Name != "" || it.Groups != nil {
		t.Errorf("stored after update: %+v", it)
	}

	// The same item again changes nothing a client sees: no push.
	c.send("<iq type='set' id='s3'><query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query></iq>")
	c.expect("result s3 -")
	a.expect()

	// Remove (§2.5): push, result, and the subscriptions are cancelled by the Remover.
	a.send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@example.com' subscription='remove'/></query></iq>")
	a.expect("push ver=5 bob@example.com/remove", "result r1 -")
	c.expect("push ver=5 bob@example.com/remove")
	if want := []string{"alice@example.com removed bob@example.com (to)"}; !slices.Equal(e.removed.got, want) {
		t.Errorf("remover calls %q, want %q", e.removed.got, want)
	}
	a.send("<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='bob@example.com' subscription='remove'/></query></iq>")
	a.expect("error/item-not-found r2")
	c.expect()

	// Versioning after changes: the current version gives an empty result.
	a.send("<iq type='get' id='g'><query xmlns='jabber:iq:roster' ver='5'/></iq>")
	a.expect("result g -")
}

func TestSetErrors(t *testing.T) {
	e := newEnv(t, Options{MaxNameBytes: 8, MaxGroups: 2, MaxGroupBytes: 5, MaxItems: 2})
	a := e.bind("alice@example.com/a")
	item := func(attrs, inner string) string {
		return "<iq type='set' id='e'><query xmlns='jabber:iq:roster'><item " + attrs + ">" + inner + "</item></query></iq>"
	}
	tests := []struct {
		name, stanza, want string
	}{
		{"no item", "<iq type='set' id='e'><query xmlns='jabber:iq:roster'/></iq>", "bad-request"},
		{"two items", "<iq type='set' id='e'><query xmlns='jabber:iq:roster'><item jid='a@example.com'/><item jid='b@example.com'/></query></iq>", "bad-request"},
		{"not an item", "<iq type='set' id='e'><query xmlns='jabber:iq:roster'><thing jid='a@example.com'/></query></iq>", "bad-request"},
		{"no jid", item("name='x'", ""), "bad-request"},
		{"bad jid", item("jid='a@b@example.com'", ""), "jid-malformed"},
		{"full jid", item("jid='a@example.com/r'", ""), "bad-request"},
		{"unknown subscription", item("jid='a@example.com' subscription='maybe'", ""), "bad-request"},
		{"long name", item("jid='a@example.com' name='123456789'", ""), "not-acceptable"},
		{"empty group", item("jid='a@example.com'", "<group></group>"), "not-acceptable"},
		{"long group", item("jid='a@example.com'", "<group>123456</group>"), "not-acceptable"},
		{"too many groups", item("jid='a@example.com'", "<group>a</group><group>b</group><group>c</group>"), "not-acceptable"},
		{"duplicate group", item("jid='a@example.com'", "<group>a</group><group>a</group>"), "bad-request"},
		{"other account", "<iq type='set' id='e' to='bob@example.com'><query xmlns='jabber:iq:roster'><item jid='a@example.com'/></query></iq>", "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			a.send(tc.stanza)
			a.expect("error/" + tc.want + " e")
			if items, _, _ := e.store.Roster(t.Context(), "alice@example.com"); len(items) != 0 {
				t.Errorf("stored %+v", items)
			}
		})
	}
	e.t = t
	for i := range 2 {
		a.send(item(fmt.Sprintf("jid='c%d@example.com' name='12345678'", i), "<group>a</group><group>bbbbb</group>"))
		a.expect("result e -")
	}
	a.send(item("jid='c9@example.com'", ""))
	a.expect("error/not-acceptable e")
	a.send(item("jid='c1@example.com' name='again'", "")) // updating an item is not adding one
	a.expect("result e -")
}

// TestConcurrentUpdates checks that updates of one owner are serialised: none is lost.
func TestConcurrentUpdates(t *testing.T) {
	defer goleak.VerifyNone(t)
	e := newEnv(t, Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				_, err := e.roster.Update(t.Context(), "alice@example.com", "bob@example.com", func(it *storage.RosterItem, _ bool) Op {
					it.Groups = append(it.Groups, fmt.Sprint(i))
					return Put
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	it, _ := e.store.RosterItem(t.Context(), "alice@example.com", "bob@example.com")
	if len(it.Groups) != 200 {
		t.Errorf("%d groups after 200 appends", len(it.Groups))
	}
}

func TestVisible(t *testing.T) {
	tests := []struct {
		it   storage.RosterItem
		want bool
	}{
		{storage.RosterItem{Subscription: "none"}, true},
		{storage.RosterItem{Subscription: "none", PendingIn: true}, false},
		{storage.RosterItem{Subscription: "none", PendingIn: true, Name: "Eve"}, true},
		{storage.RosterItem{Subscription: "none", PendingIn: true, Groups: []string{"g"}}, true},
		{storage.RosterItem{Subscription: "none", PendingIn: true, PendingOut: true}, true},
		{storage.RosterItem{Subscription: "to", PendingIn: true}, true},
		{storage.RosterItem{Subscription: "none", PendingIn: true, PreApproved: true}, true},
	}
	for _, tc := range tests {
		if got := Visible(tc.it); got != tc.want {
			t.Errorf("Visible(%+v) = %v", tc.it, got)
		}
	}
}

func TestAppendItemEscapes(t *testing.T) {
	it := storage.RosterItem{Contact: "a'b@example.com", Name: `<"Bob">`, Groups: []string{"R&D", "<x>"}, Subscription: "from", PendingOut: true}
	el := routertest.Parse(t, string(AppendItem(nil, it, false)))
	if got := itemSummary(el); got != `a'b@example.com/from/ask/<"Bob">/R&D,<x>` {
		t.Errorf("round trip: %s", got)
	}
}

// FuzzParseSet feeds arbitrary content to the roster set validator: it must not panic, and what it
// accepts must hold a bare JID and names and groups within the limits, with no duplicate group.
func FuzzParseSet(f *testing.F) {
	for _, s := range []string{
		"<item jid='a@example.com' name='A'><group>g</group></item>",
		"<item jid='a@example.com' subscription='remove'/>",
		"<item jid='A@Example.COM'><group>x</group><group>x</group></item>",
		"<item jid='a@example.com/r'/>",
		"<item/><item/>",
		"<item jid='a@example.com'><group/></item>",
	} {
		f.Add(s)
	}
	ros, err := New(Options{Store: newMemStore(), Router: router.New(router.Options{}), MaxNameBytes: 16, MaxGroups: 3, MaxGroupBytes: 8})
	if err != nil {
		f.Fatal(err)
	}
	h := NewHandler(ros, nil)
	f.Fuzz(func(t *testing.T, inner string) {
		d := xml.NewDecoder(xml.Limits{})
		d.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"))
		d.Feed([]byte("<query xmlns='jabber:iq:roster'>" + inner + "</query>"))
		if _, err := d.Next(); err != nil {
			return
		}
		tok, err := d.Next()
		if err != nil || tok.Kind != xml.ElementKind {
			return
		}
		req, err := h.parseSet(tok.Elem)
		if err != nil {
			return
		}
		j, err := jid.Parse(req.contact)
		if err != nil || !j.IsBare() || j.String() != req.contact {
			t.Fatalf("accepted contact %q", req.contact)
		}
		if len(req.name) > 16 || len(req.groups) > 3 {
			t.Fatalf("accepted name %q groups %q", req.name, req.groups)
		}
		for i, g := range req.groups {
			if g == "" || len(g) > 8 || slices.Contains(req.groups[:i], g) {
				t.Fatalf("accepted groups %q", req.groups)
			}
		}
	})
}
