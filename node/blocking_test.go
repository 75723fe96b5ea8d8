package node

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/starling-xmpp/starling/node/internal/xmpptest"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// marks numbers the ping round trips that quiet uses as barriers.
var marks atomic.Int64

// quiet checks that c has been sent nothing that bad matches, up to now: it pings the server and
// reads everything up to the answer. The node writes a session's stanzas in order, so anything routed
// to c before the ping came back would have arrived first.
func quiet(t *testing.T, c *xmpptest.Client, bad func(e *xml.Element) bool) {
	t.Helper()
	id := fmt.Sprintf("mark%d", marks.Add(1))
	c.Send("<iq type='get' id='%s' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>", id)
	for {
		e := c.Next()
		if string(e.Attr("id")) == id {
			return
		}
		if bad(e) {
			t.Fatalf("%s was sent %s", c.JID, e)
		}
	}
}

// from matches stanzas of a kind (message, presence, iq) from an account's resources.
func from(kind, bare string) func(e *xml.Element) bool {
	return func(e *xml.Element) bool {
		return string(e.Name()) == kind && strings.HasPrefix(string(e.Attr("from")), bare)
	}
}

// presenceFrom matches presence of type typ ("" for available) from the full JID full.
func presenceFrom(full, typ string) func(e *xml.Element) bool {
	return func(e *xml.Element) bool {
		return string(e.Name()) == "presence" && string(e.Attr("from")) == full && string(e.Attr("type")) == typ
	}
}

func condition(e *xml.Element) string {
	if string(e.Attr("type")) != "error" {
		return ""
	}
	er := e.Child("", "error")
	if er == nil {
		return "?"
	}
	for c := er.FirstChild(); c != nil; c = c.NextSibling() {
		if string(c.Space()) == nsStanzas {
			return string(c.Name())
		}
	}
	return "?"
}

func isBlockedError(e *xml.Element) bool {
	return condition(e) == "not-acceptable" && e.Child("", "error").Child("urn:xmpp:blocking:errors", "blocked") != nil
}

// TestBlockingCommand runs XEP-0191 end to end: two subscribed users, one blocks the other, nothing
// passes either way (messages, iqs, presence), the list survives a reconnect, and after unblocking
// everything flows again.
func TestBlockingCommand(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a1 := tn.login(t, "alice", "phone")
	a2 := tn.login(t, "alice", "laptop")
	b := tn.login(t, "bob", "pc")
	for _, c := range []*xmpptest.Client{a1, a2, b} {
		c.SendRaw("<presence/>")
		c.Expect("own presence", presenceFrom(c.JID, ""))
	}

	// Subscribed both ways, each step waiting for the other side to see the one before.
	a1.SendRaw("<presence type='subscribe' to='bob@example.test'/>")
	b.Expect("subscription request", presenceFrom("alice@example.test", "subscribe"))
	b.SendRaw("<presence type='subscribed' to='alice@example.test'/>")
	a1.Expect("bob's presence", presenceFrom(b.JID, ""))
	b.SendRaw("<presence type='subscribe' to='alice@example.test'/>")
	a1.Expect("subscription request", presenceFrom("bob@example.test", "subscribe"))
	a1.SendRaw("<presence type='subscribed' to='bob@example.test'/>")
	b.Expect("alice's phone", presenceFrom(a1.JID, ""))
	b.Expect("alice's laptop", presenceFrom(a2.JID, ""))

	// Service discovery advertises the namespace (XEP-0191 §3.1).
	a1.SendRaw("<iq type='get' id='disco' to='example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	advertised := false
	for f := a1.ExpectID("disco").Child("http://jabber.org/protocol/disco#info", "query").FirstChild(); f != nil; f = f.NextSibling() {
		advertised = advertised || string(f.Name()) == "feature" && string(f.Attr("var")) == "urn:xmpp:blocking"
	}
	if !advertised {
		t.Error("disco#info does not list urn:xmpp:blocking")
	}

	a2.SendRaw("<iq type='get' id='bl1'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	if r := a2.ExpectID("bl1"); string(r.Attr("type")) != "result" || r.Child("urn:xmpp:blocking", "blocklist").FirstChild() != nil {
		t.Fatalf("first blocklist: %s", r)
	}
	a1.SendRaw("<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></block></iq>")
	if r := a1.ExpectID("blk"); string(r.Attr("type")) != "result" {
		t.Fatalf("block: %s", r)
	}
	push := a2.Expect("block push", func(e *xml.Element) bool { return e.Child("urn:xmpp:blocking", "block") != nil })
	if it := push.Child("urn:xmpp:blocking", "block").FirstChild(); it == nil || string(it.Attr("jid")) != "bob@example.test" {
		t.Fatalf("push %s", push)
	}
	// XEP-0191 §3.3: the blocked contact sees alice go offline, from each resource.
	b.Expect("phone unavailable", presenceFrom(a1.JID, "unavailable"))
	b.Expect("laptop unavailable", presenceFrom(a2.JID, "unavailable"))

	// From the blocked contact: refused as if nobody were there.
	for _, s := range []string{
		"<message to='alice@example.test' type='chat' id='m1'><body>hello?</body></message>",
		"<message to='alice@example.test/phone' type='chat' id='m2'><body>hello?</body></message>",
		"<iq type='get' id='m3' to='alice@example.test/phone'><query xmlns='jabber:iq:version'/></iq>",
		"<iq type='get' id='m4' to='alice@example.test'><vCard xmlns='vcard-temp'/></iq>",
	} {
		b.SendRaw(s)
		id := s[strings.Index(s, "id='")+4:]
		id = id[:strings.IndexByte(id, '\'')]
		if r := b.ExpectID(id); condition(r) != "service-unavailable" {
			t.Errorf("%s: got %s, want service-unavailable", s, r)
		}
	}
	b.SendRaw("<presence><show>away</show></presence>")
	b.SendRaw("<presence to='alice@example.test/phone'><show>chat</show></presence>")
	// To the blocked contact: not-acceptable with <blocked/>.
	for _, s := range []string{
		"<message to='bob@example.test' type='chat' id='n1'><body>hi</body></message>",
		"<iq type='get' id='n2' to='bob@example.test/pc'><query xmlns='jabber:iq:version'/></iq>",
		"<presence to='bob@example.test/pc' id='n3'/>",
	} {
		a1.SendRaw(s)
		id := s[strings.Index(s, "id='")+4:]
		id = id[:strings.IndexByte(id, '\'')]
		if r := a1.ExpectID(id); !isBlockedError(r) {
			t.Errorf("%s: got %s, want not-acceptable with <blocked/>", s, r)
		}
	}
	a1.SendRaw("<presence><show>dnd</show></presence>")
	quiet(t, a1, from("message", "bob@"))
	quiet(t, a1, from("presence", "bob@"))
	quiet(t, a2, from("presence", "bob@"))
	quiet(t, b, func(e *xml.Element) bool {
		return from("message", "alice@")(e) || from("presence", "alice@")(e) || string(e.Name()) == "iq" && from("iq", "alice@")(e)
	})

	// The list survives a reconnect.
	a2.Close()
	a2 = tn.login(t, "alice", "laptop")
	a2.SendRaw("<iq type='get' id='bl2'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	r := a2.ExpectID("bl2")
	if it := r.Child("urn:xmpp:blocking", "blocklist").FirstChild(); it == nil || string(it.Attr("jid")) != "bob@example.test" {
		t.Fatalf("blocklist after reconnect: %s", r)
	}

	// Unblock everyone: a push, alice's current presence to bob (he is subscribed), and traffic again.
	a1.SendRaw("<iq type='set' id='unb'><unblock xmlns='urn:xmpp:blocking'/></iq>")
	if r := a1.ExpectID("unb"); string(r.Attr("type")) != "result" {
		t.Fatalf("unblock: %s", r)
	}
	push = a2.Expect("unblock push", func(e *xml.Element) bool { return e.Child("urn:xmpp:blocking", "unblock") != nil })
	if push.Child("urn:xmpp:blocking", "unblock").FirstChild() != nil {
		t.Fatalf("unblock-all push names items: %s", push)
	}
	p := b.Expect("alice's presence again", presenceFrom(a1.JID, ""))
	if string(p.Child("", "show").Text()) != "dnd" {
		t.Errorf("presence after unblock %s, want alice's current dnd", p)
	}
	b.Send("<message to='%s' type='chat' id='ok1'><body>there you are</body></message>", a1.JID)
	a1.Expect("bob's message", from("message", "bob@"))
	a1.SendRaw("<message to='bob@example.test' type='chat' id='ok2'><body>yes</body></message>")
	b.Expect("alice's message", from("message", "alice@"))
	b.SendRaw("<presence><show>chat</show></presence>")
	a1.Expect("bob's presence", presenceFrom(b.JID, ""))
}

// TestBlockedSenderOfflineMessages: a message stored while the account was offline is not delivered
// once its sender is blocked.
func TestBlockedSenderOfflineMessages(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	tn.addUser(t, "carol@example.test", "secret-carol")
	b := tn.login(t, "bob", "desk")
	c := tn.login(t, "carol", "desk")
	b.SendRaw("<message to='alice@example.test' type='chat' id='from-bob'><body>x</body></message>")
	c.SendRaw("<message to='alice@example.test' type='chat' id='from-carol'><body>y</body></message>")
	// Both are stored (ping round trips show the router has handled them).
	for _, cl := range []*xmpptest.Client{b, c} {
		cl.SendRaw("<iq type='get' id='sync' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>")
		cl.ExpectID("sync")
	}
	a := tn.login(t, "alice", "phone")
	a.SendRaw("<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></block></iq>")
	a.ExpectID("blk")
	a.SendRaw("<presence/>")
	m := a.Expect("carol's stored message", func(e *xml.Element) bool { return string(e.Name()) == "message" })
	if id := string(m.Attr("id")); id != "from-carol" {
		t.Fatalf("delivered %s, want only carol's message", id)
	}
	a.SendRaw("<iq type='get' id='after' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	for {
		e := a.Next()
		if string(e.Attr("id")) == "after" {
			break
		}
		if string(e.Name()) == "message" {
			t.Fatalf("delivered %s from a blocked sender", e)
		}
	}
}

// TestBlocklistGoesWithTheAccount: the node caches blocklists; deleting an account must drop its
// cached list, or an account created later under the same name would start out blocking people.
func TestBlocklistGoesWithTheAccount(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a := tn.login(t, "alice", "phone")
	a.SendRaw("<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></block></iq>")
	if r := a.ExpectID("blk"); string(r.Attr("type")) != "result" {
		t.Fatalf("block: %s", r)
	}
	b := tn.login(t, "bob", "pc")
	b.SendRaw("<message to='alice@example.test/phone' type='chat' id='m1'><body>hello?</body></message>")
	if e := b.ExpectID("m1"); !isBlockedError(e) && condition(e) != "service-unavailable" {
		t.Fatalf("a blocked message was answered %s", e)
	}
	a.Close()

	if err := tn.Accounts().Delete(context.Background(), jid.MustParse("alice@example.test")); err != nil {
		t.Fatal(err)
	}
	tn.addUser(t, "alice@example.test", "secret-alice")
	a2 := tn.login(t, "alice", "tablet")
	a2.SendRaw("<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	if r := a2.ExpectID("bl"); string(r.Attr("type")) != "result" || r.Child("urn:xmpp:blocking", "blocklist").FirstChild() != nil {
		t.Fatalf("the new account's blocklist: %s", r)
	}
	b.SendRaw("<message to='alice@example.test/tablet' type='chat' id='m2'><body>hello again</body></message>")
	if m := a2.Expect("bob's message", from("message", "bob@example.test")); string(m.Attr("id")) != "m2" {
		t.Fatalf("got %s", m)
	}
}
