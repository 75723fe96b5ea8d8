package presence

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/im/roster"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
)

const domain = "example.com"

// env is one node: a real router, roster and presence handler over a SQLite store.
type env struct {
	t       testing.TB
	ctx     context.Context
	store   *sqlite.Store
	router  *router.Router
	roster  *roster.Roster
	h       *Handler
	offline *recorder
}

// recorder is a Deliverer that remembers whom it was called for; while more is above zero it
// reports more waiting and counts down.
type recorder struct {
	mu    sync.Mutex
	calls []string
	more  int
}

func (r *recorder) Deliver(_ context.Context, res *router.Resource) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, string(res.Full()))
	if r.more > 0 {
		r.more--
		return true, nil
	}
	return false, nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "starling.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := router.New(router.Options{Domains: []string{domain}, Accounts: st})
	ros, err := roster.New(roster.Options{Store: st, Router: r})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h, err := New(Options{Router: r, Roster: ros, Offline: rec})
	if err != nil {
		t.Fatal(err)
	}
	r.HandlePresence(h)
	r.HandleIQ(roster.NS, roster.NewHandler(ros, h))
	return &env{t: t, ctx: ctx, store: st, router: r, roster: ros, h: h, offline: rec}
}

// user creates accounts.
func (e *env) user(bares ...string) {
	e.t.Helper()
	for _, b := range bares {
		if err := e.store.CreateUser(e.ctx, b, nil); err != nil {
			e.t.Fatal(err)
		}
	}
}

// client is a bound session.
type client struct {
	*routertest.Client
	e *env
}

// bind binds a session for a full JID; the account must exist.
func (e *env) bind(full string) *client {
	e.t.Helper()
	// A replaced session gets ResourceGone from the router.
	return &client{Client: routertest.Bind(e.t, e.router, full), e: e}
}

// online binds a session, asks for the roster and sends initial presence, then forgets the output.
func (e *env) online(full string) *client {
	e.t.Helper()
	c := e.bind(full)
	c.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	c.send("<presence/>")
	c.Sink.Take()
	return c
}

// send routes a stanza from the client as its c2s session would.
func (c *client) send(s string) {
	c.e.t.Helper()
	c.Send(c.e.t, s)
}

// got summarises what the client received since the last call, one line per stanza:
//
//	presence[/type] from>to           a presence
//	push jid sub[ ask][ approved]     a roster push (or "push jid remove")
//	iq/type id                        any other iq
//	message from>to                   a message
//	error/condition                   a stanza error
func (c *client) got() []string {
	c.e.t.Helper()
	var out []string
	for _, b := range c.Sink.Take() {
		out = append(out, summary(c.e.t, b))
	}
	return out
}

func summary(t testing.TB, b []byte) string {
	t.Helper()
	el := routertest.Parse(t, string(b))
	typ := string(el.Attr("type"))
	if typ == "error" {
		if er := el.Child("", "error"); er != nil && er.FirstChild() != nil {
			return "error/" + string(er.FirstChild().Name())
		}
		return "error/?"
	}
	switch string(el.Name()) {
	case "presence":
		name := "presence"
		if typ != "" {
			name += "/" + typ
		}
		return fmt.Sprintf("%s %s>%s", name, el.Attr("from"), el.Attr("to"))
	case "iq":
		if q := el.Child(roster.NS, "query"); q != nil && typ == "set" {
			it := q.FirstChild()
			s := "push " + string(it.Attr("jid")) + " " + string(it.Attr("subscription"))
			if it.HasAttr("ask") {
				s += " ask"
			}
			if it.HasAttr("approved") {
				s += " approved"
			}
			return s
		}
		return "iq/" + typ + " " + string(el.Attr("id"))
	case "message":
		return fmt.Sprintf("message %s>%s", el.Attr("from"), el.Attr("to"))
	}
	return string(b)
}

// expect checks the client's output, ignoring order.
func (c *client) expect(want ...string) {
	c.e.t.Helper()
	got := c.got()
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		c.e.t.Errorf("%s received\n\t%s\nwant\n\t%s", c.Resource.Full(), strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// item returns the stored item of owner for contact, or a zero item with Subscription "absent".
func (e *env) item(owner, contact string) storage.RosterItem {
	e.t.Helper()
	it, err := e.store.RosterItem(e.ctx, owner, contact)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.RosterItem{Subscription: "absent"}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return it
}

// put stores an item directly.
func (e *env) put(owner string, it storage.RosterItem) {
	e.t.Helper()
	if _, err := e.store.PutRosterItem(e.ctx, owner, it); err != nil {
		e.t.Fatal(err)
	}
}

// mirror is the contact's side of a consistent subscription state.
func mirror(it storage.RosterItem, contact string) storage.RosterItem {
	return storage.RosterItem{
		Contact:      contact,
		Subscription: subscription(hasFrom(it.Subscription), hasTo(it.Subscription)),
		PendingOut:   it.PendingIn,
		PendingIn:    it.PendingOut,
	}
}
