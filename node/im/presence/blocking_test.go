package presence

import (
	"context"
	"strings"
	"testing"
)

// blocker is a Blocker over a table: owner → blocked JIDs, matched exactly or by the contact's bare
// JID. The matching rules of XEP-0191 are node/im/blocking's; this checks what presence does with
// the answer.
type blocker map[string]map[string]bool

func (b blocker) Blocks(_ context.Context, owner, contact []byte) bool {
	l := b[string(owner)]
	c := string(contact)
	return l[c] || l[bareOf(c)]
}

// block makes owner block contact from now on.
func (b blocker) block(owner, contact string) {
	if b[owner] == nil {
		b[owner] = map[string]bool{}
	}
	b[owner][contact] = true
}

func matchOnly(j string) func(string) bool {
	return func(c string) bool { return bareOf(c) == j }
}

// TestBlockedPresence checks XEP-0191 §3.3 on presence: nothing passes between an account and
// those it blocks, in either direction, and the blocker's own attempts get not-acceptable.
func TestBlockedPresence(t *testing.T) {
	e := newEnv(t)
	bl := blocker{}
	e.h.blocker = bl
	e.user("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com")
	e.rosterOf("alice@example.com", "bob@example.com", "both", "carol@example.com", "both")
	e.rosterOf("bob@example.com", "alice@example.com", "both")
	e.rosterOf("carol@example.com", "alice@example.com", "both")
	bl.block("alice@example.com", "bob@example.com")
	bl.block("alice@example.com", "dave@example.com")

	bob := e.online("bob@example.com/1")
	carol := e.online("carol@example.com/1")
	dave := e.online("dave@example.com/1")
	alice := e.bind("alice@example.com/x")
	alice.send("<presence/>")
	// Probes: carol's presence, not bob's (inbound from a blocked contact is dropped).
	alice.expect("presence carol@example.com/1>alice@example.com/x", "presence alice@example.com/x>alice@example.com")
	bob.expect() // outbound to a blocked contact is not sent
	carol.expect("presence alice@example.com/x>carol@example.com")

	// Directed presence: to a blocked entity is refused, from one is dropped without an answer.
	alice.send("<presence to='bob@example.com'/>")
	alice.expect("error/not-acceptable")
	bob.expect()
	bob.send("<presence to='alice@example.com/x'/>")
	bob.expect()
	alice.expect()

	// Subscription requests from a blocked entity are dropped and leave no trace; the blocker's own
	// request is refused.
	dave.send("<presence type='subscribe' to='alice@example.com'/>")
	dave.expect()
	alice.expect()
	if it := e.item("alice@example.com", "dave@example.com"); it.Subscription != "absent" {
		t.Errorf("a blocked request changed alice's roster: %+v", it)
	}
	alice.send("<presence type='subscribe' to='dave@example.com'/>")
	alice.expect("error/not-acceptable")
	dave.expect()

	// The recipient's list counts too: carol blocks alice, and alice's broadcasts stop reaching her.
	bl.block("carol@example.com", "alice@example.com")
	alice.send("<presence><show>away</show></presence>")
	alice.expect("presence alice@example.com/x>alice@example.com")
	carol.expect()
	alice.send("<presence type='unavailable'/>")
	bob.expect()
	carol.expect()
}

// TestBlockedErrorReply checks that the refusal carries <blocked xmlns='urn:xmpp:blocking:errors'/>.
func TestBlockedErrorReply(t *testing.T) {
	e := newEnv(t)
	bl := blocker{}
	e.h.blocker = bl
	e.user("alice@example.com", "bob@example.com")
	bl.block("alice@example.com", "bob@example.com")
	alice := e.online("alice@example.com/x")
	alice.send("<presence to='bob@example.com/1'/>")
	got := alice.Sink.TakeString()
	if !strings.Contains(got, "<not-acceptable ") || !strings.Contains(got, "<blocked xmlns='urn:xmpp:blocking:errors'/>") {
		t.Errorf("got %s, want not-acceptable with <blocked/>", got)
	}
}

// TestHideAndShow checks the presence the blocking command asks for: unavailable presence to the newly
// blocked subscribers and directed-presence recipients, current presence again on unblock, to
// subscribers only.
func TestHideAndShow(t *testing.T) {
	e := newEnv(t)
	bl := blocker{}
	e.h.blocker = bl
	e.user("alice@example.com", "bob@example.com", "carol@example.com", "frank@example.com")
	e.rosterOf("alice@example.com", "bob@example.com", "both", "carol@example.com", "both")
	e.rosterOf("bob@example.com", "alice@example.com", "both")
	e.rosterOf("carol@example.com", "alice@example.com", "both")
	bob := e.online("bob@example.com/1")
	carol := e.online("carol@example.com/1")
	frank := e.online("frank@example.com/1")
	alice := e.online("alice@example.com/x")
	alice2 := e.online("alice@example.com/y")
	alice.send("<presence to='frank@example.com/1'/>")
	bob.Sink.Take()
	carol.Sink.Take()
	frank.Sink.Take()
	alice.Sink.Take()

	bl.block("alice@example.com", "bob@example.com")
	e.h.Hide(e.ctx, "alice@example.com", matchOnly("bob@example.com"))
	bob.expect("presence/unavailable alice@example.com/x>bob@example.com", "presence/unavailable alice@example.com/y>bob@example.com")
	carol.expect()
	alice.expect()
	alice2.expect()

	bl.block("alice@example.com", "frank@example.com")
	e.h.Hide(e.ctx, "alice@example.com", matchOnly("frank@example.com"))
	frank.expect("presence/unavailable alice@example.com/x>frank@example.com/1")
	// Forgotten as a directed recipient: going unavailable later tells frank nothing more.
	alice.send("<presence type='unavailable'/>")
	frank.expect()
	carol.expect("presence/unavailable alice@example.com/x>carol@example.com")
	alice.send("<presence/>")
	carol.Sink.Take()
	bob.expect()

	delete(bl["alice@example.com"], "bob@example.com")
	delete(bl["alice@example.com"], "frank@example.com")
	e.h.Show(e.ctx, "alice@example.com", func(c string) bool { return c == "bob@example.com" || c == "frank@example.com" })
	bob.expect("presence alice@example.com/x>bob@example.com", "presence alice@example.com/y>bob@example.com")
	frank.expect() // not a subscriber: directed presence is the user's to send again
	carol.expect()

	// A contact who blocks the user in turn gets nothing on unblock.
	bl.block("bob@example.com", "alice@example.com")
	e.h.Show(e.ctx, "alice@example.com", matchOnly("bob@example.com"))
	bob.expect()
}
