package private

import (
	"slices"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// TestDiscoFeature: clients look for jabber:iq:private in the server's disco#info before they keep
// bookmarks there; registering the handler is what makes it appear.
func TestDiscoFeature(t *testing.T) {
	r, st := newServer(t)
	d := disco.New(disco.Options{Roster: st})
	d.Register(r)
	if f := d.ServerInfo().Features; !slices.Contains(f, NS) {
		t.Errorf("server features %q lack %s", f, NS)
	}
}

// BenchmarkGetBookmarks routes a client's fetch of its XEP-0048 bookmarks (2 KiB, on SQLite) and
// builds the answer: what many clients do at every login.
func BenchmarkGetBookmarks(b *testing.B) {
	r, _ := newServer(b)
	c := routertest.Bind(b, r, "alice@"+domain+"/phone")
	bm := "<storage xmlns='storage:bookmarks'>" + strings.Repeat("<conference jid='room@chat.example.com' autojoin='true' name='A room'><nick>alice</nick></conference>", 20) + "</storage>"
	if got := c.Do(b, q("set", "", bm)); got.Type != "result" {
		b.Fatalf("set: %s", got.Raw)
	}
	res := router.NewResource(jid.MustParse("alice@"+domain+"/laptop"), routertest.Discard{}, routertest.Discard{})
	r.Bind(b.Context(), res)
	e := routertest.Parse(b, q("get", "", "<storage xmlns='storage:bookmarks'/>"))
	b.ReportAllocs()
	b.SetBytes(int64(len(bm)))
	for b.Loop() {
		r.Route(b.Context(), res, e)
	}
}
