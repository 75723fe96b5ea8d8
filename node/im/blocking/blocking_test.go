package blocking

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

const domain = "example.com"

// presenceLog records what the handler asked presence to do, with the contacts the match accepted
// among a fixed set of candidates.
type presenceLog struct {
	mu  sync.Mutex
	got []string
}

var candidates = []string{"romeo@example.com", "romeo@example.com/phone", "tybalt@example.com", "nurse@evil.example"}

func (p *presenceLog) record(op, owner string, match func(string) bool) {
	var hit []string
	for _, c := range candidates {
		if match(c) {
			hit = append(hit, c)
		}
	}
	p.mu.Lock()
	p.got = append(p.got, op+" "+owner+" "+strings.Join(hit, ","))
	p.mu.Unlock()
}

func (p *presenceLog) Hide(_ context.Context, owner string, match func(string) bool) {
	p.record("hide", owner, match)
}

func (p *presenceLog) Show(_ context.Context, owner string, match func(string) bool) {
	p.record("show", owner, match)
}

func (p *presenceLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.got
	p.got = nil
	return out
}

// newServer returns a router serving the blocking command on a fresh SQLite store with the accounts
// alice and bob.
func newServer(t testing.TB) (*router.Router, *Handler, *presenceLog, *sqlite.Store) {
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
	h, err := New(Options{Store: st, Accounts: st, Sessions: r})
	if err != nil {
		t.Fatal(err)
	}
	p := &presenceLog{}
	h.SetPresence(p)
	h.Register(r)
	return r, h, p, st
}

func iq(typ, attrs, payload string) string {
	return fmt.Sprintf("<iq type='%s' id='b1'%s>%s</iq>", typ, attrs, payload)
}

func block(items ...string) string   { return wrap("block", items) }
func unblock(items ...string) string { return wrap("unblock", items) }

func wrap(name string, items []string) string {
	var b strings.Builder
	b.WriteString("<" + name + " xmlns='urn:xmpp:blocking'>")
	for _, j := range items {
		b.WriteString("<item jid='" + j + "'/>")
	}
	b.WriteString("</" + name + ">")
	return b.String()
}

// push is a blocking push as a client decodes it.
type push struct {
	Type  string `xml:"type,attr"`
	To    string `xml:"to,attr"`
	From  string `xml:"from,attr"`
	Block *struct {
		Items []struct {
			JID string `xml:"jid,attr"`
		} `xml:"item"`
	} `xml:"urn:xmpp:blocking block"`
	Unblock *struct {
		Items []struct {
			JID string `xml:"jid,attr"`
		} `xml:"item"`
	} `xml:"urn:xmpp:blocking unblock"`
}

// summary says what a push carries: "block a,b" or "unblock" (everyone).
func (p push) summary() string {
	var op string
	var js []string
	switch {
	case p.Block != nil:
		op = "block"
		for _, it := range p.Block.Items {
			js = append(js, it.JID)
		}
	case p.Unblock != nil:
		op = "unblock"
		for _, it := range p.Unblock.Items {
			js = append(js, it.JID)
		}
	}
	return strings.TrimSpace(op + " " + strings.Join(js, ","))
}

// TestBlocking runs one account's conversation step by step: each step's state is what the steps
// before it left.
func TestBlocking(t *testing.T) {
	r, h, pres, _ := newServer(t)
	clients := map[string]*routertest.Client{
		"alice":  routertest.Bind(t, r, "alice@"+domain+"/phone"),
		"alice2": routertest.Bind(t, r, "alice@"+domain+"/laptop"),
		"alice3": routertest.Bind(t, r, "alice@"+domain+"/tablet"), // never asks: gets no push
		"bob":    routertest.Bind(t, r, "bob@"+domain+"/pc"),
	}
	list := func(js ...string) string {
		return string(newList(js).Encode())
	}
	steps := []struct {
		name, who, in string
		cond          string   // expected error condition, "" for a result
		result        string   // the result's payload, checked when not ""
		pushes        []string // to alice/phone and alice/laptop when both are interested, in that order
		presence      []string
		blocked       []string // JIDs alice blocks afterwards, checked through Blocks
	}{
		{name: "empty list", who: "alice", in: iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), result: list()},
		{name: "second resource asks too", who: "alice2", in: iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), result: list()},
		{name: "block without items", who: "alice", in: iq("set", "", block()), cond: "bad-request"},
		{name: "malformed JID", who: "alice", in: iq("set", "", block("romeo@example.com", "a@b@c")), cond: "jid-malformed"},
		{name: "item without JID", who: "alice", in: iq("set", "", "<block xmlns='urn:xmpp:blocking'><item/></block>"), cond: "jid-malformed"},
		{name: "block", who: "alice", in: iq("set", "", block("Romeo@Example.com", "evil.example")),
			pushes: []string{"block romeo@example.com,evil.example"}, presence: []string{"hide alice@example.com romeo@example.com,romeo@example.com/phone,nurse@evil.example"},
			blocked: []string{"romeo@example.com/phone", "nurse@evil.example"}},
		{name: "list in blocking order", who: "alice2", in: iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), result: list("romeo@example.com", "evil.example")},
		{name: "blocking again changes nothing new", who: "alice2", in: iq("set", "", block("romeo@example.com", "tybalt@example.com")),
			pushes: []string{"block romeo@example.com,tybalt@example.com"}, presence: []string{"hide alice@example.com tybalt@example.com"}},
		{name: "unblock one", who: "alice", in: iq("set", "", unblock("romeo@example.com")),
			pushes: []string{"unblock romeo@example.com"}, presence: []string{"show alice@example.com romeo@example.com,romeo@example.com/phone"},
			blocked: []string{"tybalt@example.com", "x@evil.example"}},
		{name: "unblocking what is not blocked", who: "alice", in: iq("set", "", unblock("juliet@example.com")),
			pushes: []string{"unblock juliet@example.com"}, presence: []string{"show alice@example.com "}},
		{name: "list after unblock", who: "alice", in: iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), result: list("evil.example", "tybalt@example.com")},
		{name: "bob's list is his own", who: "bob", in: iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), result: list()},
		{name: "another's list", who: "bob", in: iq("get", " to='alice@example.com'", "<blocklist xmlns='urn:xmpp:blocking'/>"), cond: "forbidden"},
		{name: "the server's list", who: "bob", in: iq("set", " to='example.com'", block("alice@example.com")), cond: "forbidden"},
		{name: "get of block", who: "alice", in: iq("get", "", block("x@example.com")), cond: "bad-request"},
		{name: "set of blocklist", who: "alice", in: iq("set", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), cond: "bad-request"},
		{name: "unblock all", who: "alice", in: iq("set", "", unblock()),
			pushes: []string{"unblock"}, presence: []string{"show alice@example.com tybalt@example.com,nurse@evil.example"}},
		{name: "empty again", who: "alice", in: iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), result: list()},
	}
	interested := []*routertest.Client{clients["alice"], clients["alice2"]}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			c := clients[st.who]
			c.Send(t, st.in)
			got := c.Sink.Take()
			if len(got) == 0 {
				t.Fatal("no answer")
			}
			rep := routertest.DecodeReply(t, got[0])
			if st.cond != "" {
				if rep.Type != "error" || rep.Condition() != st.cond {
					t.Fatalf("got %s, want error %s", got[0], st.cond)
				}
			} else {
				if rep.Type != "result" || rep.ID != "b1" {
					t.Fatalf("got %s, want a result", got[0])
				}
				if st.result != "" && string(rep.Inner) != st.result {
					t.Errorf("result %s, want %s", rep.Inner, st.result)
				}
			}
			// The requester's pushes follow its answer; the other interested resource gets them alone.
			for _, ic := range interested {
				var ps [][]byte
				if ic == c {
					ps = got[1:]
				} else {
					ps = ic.Sink.Take()
				}
				var sums []string
				for _, raw := range ps {
					var p push
					if err := xml.Unmarshal(raw, &p); err != nil {
						t.Fatalf("push %s: %v", raw, err)
					}
					if p.Type != "set" || p.To != string(ic.Resource.Full()) || p.From != "" {
						t.Errorf("push %s is not an iq set to %s without 'from'", raw, ic.Resource.Full())
					}
					sums = append(sums, p.summary())
				}
				if !slices.Equal(sums, st.pushes) {
					t.Errorf("%s got pushes %q, want %q", ic.Resource.Full(), sums, st.pushes)
				}
			}
			if n := clients["alice3"].Sink.Len(); n != 0 {
				t.Errorf("a resource that never asked got %d pushes", n)
			}
			if got := pres.take(); !slices.Equal(got, st.presence) {
				t.Errorf("presence %q, want %q", got, st.presence)
			}
			for _, j := range st.blocked {
				if !h.Blocks(t.Context(), []byte("alice@example.com"), []byte(j)) {
					t.Errorf("%s is not blocked", j)
				}
			}
		})
	}
}

func TestListSurvivesRestart(t *testing.T) {
	r, _, _, st := newServer(t)
	alice := routertest.Bind(t, r, "alice@"+domain+"/phone")
	alice.Do(t, iq("set", "", block("romeo@example.com", "evil.example")))
	// A new handler on the same store, as after a restart: its cache is empty.
	h2, err := New(Options{Store: st, Accounts: st, Sessions: r})
	if err != nil {
		t.Fatal(err)
	}
	if !h2.Blocks(t.Context(), []byte("alice@example.com"), []byte("romeo@example.com/x")) {
		t.Error("the reloaded list does not block romeo")
	}
	l, err := h2.List(t.Context(), "alice@example.com")
	if err != nil || !slices.Equal(l.JIDs(), []string{"romeo@example.com", "evil.example"}) {
		t.Fatalf("reloaded list %v, %v", l, err)
	}
	// Unblocking everyone deletes the document.
	alice.Do(t, iq("set", "", unblock()))
	if _, err := st.Document(t.Context(), "alice@example.com", Kind, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("document after unblocking all: %v, want not found", err)
	}
}

func TestUnknownAccountsAreNotCached(t *testing.T) {
	_, h, _, _ := newServer(t)
	for i := range 10 {
		if h.Blocks(t.Context(), fmt.Appendf(nil, "ghost%d@example.com", i), []byte("alice@example.com")) {
			t.Fatal("a made-up account blocks")
		}
	}
	h.Blocks(t.Context(), []byte("bob@example.com"), []byte("alice@example.com"))
	h.mu.RLock()
	n := len(h.accounts)
	h.mu.RUnlock()
	if n != 1 {
		t.Errorf("%d accounts cached, want 1 (bob)", n)
	}
	h.Forget("bob@example.com")
	if len(h.accounts) != 0 {
		t.Error("Forget kept the account")
	}
}

func TestBlocksAllocatesNothing(t *testing.T) {
	r, h, _, _ := newServer(t)
	routertest.Bind(t, r, "alice@"+domain+"/phone").Do(t, iq("set", "", block("romeo@example.com")))
	owner, contact := []byte("alice@example.com"), []byte("bob@example.com/pc")
	h.Blocks(t.Context(), []byte("bob@example.com"), contact) // load bob's (empty) list
	ctx := t.Context()
	for _, o := range [][]byte{owner, []byte("bob@example.com")} {
		if n := testing.AllocsPerRun(1000, func() { h.Blocks(ctx, o, contact) }); n != 0 {
			t.Errorf("%s: %v allocations per lookup, want 0", o, n)
		}
	}
}

// failingStore fails every read and write.
type failingStore struct{}

var errDown = errors.New("database down")

func (failingStore) Document(context.Context, string, string, string) ([]byte, error) {
	return nil, errDown
}
func (failingStore) PutDocument(context.Context, string, string, string, []byte) error {
	return errDown
}
func (failingStore) DeleteDocument(context.Context, string, string, string) error { return errDown }

func TestStorageFailure(t *testing.T) {
	r := router.New(router.Options{Domains: []string{domain}})
	h, err := New(Options{Store: failingStore{}, Accounts: failingAccounts{}, Sessions: r})
	if err != nil {
		t.Fatal(err)
	}
	h.Register(r)
	if h.Blocks(t.Context(), []byte("alice@example.com"), []byte("romeo@example.com")) {
		t.Error("blocks without a list")
	}
	alice := routertest.Bind(t, r, "alice@"+domain+"/phone")
	for _, in := range []string{iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"), iq("set", "", block("romeo@example.com"))} {
		if rep := alice.Do(t, in); rep.Condition() != "internal-server-error" {
			t.Errorf("%s: got %s, want internal-server-error", in, rep.Raw)
		}
	}
}

type failingAccounts struct{}

func (failingAccounts) UserExists(context.Context, string) (bool, error) { return false, errDown }

func TestTooMany(t *testing.T) {
	r, _, _, _ := newServer(t)
	alice := routertest.Bind(t, r, "alice@"+domain+"/phone")
	// In batches: a stanza may hold at most 1000 elements (xml.DefaultLimits).
	for batch := 0; batch < MaxItems; batch += 500 {
		var js []string
		for i := batch; i < min(batch+500, MaxItems); i++ {
			js = append(js, fmt.Sprintf("u%d@example.org", i))
		}
		if rep := alice.Do(t, iq("set", "", block(js...))); rep.Type != "result" {
			t.Fatalf("blocking %d more: %.200s", len(js), rep.Raw)
		}
	}
	if rep := alice.Do(t, iq("set", "", block("one-more@example.org"))); rep.Condition() != "resource-constraint" {
		t.Fatalf("blocking one more: %.200s, want resource-constraint", rep.Raw)
	}
}

func TestNewNeedsItsParts(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted no store")
	}
}

func BenchmarkBlocks(b *testing.B) {
	r, h, _, _ := newServer(b)
	routertest.Bind(b, r, "alice@"+domain+"/phone").Do(b, iq("set", "", block("romeo@example.com", "evil.example")))
	owner, contact := []byte("alice@example.com"), []byte("bob@example.com/pc")
	ctx := b.Context()
	h.Blocks(ctx, owner, contact)
	b.ReportAllocs()
	for b.Loop() {
		h.Blocks(ctx, owner, contact)
	}
}

func BenchmarkBlock(b *testing.B) {
	r, _, _, _ := newServer(b)
	routertest.BenchRoute(b, r, "alice@"+domain+"/phone", iq("set", "", block("romeo@example.com")))
}

// BenchmarkRouteMessage measures a chat message between two accounts through a router with the real
// handler wired, the recipient's list holding someone else: the cost blocking adds to every message
// is its two lookups.
func BenchmarkRouteMessage(b *testing.B) {
	r, _, _, _ := newServer(b)
	routertest.Bind(b, r, "bob@"+domain+"/pc").Do(b, iq("set", "", block("romeo@example.com")))
	to := router.NewResource(jid.MustParse("bob@"+domain+"/pc2"), routertest.Discard{}, routertest.Discard{})
	r.Bind(b.Context(), to)
	to.SetPresence(true, 0, nil)
	routertest.BenchRoute(b, r, "alice@"+domain+"/phone", "<message to='bob@example.com/pc2' type='chat' id='x'><body>Wherefore art thou?</body></message>")
}

// TestConcurrentChangesAndLookups races lookups (as the router makes them on every message) against
// block and unblock from two resources, for the race detector, and checks the list ends as the last
// change left it.
func TestConcurrentChangesAndLookups(t *testing.T) {
	r, h, _, _ := newServer(t)
	phone := routertest.Bind(t, r, "alice@"+domain+"/phone")
	laptop := routertest.Bind(t, r, "alice@"+domain+"/laptop")
	blockIQ := routertest.Parse(t, iq("set", "", block("romeo@example.com", "evil.example")))
	unblockIQ := routertest.Parse(t, iq("set", "", unblock("romeo@example.com")))
	getIQ := routertest.Parse(t, iq("get", "", "<blocklist xmlns='urn:xmpp:blocking'/>"))
	ctx := t.Context()
	var wg sync.WaitGroup
	for _, c := range []*routertest.Client{phone, laptop} {
		wg.Go(func() {
			for range 50 {
				r.Route(ctx, c.Resource, blockIQ)
				r.Route(ctx, c.Resource, getIQ)
				r.Route(ctx, c.Resource, unblockIQ)
			}
		})
	}
	wg.Go(func() {
		for range 2000 {
			h.Blocks(ctx, []byte("alice@example.com"), []byte("x@evil.example/r"))
			h.Blocks(ctx, []byte("bob@example.com"), []byte("alice@example.com/phone"))
		}
	})
	wg.Wait()
	r.Route(ctx, phone.Resource, blockIQ)
	l, err := h.List(ctx, "alice@example.com")
	if err != nil || !slices.Equal(l.JIDs(), []string{"evil.example", "romeo@example.com"}) {
		t.Fatalf("list %q, %v; want evil.example (never unblocked) then romeo", l.JIDs(), err)
	}
	for _, c := range []*routertest.Client{phone, laptop} {
		for _, raw := range c.Sink.Take() {
			if strings.Contains(string(raw), "type='error'") {
				t.Fatalf("%s got %s", c.Resource.Full(), raw)
			}
		}
	}
}
