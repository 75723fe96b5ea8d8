package presence

import (
	"slices"
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
)

// rosterOf stores items: each entry is contact, subscription.
func (e *env) rosterOf(owner string, entries ...string) {
	e.t.Helper()
	for i := 0; i < len(entries); i += 2 {
		e.put(owner, storage.RosterItem{Contact: entries[i], Subscription: entries[i+1]})
	}
}

// TestInitialPresence checks §4.2 and §4.3: probes answered from the contacts' available resources,
// the broadcast to subscribers and own resources, the other resources' presence, stored requests,
// and the offline hook.
func TestInitialPresence(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "eve@example.com")
	e.rosterOf("alice@example.com", "bob@example.com", "both", "carol@example.com", "to", "dave@example.com", "from")
	e.rosterOf("bob@example.com", "alice@example.com", "both")
	e.rosterOf("carol@example.com", "alice@example.com", "from")
	e.rosterOf("dave@example.com", "alice@example.com", "to")
	e.put("alice@example.com", storage.RosterItem{Contact: "eve@example.com", Subscription: "none", PendingIn: true,
		PendingInStanza: synth(Subscribe, "eve@example.com", "alice@example.com")})

	bob := e.online("bob@example.com/1")
	carol := e.online("carol@example.com/1")
	dave := e.online("dave@example.com/1")
	other := e.online("alice@example.com/other")
	bob.Sink.Take()
	dave.Sink.Take()
	e.offline.calls = nil

	alice := e.bind("alice@example.com/new")
	alice.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
	alice.expect("iq/result r1")
	alice.send("<presence><priority>5</priority></presence>")
	alice.expect(
		"presence bob@example.com/1>alice@example.com/new",   // probe of a 'both' contact
		"presence carol@example.com/1>alice@example.com/new", // probe of a 'to' contact
		"presence alice@example.com/new>alice@example.com",   // its own presence, reflected
		"presence alice@example.com/other>alice@example.com/new",
		"presence/subscribe eve@example.com>alice@example.com", // the stored request (§3.1.3)
	)
	bob.expect("presence alice@example.com/new>bob@example.com")
	dave.expect("presence alice@example.com/new>dave@example.com")
	carol.expect()
	other.expect("presence alice@example.com/new>alice@example.com")
	if !slices.Equal(e.offline.calls, []string{"alice@example.com/new"}) {
		t.Errorf("offline hook calls %q", e.offline.calls)
	}

	// Subsequent presence (§4.4): a broadcast, no probes, no second offline delivery.
	alice.send("<presence><show>dnd</show></presence>")
	alice.expect("presence alice@example.com/new>alice@example.com")
	bob.expect("presence alice@example.com/new>bob@example.com")
	dave.expect("presence alice@example.com/new>dave@example.com")
	other.expect("presence alice@example.com/new>alice@example.com")
	carol.expect()
	if len(e.offline.calls) != 1 {
		t.Errorf("offline hook called again: %q", e.offline.calls)
	}

	// Unavailable (§4.5): subscribers and the other resources, not the sender.
	alice.send("<presence type='unavailable'/>")
	alice.expect()
	bob.expect("presence/unavailable alice@example.com/new>bob@example.com")
	dave.expect("presence/unavailable alice@example.com/new>dave@example.com")
	other.expect("presence/unavailable alice@example.com/new>alice@example.com")
	if alice.Resource.Available() || alice.Resource.LastPresence() != nil {
		t.Error("the resource is still available")
	}

	// A session that ends without unavailable presence (§4.5.2).
	e.router.Unbind(e.ctx, other.Resource)
	bob.expect("presence/unavailable alice@example.com/other>bob@example.com")
	dave.expect("presence/unavailable alice@example.com/other>dave@example.com")
	alice.expect()

	// Available again: initial presence once more, probes included.
	alice.send("<presence/>")
	got := alice.got()
	if !slices.Contains(got, "presence bob@example.com/1>alice@example.com/new") {
		t.Errorf("no probe answers after coming back: %q", got)
	}
}

// TestOfflineHookPriority checks that offline messages wait for a non-negative priority (XEP-0160 §4).
func TestOfflineHookPriority(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com")
	alice := e.bind("alice@example.com/neg")
	alice.send("<presence><priority>-1</priority></presence>")
	if len(e.offline.calls) != 0 {
		t.Fatalf("offline delivered at negative priority: %q", e.offline.calls)
	}
	alice.send("<presence><priority>0</priority></presence>")
	alice.send("<presence><priority>3</priority></presence>")
	if !slices.Equal(e.offline.calls, []string{"alice@example.com/neg"}) {
		t.Errorf("offline hook calls %q, want one", e.offline.calls)
	}

	// A delivery cut short by its budget goes on at the next available presence, until done.
	e.offline.calls, e.offline.more = nil, 2
	bob := e.bind("alice@example.com/bob")
	for range 4 {
		bob.send("<presence/>")
	}
	if want := []string{"alice@example.com/bob", "alice@example.com/bob", "alice@example.com/bob"}; !slices.Equal(e.offline.calls, want) {
		t.Errorf("offline hook calls %q, want %q", e.offline.calls, want)
	}
}

// TestDirectedPresence checks §4.6: directed presence is delivered and remembered, so that
// unavailable presence reaches the recipient, unless it is a subscriber or was sent unavailable.
func TestDirectedPresence(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", "bob@example.com", "frank@example.com", "gina@example.com")
	e.rosterOf("alice@example.com", "bob@example.com", "both")
	e.rosterOf("bob@example.com", "alice@example.com", "both")
	bob := e.online("bob@example.com/1")
	frank := e.online("frank@example.com/1")
	frank2 := e.online("frank@example.com/2")
	gina := e.online("gina@example.com/1")
	alice := e.online("alice@example.com/x")
	bob.Sink.Take()
	frank.Sink.Take()

	alice.send("<presence to='frank@example.com'><status>hi</status></presence>")
	frank.expect("presence alice@example.com/x>frank@example.com")
	frank2.expect("presence alice@example.com/x>frank@example.com")
	alice.send("<presence to='gina@example.com/1'/>")
	gina.expect("presence alice@example.com/x>gina@example.com/1")
	alice.send("<presence to='bob@example.com'/>")
	bob.expect("presence alice@example.com/x>bob@example.com")
	// Directed unavailable: gina is forgotten.
	alice.send("<presence type='unavailable' to='gina@example.com/1'/>")
	gina.expect("presence/unavailable alice@example.com/x>gina@example.com/1")

	e.router.Unbind(e.ctx, alice.Resource)
	frank.expect("presence/unavailable alice@example.com/x>frank@example.com")
	frank2.expect("presence/unavailable alice@example.com/x>frank@example.com")
	bob.expect("presence/unavailable alice@example.com/x>bob@example.com") // once, as a subscriber
	gina.expect()
}

// TestPresenceErrors checks the answers to bad presence stanzas and the ones silently dropped.
func TestPresenceErrors(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", "bob@example.com")
	bob := e.online("bob@example.com/1")
	alice := e.online("alice@example.com/x")
	tests := []struct {
		stanza string
		want   []string
	}{
		{"<presence type='bogus'/>", []string{"error/bad-request"}},
		{"<presence type='probe' to='bob@example.com'/>", nil},
		{"<presence type='subscribe'/>", []string{"error/bad-request"}},
		{"<presence type='subscribe' to='bob@remote.example.org'/>", []string{"error/remote-server-not-found"}},
		{"<presence type='subscribed' to='bob@remote.example.org'/>", []string{"error/remote-server-not-found"}},
		{"<presence to='bob@remote.example.org'/>", nil},
		{"<presence type='subscribe' to='a@b@example.com'/>", []string{"error/jid-malformed"}},
		{"<presence to='a@b@example.com'/>", []string{"error/jid-malformed"}},
		{"<presence><priority>500</priority></presence>", []string{"error/bad-request"}},
		{"<presence><priority>high</priority></presence>", []string{"error/bad-request"}},
		{"<presence type='subscribe' to='example.com'/>", []string{"error/service-unavailable"}},
		{"<presence type='subscribe' to='alice@example.com'/>", nil},
		{"<presence type='error' to='bob@remote.example.org'/>", nil},
	}
	for _, tc := range tests {
		t.Run(tc.stanza, func(t *testing.T) {
			e.t = t
			alice.send(tc.stanza)
			alice.expect(tc.want...)
			bob.expect()
		})
	}
	e.t = t
	// A presence error to a local user is delivered.
	alice.send("<presence type='error' to='bob@example.com/1'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>")
	bob.expect("error/service-unavailable")
	if it := e.item("alice@example.com", "alice@example.com"); it.Subscription != "absent" {
		t.Errorf("a self-subscription created an item: %+v", it)
	}
}

// TestStoredRequest checks that a request to an offline user waits for each new resource and stops
// once it is answered (§3.1.3).
func TestStoredRequest(t *testing.T) {
	e := newEnv(t)
	e.user("romeo@example.com", "juliet@example.com")
	romeo := e.online("romeo@example.com/orchard")
	romeo.send("<presence type='subscribe' to='juliet@example.com'/>")
	romeo.expect("push juliet@example.com none ask")

	req := "presence/subscribe romeo@example.com>juliet@example.com"
	j1 := e.bind("juliet@example.com/1")
	j1.send("<presence/>")
	if got := j1.got(); !slices.Contains(got, req) {
		t.Errorf("first resource did not get the request: %q", got)
	}
	j2 := e.bind("juliet@example.com/2")
	j2.send("<presence/>")
	if got := j2.got(); !slices.Contains(got, req) {
		t.Errorf("second resource did not get the request: %q", got)
	}
	j2.send("<presence type='unsubscribed' to='romeo@example.com'/>") // declined
	romeo.expect("push juliet@example.com none", "presence/unsubscribed juliet@example.com>romeo@example.com")
	if it := e.item("juliet@example.com", "romeo@example.com"); it.Subscription != "absent" {
		t.Errorf("a declined request left an item: %+v", it)
	}
	j3 := e.bind("juliet@example.com/3")
	j3.send("<presence/>")
	if got := j3.got(); slices.Contains(got, req) {
		t.Errorf("an answered request was delivered again: %q", got)
	}
}

// TestNoSuchContact checks §8.5.1: a request to an account that does not exist is refused with
// unsubscribed, which clears the pending state.
func TestNoSuchContact(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com")
	alice := e.online("alice@example.com/x")
	alice.send("<presence type='subscribe' to='ghost@example.com'/>")
	alice.expect(
		"push ghost@example.com none ask",
		"push ghost@example.com none",
		"presence/unsubscribed ghost@example.com>alice@example.com",
	)
	alice.send("<presence type='unsubscribe' to='ghost@example.com'/>")
	alice.expect()
}

// TestPreApprovalFlow checks §3.4 end to end: the pre-approved request is answered by the server.
func TestPreApprovalFlow(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", "grace@example.com")
	alice := e.online("alice@example.com/x")
	grace := e.online("grace@example.com/y")
	alice.send("<presence type='subscribed' to='grace@example.com'/>")
	alice.expect("push grace@example.com none approved")
	grace.expect()
	grace.send("<presence type='subscribe' to='alice@example.com'/>")
	alice.expect("push grace@example.com from")
	grace.expect(
		"push alice@example.com none ask",
		"push alice@example.com to",
		"presence/subscribed alice@example.com>grace@example.com",
		"presence alice@example.com/x>grace@example.com",
	)
}

// TestRosterRemove checks §2.5.2: removing a contact with a mutual subscription cancels both
// directions, with the pushes, deliveries and unavailable presence on both sides.
func TestRosterRemove(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", "bob@example.com")
	e.rosterOf("alice@example.com", "bob@example.com", "both")
	e.rosterOf("bob@example.com", "alice@example.com", "both")
	bob := e.online("bob@example.com/1")
	alice := e.online("alice@example.com/x")
	bob.Sink.Take()

	alice.send("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='bob@example.com' subscription='remove'/></query></iq>")
	alice.expect(
		"push bob@example.com remove",
		"iq/result rm",
		"presence/unavailable bob@example.com/1>alice@example.com", // bob lost a subscriber (§3.3.3)
	)
	bob.expect(
		"push alice@example.com to",
		"presence/unsubscribe alice@example.com>bob@example.com",
		"push alice@example.com none",
		"presence/unsubscribed alice@example.com>bob@example.com",
		"presence/unavailable alice@example.com/x>bob@example.com",
	)
	if it := e.item("alice@example.com", "bob@example.com"); it.Subscription != "absent" {
		t.Errorf("alice still has %+v", it)
	}
	if it := e.item("bob@example.com", "alice@example.com"); it.Subscription != "none" || it.PendingIn || it.PendingOut {
		t.Errorf("bob has %+v, want none", it)
	}
}

// TestReplacedSession checks that a session replaced by a new one with the same full JID (RFC 6120
// §7.7.2.2) goes unavailable for its contacts, and that the new one starts afresh.
func TestReplacedSession(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", "bob@example.com")
	e.rosterOf("alice@example.com", "bob@example.com", "both")
	e.rosterOf("bob@example.com", "alice@example.com", "both")
	bob := e.online("bob@example.com/1")
	e.online("alice@example.com/x")
	bob.Sink.Take()

	again := e.online("alice@example.com/x")
	bob.expect(
		"presence/unavailable alice@example.com/x>bob@example.com",
		"presence alice@example.com/x>bob@example.com",
	)
	if !again.Resource.Available() {
		t.Error("the new session is not available")
	}
}
