package presence

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
)

// pushLine is the summary of the roster push for it.
func pushLine(it storage.RosterItem) string {
	s := "push " + it.Contact + " " + it.Subscription
	if it.PendingOut {
		s += " ask"
	}
	if it.PreApproved {
		s += " approved"
	}
	return s
}

func pushes(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "push ") {
			out = append(out, l)
		}
	}
	return out
}

// stateOf names the stored state; an absent item counts as "None".
func stateOf(t *testing.T, it storage.RosterItem) string {
	if it.Subscription == "absent" {
		return "None"
	}
	return stateName(t, it)
}

// TestOutboundEndToEnd sends every row of RFC 6121 Appendix A.2 through the router: the user's state
// after it, the roster push it causes, and, when the stanza is routed, the contact's state change
// and delivery as Appendix A.3 gives them for the contact's (consistent) state.
func TestOutboundEndToEnd(t *testing.T) {
	e := newEnv(t)
	n := 0
	for typ, rows := range outboundTables {
		for _, r := range rows {
			n++
			u, c := fmt.Sprintf("u%d@%s", n, domain), fmt.Sprintf("c%d@%s", n, domain)
			t.Run(typ.String()+"/"+r.before, func(t *testing.T) {
				e.t = t
				e.user(u, c)
				before := states[r.before]
				before.Contact, before.Name = c, "contact"
				if before.PendingIn {
					before.PendingInStanza = synth(Subscribe, c, u)
				}
				e.put(u, before)
				cBefore := mirror(before, u)
				e.put(c, cBefore)
				uc, cc := e.online(u+"/a"), e.online(c+"/b")

				uc.send(fmt.Sprintf("<presence type='%s' to='%s'/>", typ, c))

				after := e.item(u, c)
				want := r.after
				if want == "" {
					want = r.before
				}
				if got := stateName(t, after); got != want {
					t.Errorf("user state %q, want %q", got, want)
				}
				var wantPush []string
				if pushLine(after) != pushLine(before) {
					wantPush = []string{pushLine(after)} // a state change the client can see, or a pre-approval
				}
				if got := pushes(uc.got()); !slices.Equal(got, wantPush) {
					t.Errorf("user pushes %q, want %q", got, wantPush)
				}
				// The contact's side, from the inbound table.
				cState := stateName(t, cBefore)
				var in irow
				for _, ir := range inboundTables[typ] {
					if ir.before == cState {
						in = ir
					}
				}
				wantC := cState
				if r.yes && in.after != "" {
					wantC = in.after
				}
				if got := stateOf(t, e.item(c, u)); got != wantC {
					t.Errorf("contact state %q, want %q (routed: %v)", got, wantC, r.yes)
				}
				delivered := slices.Contains(cc.got(), fmt.Sprintf("presence/%s %s>%s", typ, u, c))
				if delivered != (r.yes && in.yes) {
					t.Errorf("contact got the %s: %v, want %v", typ, delivered, r.yes && in.yes)
				}
			})
		}
	}
}

// TestInboundEndToEnd runs every row of RFC 6121 Appendix A.3 on a stored roster: the state after
// it, the roster push (items are named, so always visible), and delivery to the available resource.
func TestInboundEndToEnd(t *testing.T) {
	e := newEnv(t)
	n := 0
	for typ, rows := range inboundTables {
		for _, r := range rows {
			n++
			u, c := fmt.Sprintf("u%d@%s", n, domain), fmt.Sprintf("c%d@%s", n, domain)
			t.Run(typ.String()+"/"+r.before, func(t *testing.T) {
				e.t = t
				e.user(u, c)
				before := states[r.before]
				before.Contact, before.Name = c, "contact"
				e.put(u, before)
				e.put(c, mirror(before, u))
				uc := e.online(u + "/a")
				e.online(c + "/b")

				if err := e.h.Inbound(e.ctx, u, c, typ, synth(typ, c, u)); err != nil {
					t.Fatal(err)
				}
				after := e.item(u, c)
				want := r.after
				if want == "" {
					want = r.before
				}
				if got := stateName(t, after); got != want {
					t.Errorf("state %q, want %q", got, want)
				}
				got := uc.got()
				var wantPush []string
				if pushLine(after) != pushLine(before) {
					wantPush = []string{pushLine(after)} // pending-in alone is not shown
				}
				if p := pushes(got); !slices.Equal(p, wantPush) {
					t.Errorf("pushes %q, want %q", p, wantPush)
				}
				if d := slices.Contains(got, fmt.Sprintf("presence/%s %s>%s", typ, c, u)); d != r.yes {
					t.Errorf("delivered: %v, want %v (got %q)", d, r.yes, got)
				}
				if typ == Subscribe && r.yes && string(after.PendingInStanza) != string(synth(typ, c, u)) {
					t.Errorf("stored request %q", after.PendingInStanza)
				}
			})
		}
	}
}

// TestSubscriptionFlow is the exchange of RFC 6121 §3.1 between two online users, up to a mutual
// subscription, with every push and delivery.
func TestSubscriptionFlow(t *testing.T) {
	e := newEnv(t)
	e.user("romeo@example.com", "juliet@example.com")
	romeo := e.online("romeo@example.com/orchard")
	juliet := e.online("juliet@example.com/balcony")

	romeo.send("<iq type='set' id='a1'><query xmlns='jabber:iq:roster'><item jid='juliet@example.com' name='Juliet'><group>Friends</group></item></query></iq>")
	romeo.expect("push juliet@example.com none", "iq/result a1")

	romeo.send("<presence type='subscribe' to='juliet@example.com'><status>it is I</status></presence>")
	romeo.expect("push juliet@example.com none ask")
	// Juliet's server delivers the request but pushes nothing while it is pending (§3.1.3).
	juliet.expect("presence/subscribe romeo@example.com>juliet@example.com")
	if it := e.item("juliet@example.com", "romeo@example.com"); !it.PendingIn || !strings.Contains(string(it.PendingInStanza), "it is I") {
		t.Fatalf("juliet's pending request not stored with its payload: %+v", it)
	}

	juliet.send("<presence type='subscribed' to='romeo@example.com'/>")
	juliet.expect("push romeo@example.com from")
	romeo.expect(
		"push juliet@example.com to",
		"presence/subscribed juliet@example.com>romeo@example.com",
		"presence juliet@example.com/balcony>romeo@example.com", // §3.1.5: current presence at once
	)

	juliet.send("<presence type='subscribe' to='romeo@example.com'/>")
	juliet.expect("push romeo@example.com from ask")
	romeo.expect("presence/subscribe juliet@example.com>romeo@example.com")
	romeo.send("<presence type='subscribed' to='juliet@example.com'/>")
	romeo.expect("push juliet@example.com both")
	juliet.expect(
		"push romeo@example.com both",
		"presence/subscribed romeo@example.com>juliet@example.com",
		"presence romeo@example.com/orchard>juliet@example.com",
	)

	// Broadcasts now go both ways, to the sender's own resources too.
	romeo.send("<presence><show>away</show></presence>")
	romeo.expect("presence romeo@example.com/orchard>romeo@example.com")
	juliet.expect("presence romeo@example.com/orchard>juliet@example.com")

	// Romeo unsubscribes (§3.3): Juliet loses a subscriber, so her server sends him her unavailable
	// presence.
	romeo.send("<presence type='unsubscribe' to='juliet@example.com'/>")
	romeo.expect(
		"push juliet@example.com from",
		"presence/unavailable juliet@example.com/balcony>romeo@example.com",
	)
	juliet.expect("push romeo@example.com to", "presence/unsubscribe romeo@example.com>juliet@example.com")

	// Romeo cancels Juliet's subscription (§3.2): she gets unsubscribed and his unavailable presence.
	romeo.send("<presence type='unsubscribed' to='juliet@example.com'/>")
	romeo.expect("push juliet@example.com none")
	juliet.expect(
		"push romeo@example.com none",
		"presence/unsubscribed romeo@example.com>juliet@example.com",
		"presence/unavailable romeo@example.com/orchard>juliet@example.com",
	)
	// Nobody is subscribed any more: a broadcast reaches only Romeo's own resources.
	romeo.send("<presence/>")
	romeo.expect("presence romeo@example.com/orchard>romeo@example.com")
	juliet.expect()
}

// FuzzWithTo checks that adding 'to' to a stored presence keeps it well-formed and gives it exactly
// that address, whatever the presence and the address hold.
func FuzzWithTo(f *testing.F) {
	f.Add("<presence from='a@example.com/r'><show>away</show></presence>", "b@example.com")
	f.Add("<presence/>", "b@example.com/x'y")
	f.Add("<presence\tfrom='a'/>", "<&>")
	f.Fuzz(func(t *testing.T, stanza, to string) {
		el, ok := routertest.ParseOne([]byte(stanza))
		if !ok || el.HasAttr("to") || !utf8.ValidString(to) || strings.ContainsFunc(to, func(r rune) bool { return r < 0x20 }) {
			return
		}
		out := withTo(el.Raw(), to)
		got, ok := routertest.ParseOne(out)
		if !ok {
			t.Fatalf("withTo(%q, %q) = %q: not well-formed", stanza, to, out)
		}
		if string(got.Attr("to")) != to || got.NumAttrs() != el.NumAttrs()+1 || string(got.Name()) != string(el.Name()) {
			t.Fatalf("withTo(%q, %q) = %q", stanza, to, out)
		}
	})
}
