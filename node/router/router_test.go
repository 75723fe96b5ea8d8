// The router's tests live in package router_test so that they can use routertest, which imports
// router; only the test of the unexported address fast path (route_test.go) stays inside.
package router_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

type accounts map[string]bool

func (a accounts) UserExists(_ context.Context, bare string) (bool, error) { return a[bare], nil }

type offline struct{ stored []string }

func (o *offline) StoreOffline(_ context.Context, owner string, st []byte) error {
	if strings.Contains(string(st), "full") {
		return errors.New("quota")
	}
	o.stored = append(o.stored, owner+" "+string(st))
	return nil
}

func newRouter() (*router.Router, *offline) {
	off := &offline{}
	return router.New(router.Options{Domains: []string{"example.org"}, Offline: off,
		Accounts: accounts{"juliet@example.org": true, "romeo@example.org": true, "nurse@example.org": true}}), off
}

func bind(t testing.TB, r *router.Router, full string, available bool, prio int) (*router.Resource, *routertest.Sink) {
	t.Helper()
	c := routertest.NewClient(r, full)
	if old := r.Bind(context.Background(), c.Resource); old != nil {
		t.Fatalf("unexpected replace of %s", full)
	}
	if available {
		c.Resource.SetPresence(true, prio, nil)
	}
	return c.Resource, c.Sink
}

func TestMessageRules(t *testing.T) {
	tests := []struct {
		name       string
		stanza     string
		wantBalc   bool // juliet/balcony (prio 1) gets it
		wantChamb  bool // juliet/chamber (prio 5) gets it
		wantNeg    bool // juliet/hidden (prio -1) gets it
		wantError  string
		wantStored bool
	}{
		{"full JID", `<message to='juliet@example.org/balcony' type='chat'><body>x</body></message>`, true, false, false, "", false},
		{"bare chat goes to highest priority", `<message to='juliet@example.org' type='chat'><body>x</body></message>`, false, true, false, "", false},
		{"bare normal", `<message to='juliet@example.org'><body>x</body></message>`, false, true, false, "", false},
		{"headline to all non-negative", `<message to='juliet@example.org' type='headline'><body>x</body></message>`, true, true, false, "", false},
		{"unknown resource falls back to bare", `<message to='juliet@example.org/gone' type='chat'><body>x</body></message>`, false, true, false, "", false},
		{"groupchat to bare", `<message to='juliet@example.org' type='groupchat'><body>x</body></message>`, false, false, false, "service-unavailable", false},
		{"no such user", `<message to='tybalt@example.org' type='chat'><body>x</body></message>`, false, false, false, "service-unavailable", false},
		{"offline user stored", `<message to='romeo@example.org' type='chat'><body>x</body></message>`, false, false, false, "", true},
		{"offline store full", `<message to='romeo@example.org' type='chat'><body>full</body></message>`, false, false, false, "service-unavailable", false},
		{"headline to offline user dropped", `<message to='romeo@example.org' type='headline'><body>x</body></message>`, false, false, false, "", false},
		{"remote domain", `<message to='a@elsewhere.org'><body>x</body></message>`, false, false, false, "remote-server-not-found", false},
		{"bad JID", `<message to='a@b@c'><body>x</body></message>`, false, false, false, "jid-malformed", false},
		{"bad type", `<message to='juliet@example.org' type='shout'/>`, false, false, false, "bad-request", false},
		{"upper-case address is prepared", `<message to='Juliet@Example.org/balcony' type='chat'><body>x</body></message>`, true, false, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, off := newRouter()
			_, balc := bind(t, r, "juliet@example.org/balcony", true, 1)
			_, chamb := bind(t, r, "juliet@example.org/chamber", true, 5)
			_, neg := bind(t, r, "juliet@example.org/hidden", true, -1)
			from, fromSink := bind(t, r, "nurse@example.org/home", true, 0)
			if err := r.Route(context.Background(), from, routertest.Parse(t, tt.stanza)); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				s    *routertest.Sink
				want bool
			}{{"balcony", balc, tt.wantBalc}, {"chamber", chamb, tt.wantChamb}, {"hidden", neg, tt.wantNeg}} {
				got := c.s.TakeString()
				if (got != "") != c.want {
					t.Errorf("%s got %q, want delivery %v", c.name, got, c.want)
				}
				if got != "" && !strings.Contains(got, "from='nurse@example.org/home'") {
					t.Errorf("%s: sender not stamped: %s", c.name, got)
				}
			}
			reply := fromSink.TakeString()
			if tt.wantError == "" && reply != "" || tt.wantError != "" && !strings.Contains(reply, "<"+tt.wantError+" ") {
				t.Errorf("sender got %q, want error %q", reply, tt.wantError)
			}
			if (len(off.stored) > 0) != tt.wantStored {
				t.Errorf("stored %v, want %v", off.stored, tt.wantStored)
			}
		})
	}
}

func TestIQRouting(t *testing.T) {
	r, _ := newRouter()
	var got *router.IQ
	r.HandleIQ("urn:test", router.IQHandlerFunc(func(ctx context.Context, iq *router.IQ) error {
		got = iq
		return iq.Result([]byte("<ok xmlns='urn:test'/>"))
	}))
	r.HandleIQ("urn:fails", router.IQHandlerFunc(func(ctx context.Context, iq *router.IQ) error { return errors.New("boom") }))
	r.HandleIQ("urn:silent", router.IQHandlerFunc(func(ctx context.Context, iq *router.IQ) error { return nil }))
	from, fs := bind(t, r, "nurse@example.org/home", true, 0)
	_, js := bind(t, r, "juliet@example.org/balcony", true, 0)
	tests := []struct {
		stanza, wantSender, wantJuliet string
	}{
		{`<iq type='get' id='1' to='example.org'><q xmlns='urn:test'/></iq>`, "<ok xmlns='urn:test'/>", ""},
		{`<iq type='get' id='2'><q xmlns='urn:test'/></iq>`, "type='result'", ""},
		{`<iq type='get' id='3' to='example.org'><q xmlns='urn:nope'/></iq>`, "service-unavailable", ""},
		{`<iq type='get' id='4' to='example.org'><q xmlns='urn:fails'/></iq>`, "internal-server-error", ""},
		{`<iq type='get' id='5' to='example.org'><q xmlns='urn:silent'/></iq>`, "internal-server-error", ""},
		{`<iq type='get' id='6' to='juliet@example.org/balcony'><q xmlns='urn:nope'/></iq>`, "", "id='6'"},
		{`<iq type='get' id='7' to='juliet@example.org/gone'><q xmlns='urn:nope'/></iq>`, "service-unavailable", ""},
		{`<iq type='get' to='example.org'><q xmlns='urn:test'/></iq>`, "bad-request", ""},
		{`<iq type='get' id='9' to='example.org'><q xmlns='urn:test'/><q xmlns='urn:test'/></iq>`, "bad-request", ""},
		{`<iq type='result' id='10' to='example.org'/>`, "", ""},
		{`<iq type='get' id='11' to='x@remote.org'><q xmlns='urn:test'/></iq>`, "remote-server-not-found", ""},
	}
	for _, tt := range tests {
		if err := r.Route(context.Background(), from, routertest.Parse(t, tt.stanza)); err != nil {
			t.Fatal(err)
		}
		s, j := fs.TakeString(), js.TakeString()
		if tt.wantSender == "" && s != "" || !strings.Contains(s, tt.wantSender) {
			t.Errorf("%s: sender got %q, want %q", tt.stanza, s, tt.wantSender)
		}
		if tt.wantJuliet == "" && j != "" || !strings.Contains(j, tt.wantJuliet) {
			t.Errorf("%s: juliet got %q, want %q", tt.stanza, j, tt.wantJuliet)
		}
	}
	if got == nil || !got.ToOwnAccount() || got.ToServer() {
		t.Fatalf("handler saw %+v", got)
	}
}

func TestBindReplaceAndUnbind(t *testing.T) {
	r, _ := newRouter()
	a, _ := bind(t, r, "juliet@example.org/balcony", true, 0)
	b := router.NewResource(jid.MustParse("juliet@example.org/balcony"), &routertest.Sink{}, &routertest.Closer{})
	if old := r.Bind(context.Background(), b); old != a {
		t.Fatal("the second bind did not replace the first")
	}
	if r.Count() != 1 {
		t.Fatalf("count %d", r.Count())
	}
	r.Unbind(context.Background(), a) // the replaced one: nothing happens
	if r.Count() != 1 || r.Resource(jid.MustParse("juliet@example.org/balcony")) != b {
		t.Fatal("unbinding a replaced resource removed its successor")
	}
	r.Unbind(context.Background(), b)
	if r.Count() != 0 || len(r.Online()) != 0 {
		t.Fatal("not unbound")
	}
}

// discardSink copies the element as a connection queue would, into a reused buffer.
type discardSink struct{ buf []byte }

func (d *discardSink) Write(p []byte) error { d.buf = append(d.buf[:0], p...); return nil }
func (d *discardSink) WriteElement(e *xml.Element, set ...xml.Attr) error {
	d.buf = e.AppendTo(d.buf[:0], set...)
	return nil
}

// bindDiscarding binds nurse@example.org/home and an available juliet@example.org/balcony on r, both
// over discardSinks, and returns nurse's resource: the sender of the allocation test and benchmark.
func bindDiscarding(r *router.Router) *router.Resource {
	from := router.NewResource(jid.MustParse("nurse@example.org/home"), &discardSink{}, &routertest.Closer{})
	r.Bind(context.Background(), from)
	to := router.NewResource(jid.MustParse("juliet@example.org/balcony"), &discardSink{}, &routertest.Closer{})
	r.Bind(context.Background(), to)
	to.SetPresence(true, 0, nil)
	return from
}

func TestRouteMessageAllocatesNothing(t *testing.T) {
	for _, bl := range []struct {
		name string
		b    router.Blocker
	}{
		{"no blocker", nil},
		{"nobody blocks", blocker{}},
		{"both block others", blocker{"nurse@example.org": {"tybalt@example.org": true}, "juliet@example.org": {"romeo@example.org": true}}},
	} {
		r, _ := newRouter()
		if bl.b != nil {
			r.HandleBlocking(bl.b)
		}
		from := bindDiscarding(r)
		for _, s := range []string{
			`<message to='juliet@example.org/balcony' type='chat' id='x'><body>Wherefore art thou?</body></message>`,
			`<message to='juliet@example.org' type='chat' id='x'><body>Wherefore art thou?</body></message>`,
		} {
			e := routertest.Parse(t, s)
			ctx := context.Background()
			r.Route(ctx, from, e)
			if n := testing.AllocsPerRun(1000, func() { r.Route(ctx, from, e) }); n != 0 {
				t.Errorf("%s, %s: %v allocations per message, want 0", bl.name, s, n)
			}
		}
	}
}

func BenchmarkRouteMessage(b *testing.B) {
	for _, tc := range []struct{ name, to string }{{"to=full", "juliet@example.org/balcony"}, {"to=bare", "juliet@example.org"}} {
		for _, blocking := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/blocking=%v", tc.name, blocking), func(b *testing.B) {
				r, _ := newRouter()
				if blocking {
					// Wired as in the node, with lists that do not concern these two.
					r.HandleBlocking(blocker{"nurse@example.org": {"tybalt@example.org": true}, "juliet@example.org": {"romeo@example.org": true}})
				}
				from := bindDiscarding(r)
				e := routertest.Parse(b, "<message to='"+tc.to+"' type='chat' id='x'><body>Wherefore art thou?</body></message>")
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(int64(len(e.Raw())))
				for b.Loop() {
					r.Route(ctx, from, e)
				}
			})
		}
	}
}
