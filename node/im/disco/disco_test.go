package disco

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
)

const domain = "example.com"

// adminItems shows one item to everybody and one to admins only, like the cluster view will.
var adminItems = ItemSourceFunc(func(_ context.Context, req *Request) ([]Item, error) {
	items := []Item{{JID: "upload." + domain, Name: "Upload"}}
	if req.Admin {
		items = append(items, Item{JID: domain, Node: "cluster", Name: "Cluster nodes"})
	}
	return items, nil
})

// fixedNode answers for a node, hiding itself from non-admins when adminOnly.
type fixedNode struct {
	adminOnly bool
	err       error
}

func (n fixedNode) DiscoInfo(_ context.Context, req *Request) (Info, error) {
	if n.err != nil {
		return Info{}, n.err
	}
	if n.adminOnly && !req.Admin {
		return Info{}, stanza.New(stanza.ItemNotFound, "")
	}
	return Info{Identities: []Identity{{Category: "automation", Type: "command-list"}}, Features: []string{"urn:example:x"}}, nil
}

func (n fixedNode) DiscoItems(_ context.Context, req *Request) ([]Item, error) {
	if n.err != nil {
		return nil, n.err
	}
	if n.adminOnly && !req.Admin {
		return nil, stanza.New(stanza.ItemNotFound, "")
	}
	return []Item{{JID: req.To.String(), Node: "a", Name: "A " + req.From.Resource()}}, nil
}

// failingRoster fails every lookup, like a storage outage.
type failingRoster struct{}

func (failingRoster) RosterItem(context.Context, string, string) (storage.RosterItem, error) {
	return storage.RosterItem{}, errors.New("disk on fire")
}

type env struct {
	r     *router.Router
	d     *Service
	st    *sqlite.Store
	alice *routertest.Client
	admin *routertest.Client
}

func newEnv(t *testing.T, roster func(*sqlite.Store) Roster) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "starling.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol", "dave", "root"} {
		if err := st.CreateUser(t.Context(), u+"@"+domain, nil); err != nil {
			t.Fatal(err)
		}
	}
	// bob receives alice's presence, carol only sends hers to alice, dave asked and waits.
	for _, it := range []storage.RosterItem{
		{Contact: "bob@" + domain, Subscription: storage.SubFrom},
		{Contact: "carol@" + domain, Subscription: storage.SubTo},
		{Contact: "dave@" + domain, Subscription: storage.SubNone, PendingIn: true},
		{Contact: "erin@" + domain, Subscription: storage.SubBoth},
	} {
		if _, err := st.PutRosterItem(t.Context(), "alice@"+domain, it); err != nil {
			t.Fatal(err)
		}
	}
	r := router.New(router.Options{Domains: []string{domain, "other.example"}, Accounts: st})
	d := New(Options{Admins: []jid.JID{jid.MustParse("root@" + domain)}, Roster: roster(st)})
	d.Register(r)
	r.HandleIQ("urn:xmpp:ping", router.IQHandlerFunc(func(_ context.Context, q *router.IQ) error { return q.Result(nil) }))
	d.AddFeatures(FeatureMsgOffline, "msgoffline")
	d.AddItems(adminItems)
	d.HandleNode("open", fixedNode{})
	d.HandleNode("secret", fixedNode{adminOnly: true})
	d.HandleNode("broken", fixedNode{err: errors.New("node failed")})
	return &env{r: r, d: d, st: st,
		alice: routertest.Bind(t, r, "alice@"+domain+"/phone"),
		admin: routertest.Bind(t, r, "root@"+domain+"/console"),
	}
}

func storeRoster(st *sqlite.Store) Roster { return st }

func TestServerInfo(t *testing.T) {
	e := newEnv(t, storeRoster)
	for _, to := range []string{domain, "other.example"} {
		got := do(t, e.alice, fmt.Sprintf("<iq type='get' id='1' to='%s'><query xmlns='%s'/></iq>", to, NSInfo))
		if got.Type != "result" || got.From != to || got.Query.Node != "" {
			t.Fatalf("reply %+v", got)
		}
		if ids := got.identities(); !slices.Equal(ids, []string{"server/im/Starling"}) {
			t.Errorf("identities %q", ids)
		}
		want := []string{NSInfo, NSItems, "msgoffline", "urn:xmpp:ping"}
		slices.Sort(want)
		if f := got.features(); !slices.Equal(f, want) {
			t.Errorf("features %q, want %q", f, want)
		}
	}
}

// TestServerInfoAfterAddFeatures checks that a feature declared after the reply was first built
// is in the next one.
func TestServerInfoAfterAddFeatures(t *testing.T) {
	e := newEnv(t, storeRoster)
	q := "<iq type='get' id='1' to='example.com'><query xmlns='" + NSInfo + "'/></iq>"
	if f := do(t, e.alice, q).features(); slices.Contains(f, "urn:late") {
		t.Fatalf("features %q", f)
	}
	e.d.AddFeatures("urn:late")
	e.d.AddIdentity(Identity{Category: "pubsub", Type: "pep"})
	got := do(t, e.alice, q)
	if f := got.features(); !slices.Contains(f, "urn:late") {
		t.Errorf("features %q lack the late one", f)
	}
	if ids := got.identities(); !slices.Equal(ids, []string{"server/im/Starling", "pubsub/pep/"}) {
		t.Errorf("identities %q", ids)
	}
}

// TestServerInfoFollowsHandlers checks that a namespace registered after disco is advertised: a
// feature shows exactly when its module is wired in.
func TestServerInfoFollowsHandlers(t *testing.T) {
	e := newEnv(t, storeRoster)
	e.r.HandleIQ("jabber:iq:register", router.IQHandlerFunc(func(_ context.Context, q *router.IQ) error { return q.Result(nil) }))
	if f := e.d.ServerInfo().Features; !slices.Contains(f, "jabber:iq:register") {
		t.Errorf("features %q lack jabber:iq:register", f)
	}
}

func TestServerQueries(t *testing.T) {
	e := newEnv(t, storeRoster)
	tests := []struct {
		name     string
		admin    bool
		in       string
		cond     string
		node     string
		items    []string
		features []string
	}{
		{name: "items", in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSItems + "'/></iq>",
			items: []string{"upload.example.com  Upload"}},
		{name: "items admin", admin: true, in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSItems + "'/></iq>",
			items: []string{"upload.example.com  Upload", "example.com cluster Cluster nodes"}},
		{name: "node info", in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSInfo + "' node='open'/></iq>",
			node: "open", features: []string{"urn:example:x"}},
		{name: "node items", in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSItems + "' node='open'/></iq>",
			node: "open", items: []string{"example.com a A phone"}},
		{name: "admin node hidden", in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSItems + "' node='secret'/></iq>",
			cond: "item-not-found"},
		{name: "admin node", admin: true, in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSItems + "' node='secret'/></iq>",
			node: "secret", items: []string{"example.com a A console"}},
		{name: "unknown node info", in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSInfo + "' node='nope'/></iq>",
			cond: "item-not-found"},
		{name: "unknown node items", in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSItems + "' node='nope'/></iq>",
			cond: "item-not-found"},
		{name: "node fails", in: "<iq type='get' id='1' to='example.com'><query xmlns='" + NSInfo + "' node='broken'/></iq>",
			cond: "internal-server-error"},
		{name: "set", in: "<iq type='set' id='1' to='example.com'><query xmlns='" + NSInfo + "'/></iq>",
			cond: "feature-not-implemented"},
		{name: "wrong element", in: "<iq type='get' id='1' to='example.com'><info xmlns='" + NSInfo + "'/></iq>",
			cond: "service-unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.alice
			if tt.admin {
				c = e.admin
			}
			got := do(t, c, tt.in)
			if tt.cond != "" {
				if got.Type != "error" || got.Condition() != tt.cond {
					t.Fatalf("got %+v, want error %s", got, tt.cond)
				}
				return
			}
			if got.Type != "result" || got.Query.Node != tt.node {
				t.Fatalf("got %+v, want result for node %q", got, tt.node)
			}
			if it := got.items(); !slices.Equal(it, tt.items) {
				t.Errorf("items %q, want %q", it, tt.items)
			}
			if f := got.features(); !slices.Equal(f, tt.features) {
				t.Errorf("features %q, want %q", f, tt.features)
			}
		})
	}
}

func TestAccountInfo(t *testing.T) {
	tests := []struct {
		name   string
		roster func(*sqlite.Store) Roster
		from   string // requester's full JID
		to     string // "" for no 'to'
		ns     string
		node   string
		cond   string // "" for an account/registered result
	}{
		{name: "owner without to", from: "alice@example.com/phone", ns: NSInfo},
		{name: "owner bare", from: "alice@example.com/phone", to: "alice@example.com", ns: NSInfo},
		{name: "owner items", from: "alice@example.com/phone", to: "alice@example.com", ns: NSItems},
		{name: "contact with from", from: "bob@example.com/pc", to: "alice@example.com", ns: NSInfo},
		{name: "contact with both", from: "erin@example.com/pc", to: "alice@example.com", ns: NSInfo},
		{name: "contact with to only", from: "carol@example.com/pc", to: "alice@example.com", ns: NSInfo, cond: "service-unavailable"},
		{name: "pending contact", from: "dave@example.com/pc", to: "alice@example.com", ns: NSInfo, cond: "service-unavailable"},
		{name: "stranger", from: "root@example.com/pc", to: "alice@example.com", ns: NSInfo, cond: "service-unavailable"},
		{name: "stranger items", from: "root@example.com/pc", to: "alice@example.com", ns: NSItems, cond: "service-unavailable"},
		{name: "no such account", from: "bob@example.com/pc", to: "nobody@example.com", ns: NSInfo, cond: "service-unavailable"},
		{name: "node on account", from: "alice@example.com/phone", to: "alice@example.com", ns: NSInfo, node: "x", cond: "item-not-found"},
		{name: "node on account by stranger", from: "root@example.com/pc", to: "alice@example.com", ns: NSInfo, node: "x", cond: "service-unavailable"},
		{name: "no roster", roster: func(*sqlite.Store) Roster { return nil }, from: "bob@example.com/pc", to: "alice@example.com", ns: NSInfo, cond: "service-unavailable"},
		{name: "no roster owner", roster: func(*sqlite.Store) Roster { return nil }, from: "alice@example.com/pc", ns: NSInfo},
		{name: "roster fails", roster: func(*sqlite.Store) Roster { return failingRoster{} }, from: "bob@example.com/pc", to: "alice@example.com", ns: NSInfo, cond: "internal-server-error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ros := tt.roster
			if ros == nil {
				ros = storeRoster
			}
			e := newEnv(t, ros)
			c := routertest.Bind(t, e.r, tt.from)
			in := "<iq type='get' id='1'"
			if tt.to != "" {
				in += " to='" + tt.to + "'"
			}
			in += "><query xmlns='" + tt.ns + "'"
			if tt.node != "" {
				in += " node='" + tt.node + "'"
			}
			in += "/></iq>"
			got := do(t, c, in)
			if got.From != tt.to {
				t.Errorf("reply from %q, want %q", got.From, tt.to)
			}
			if tt.cond != "" {
				if got.Type != "error" || got.Condition() != tt.cond {
					t.Fatalf("got %+v, want error %s", got, tt.cond)
				}
				return
			}
			if got.Type != "result" {
				t.Fatalf("got %+v, want result", got)
			}
			if tt.ns == NSItems {
				if len(got.Query.Items) != 0 || len(got.Query.Identities) != 0 {
					t.Errorf("account items %+v, want none", got.Query)
				}
				return
			}
			if ids := got.identities(); !slices.Equal(ids, []string{"account/registered/"}) {
				t.Errorf("identities %q", ids)
			}
			if f := got.features(); !slices.Contains(f, NSInfo) {
				t.Errorf("features %q lack disco#info", f)
			}
		})
	}
}

// TestEscaping checks that names and nodes with markup characters come out well-formed.
func TestEscaping(t *testing.T) {
	e := newEnv(t, storeRoster)
	e.d.AddItems(ItemSourceFunc(func(context.Context, *Request) ([]Item, error) {
		return []Item{{JID: domain, Node: "a'<&\"b", Name: "x</item>y"}}, nil
	}))
	got := do(t, e.alice, "<iq type='get' id='1' to='example.com'><query xmlns='"+NSItems+"'/></iq>")
	if it := got.items(); !slices.Contains(it, "example.com a'<&\"b x</item>y") {
		t.Errorf("items %q", it)
	}
}
