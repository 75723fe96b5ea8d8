package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/node/config"
	"github.com/starling-xmpp/starling/node/config/tdsl"
	"github.com/starling-xmpp/starling/node/internal/xmpptest"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// testNode is a node on 127.0.0.1 ports chosen by the kernel, with SQLite in a temp dir.
type testNode struct {
	*Node
	plain, direct, http string
	cancel              context.CancelFunc
	done                chan error
}

func startNode(t *testing.T, edit func(*config.Config)) *testNode {
	t.Helper()
	return startNodeOpts(t, edit, Options{})
}

func startNodeOpts(t *testing.T, edit func(*config.Config), opts Options) *testNode {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database = config.Default().Database
	cfg.Database.URI = "sqlite:starling.db"
	cfg.VirtualHosts = []string{"example.test"}
	cfg.DefaultVirtualHost = "example.test"
	cfg.C2S.Listeners = []config.Listener{
		{Port: 0, Ifc: []string{"127.0.0.1"}, Socket: config.SocketPlain, TLSRequired: true},
		{Port: 0, Ifc: []string{"127.0.0.1"}, Socket: config.SocketTLS, TLSRequired: true},
	}
	cfg.HTTP.Enabled = true
	cfg.HTTP.Listener = config.Listener{Port: 0, Ifc: []string{"127.0.0.1"}}
	if edit != nil {
		edit(cfg)
	}
	var logw io.Writer = io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Version = "test"
	n, err := New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatalf("new node: %v", err)
	}
	tn := &testNode{Node: n, cancel: cancel, done: make(chan error, 1)}
	plain, direct := n.C2SAddrs()
	tn.plain, tn.direct = plain[0].String(), direct[0].String()
	tn.http = n.HTTPAddr().String()
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-tn.done:
			if err != nil {
				t.Errorf("node run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("node did not stop")
		}
	})
	return tn
}

func (tn *testNode) addUser(t *testing.T, bare, password string) {
	t.Helper()
	if err := tn.Accounts().Create(context.Background(), jid.MustParse(bare), password); err != nil {
		t.Fatal(err)
	}
}

func (tn *testNode) login(t *testing.T, user, resource string) *xmpptest.Client {
	t.Helper()
	return xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test", User: user, Password: "secret-" + user, Resource: resource})
}

func TestLoginAndMessage(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")

	a := tn.login(t, "alice", "phone")
	if a.JID != "alice@example.test/phone" {
		t.Fatalf("bound %q", a.JID)
	}
	if a.TLS == nil || a.TLS.Version < 0x0303 {
		t.Fatal("the session is not on TLS")
	}
	b := xmpptest.Dial(t, tn.direct, xmpptest.Options{Domain: "example.test", User: "bob", Password: "secret-bob", DirectTLS: true})
	if !strings.HasPrefix(b.JID, "bob@example.test/") {
		t.Fatalf("bound %q", b.JID)
	}
	b.SendRaw("<presence/>")
	// The recipient is found by its full JID, and the sender's 'from' is stamped whatever it wrote.
	a.Send("<message to='%s' type='chat' id='m1'><body>hi &amp; bye</body></message>", b.JID)
	m := b.Expect("message", func(e *xml.Element) bool { return string(e.Name()) == "message" })
	if string(m.Attr("from")) != "alice@example.test/phone" || string(m.Child("", "body").Text()) != "hi & bye" {
		t.Fatalf("got %s", m)
	}
	// Unknown payload namespace to the server: service-unavailable.
	a.SendRaw("<iq type='get' id='q1' to='example.test'><query xmlns='urn:example:nothing'/></iq>")
	r := a.ExpectID("q1")
	if string(r.Attr("type")) != "error" || r.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "service-unavailable") == nil {
		t.Fatalf("got %s", r)
	}
	// To another domain: no server-to-server here.
	a.SendRaw("<message to='x@elsewhere.test' id='m3'><body>x</body></message>")
	r = a.ExpectID("m3")
	if r.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "remote-server-not-found") == nil {
		t.Fatalf("got %s", r)
	}
}

func TestBadInput(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tests := []struct {
		name string
		send string
		want string // stream error condition
	}{
		{"not well-formed", "<message a='1' a='2'/>", "not-well-formed"},
		{"undeclared prefix", "<x:message/>", "bad-namespace-prefix"},
		{"comment", "<!-- hi -->", "restricted-xml"},
		{"stanza before auth", "<message to='alice@example.test'><body>x</body></message>", "not-authorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test"})
			c.SendRaw(tt.send)
			cond, _ := c.WaitClosed(context.Background())
			if cond != tt.want {
				t.Fatalf("stream error %q, want %q", cond, tt.want)
			}
		})
	}
	t.Run("oversized stanza", func(t *testing.T) {
		c := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test"})
		c.SendRaw("<message><body>" + strings.Repeat("x", 300<<10) + "</body></message>")
		if cond, _ := c.WaitClosed(context.Background()); cond != "policy-violation" {
			t.Fatalf("stream error %q, want policy-violation", cond)
		}
	})
	t.Run("auth before STARTTLS", func(t *testing.T) {
		c := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test", NoTLS: true})
		if c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms") != nil {
			t.Fatal("SASL offered before TLS although TLS is required")
		}
		c.SendRaw("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldC1hbGljZQ==</auth>")
		if cond, _ := c.WaitClosed(context.Background()); cond != "policy-violation" {
			t.Fatalf("stream error %q, want policy-violation", cond)
		}
	})
	t.Run("too many failed logins", func(t *testing.T) {
		c := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test"})
		for i := 0; i < 10; i++ {
			c.SendRaw("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>")
		}
		if cond, _ := c.WaitClosed(context.Background()); cond != "policy-violation" {
			t.Fatalf("stream error %q, want policy-violation", cond)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", User: "alice", Password: "nope"})
		if err == nil || !strings.Contains(err.Error(), "not-authorized") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		c := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test", NoTLS: true})
		_ = c
		c2, err := xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "nowhere.test"})
		if err == nil {
			c2.Close()
			t.Fatal("a stream to an unserved domain was accepted")
		}
	})
}

func TestConnectionsPerIP(t *testing.T) {
	tn := startNode(t, func(c *config.Config) { c.C2S.MaxConnectionsPerIP = 3 })
	var open []*xmpptest.Client
	for i := 0; i < 3; i++ {
		open = append(open, xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test"}))
	}
	if c, err := xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", Timeout: 3 * time.Second}); err == nil {
		c.Close()
		t.Fatal("a fourth connection from one address was served")
	}
	open[0].Close()
	// The slot is freed once the node sees the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", Timeout: time.Second})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection after one closed: %v", err)
		}
	}
}

func TestResourceConflict(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	first := tn.login(t, "alice", "desk")
	second := tn.login(t, "alice", "desk")
	cond, _ := first.WaitClosed(context.Background())
	if cond != "conflict" {
		t.Fatalf("replaced session got %q, want conflict", cond)
	}
	if second.JID != "alice@example.test/desk" {
		t.Fatalf("second bound %q", second.JID)
	}
}

func TestHTTP(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.login(t, "alice", "x")
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/metrics": `starling_c2s_authentications_total{mechanism="SCRAM-SHA-256",outcome="success"} 1`,
	} {
		resp, err := http.Get("http://" + tn.http + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d, body lacks %q:\n%.2000s", path, resp.StatusCode, want, body)
		}
	}
}

func tdslOpts() tdsl.Options { return tdsl.Options{} }

// TestGarbageDoesNotHurtTheNode sends mangled streams, before and after authentication, and checks
// that the node still serves everyone else afterwards.
func TestGarbageDoesNotHurtTheNode(t *testing.T) {
	tn := startNode(t, func(c *config.Config) { c.C2S.MaxAuthAttemptsPerIP = 1000 })
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	bob := tn.login(t, "bob", "b")
	seeds := []string{
		"<message to='bob@example.test/b' type='chat'><body>hi</body></message>",
		"<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
		"<presence><show>away</show><priority>5</priority></presence>",
		"<iq type='set' id='2'><query xmlns='jabber:iq:roster'><item jid='bob@example.test' name='B'><group>g</group></item></query></iq>",
		"<presence to='bob@example.test' type='subscribe'/>",
		"<iq type='set' id='3' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#add-user'/></iq>",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	mangle := func(s string) string {
		b := []byte(s)
		for k := 0; k < 1+rng.IntN(4); k++ {
			i := rng.IntN(len(b))
			switch rng.IntN(4) {
			case 0:
				b[i] = byte(rng.IntN(256))
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte("<>&'\"/\x00"[rng.IntN(7):][:1]), b[i:]...)...)
			case 3:
				b = append(b[:i], append([]byte(s[rng.IntN(len(s)):]), b[i:]...)...)
			}
			if len(b) == 0 {
				b = []byte("<")
			}
		}
		return string(b)
	}
	for round := 0; round < 60; round++ {
		var c *xmpptest.Client
		var err error
		if round%2 == 0 {
			c, err = xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", User: "alice", Password: "secret-alice", Resource: "x", Timeout: 5 * time.Second})
		} else {
			c, err = xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", Timeout: 5 * time.Second})
		}
		if err != nil {
			t.Fatalf("round %d: the node stopped serving: %v", round, err)
		}
		for k := 0; k < 5; k++ {
			c.Conn().SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Conn().Write([]byte(mangle(seeds[rng.IntN(len(seeds))]))); err != nil {
				break
			}
		}
		c.Close()
	}
	// Everyone else is still served.
	a := tn.login(t, "alice", "after")
	a.SendRaw("<message to='bob@example.test/b' type='chat' id='after'><body>still here</body></message>")
	bob.Expect("the message after the garbage", func(e *xml.Element) bool { return string(e.Attr("id")) == "after" })
}

// TestFailedAuthBudgetPerIP: only failures count against an address's budget, so many users behind one
// address log in, and a guesser is refused until the minute ends.
func TestFailedAuthBudgetPerIP(t *testing.T) {
	tn := startNode(t, func(c *config.Config) { c.C2S.MaxAuthAttemptsPerIP = 2 })
	tn.addUser(t, "alice@example.test", "secret-alice")
	for i := 0; i < 5; i++ {
		tn.login(t, "alice", fmt.Sprint("r", i)).Close()
	}
	for i := 0; i < 2; i++ {
		if _, err := xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", User: "alice", Password: "wrong"}); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	_, err := xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", User: "alice", Password: "secret-alice"})
	if err == nil || !strings.Contains(err.Error(), "temporary-auth-failure") {
		t.Fatalf("after the budget was spent: %v", err)
	}
}

func TestResourcesPerAccount(t *testing.T) {
	tn := startNode(t, func(c *config.Config) { c.C2S.MaxResources = 2 })
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.login(t, "alice", "one")
	tn.login(t, "alice", "two")
	_, err := xmpptest.DialErr(tn.plain, xmpptest.Options{Domain: "example.test", User: "alice", Password: "secret-alice", Resource: "three"})
	if err == nil || !strings.Contains(err.Error(), "resource-constraint") {
		t.Fatalf("a third session: %v", err)
	}
	// Replacing an existing resource is not a new session.
	tn.login(t, "alice", "two")
}

// TestSilentClients: a silent bound client is pinged (XEP-0199); one that answers stays, one that does
// not is closed with <connection-timeout/> at the idle timeout.
func TestSilentClients(t *testing.T) {
	tn := startNode(t, func(c *config.Config) {
		c.C2S.PingAfter = 100 * time.Millisecond
		c.C2S.IdleTimeout = 600 * time.Millisecond
	})
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a := tn.login(t, "alice", "r")
	b := tn.login(t, "bob", "r")
	for i := 0; i < 3; i++ {
		ping := a.Expect("a ping", func(e *xml.Element) bool { return e.Child("urn:xmpp:ping", "ping") != nil })
		a.Send("<iq type='result' id='%s' to='example.test'/>", ping.Attr("id"))
	}
	if cond, _ := b.WaitClosed(context.Background()); cond != "connection-timeout" {
		t.Fatalf("a silent client was closed with %q", cond)
	}
	a.SendRaw("<iq type='get' id='alive' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.ExpectID("alive")
}

// TestStreamManagement: XEP-0198 acks both ways, and messages the client never acknowledged are
// stored offline when its connection dies, then delivered to its next session.
func TestStreamManagement(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a := tn.login(t, "alice", "phone")
	if a.Features.Child("urn:xmpp:sm:3", "sm") == nil {
		t.Fatal("stream management is not offered")
	}
	a.SendRaw("<enable xmlns='urn:xmpp:sm:3'/>")
	if e := a.Next(); string(e.Name()) != "enabled" || e.HasAttr("resume") {
		t.Fatalf("enable answered %s", e)
	}
	a.SendRaw("<presence/>")
	a.SendRaw("<iq type='get' id='p1' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.ExpectID("p1")
	a.SendRaw("<r xmlns='urn:xmpp:sm:3'/>")
	ack := a.Expect("an ack", func(e *xml.Element) bool { return string(e.Name()) == "a" })
	if string(ack.Attr("h")) != "2" {
		t.Fatalf("the server says it handled %s stanzas, want 2", ack.Attr("h"))
	}
	b := tn.login(t, "bob", "desk")
	for i := 0; i < 10; i++ {
		b.Send("<message to='alice@example.test/phone' type='chat' id='m%d'><body>n%d</body></message>", i, i)
	}
	// The server asks for an ack after every 8 stanzas; alice acknowledges three (her presence echo,
	// the ping result and m0), and then her link dies.
	a.Expect("an ack request", func(e *xml.Element) bool { return string(e.Name()) == "r" })
	a.SendRaw("<a xmlns='urn:xmpp:sm:3' h='3'/>")
	a.Conn().Close()
	// The unacknowledged messages come back at alice's next session, in order, none lost.
	deadline := time.Now().Add(5 * time.Second)
	for tn.Router().Count() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	a2 := tn.login(t, "alice", "tablet")
	a2.SendRaw("<presence/>")
	seen := map[string]bool{}
	for len(seen) < 9 {
		m := a2.Expect("a stored message", func(e *xml.Element) bool { return string(e.Name()) == "message" })
		seen[string(m.Attr("id"))] = true
	}
	for i := 1; i < 10; i++ {
		if !seen[fmt.Sprintf("m%d", i)] {
			t.Fatalf("message m%d was lost (got %v)", i, seen)
		}
	}
}

// TestStreamResumption: a stream-management session whose link dies stays bound, keeps what is sent to
// it, and is resumed by the client's next connection with every unacknowledged stanza (XEP-0198 §5).
func TestStreamResumption(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a := tn.login(t, "alice", "phone")
	a.SendRaw("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en := a.Next()
	id := string(en.Attr("id"))
	if string(en.Name()) != "enabled" || string(en.Attr("resume")) != "true" || id == "" {
		t.Fatalf("enable answered %s", en)
	}
	b := tn.login(t, "bob", "desk")
	msg := func(i int) {
		b.Send("<message to='alice@example.test/phone' type='chat' id='m%d'><body>n%d</body></message>", i, i)
	}
	for i := 0; i < 5; i++ {
		msg(i)
	}
	for i := 0; i < 5; i++ {
		a.Expect("a message", func(e *xml.Element) bool { return string(e.Attr("id")) == fmt.Sprintf("m%d", i) })
	}
	a.SendRaw("<a xmlns='urn:xmpp:sm:3' h='2'/>") // m0 and m1 acknowledged
	a.Conn().Close()                              // the link dies without </stream:stream>
	deadline := time.Now().Add(5 * time.Second)
	for {
		if tn.Router().Resource(jid.MustParse("alice@example.test/phone")) != nil && tn.DetachedSessions() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session did not stay bound, detached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	msg(5) // sent while detached: kept

	wrong := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test", User: "alice", Password: "secret-alice", NoBind: true})
	wrong.SendRaw("<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>")
	if f := wrong.Next(); string(f.Name()) != "failed" || f.Child("", "item-not-found") == nil {
		t.Fatalf("a resume of an unknown session answered %s", f)
	}

	a2 := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test", User: "alice", Password: "secret-alice", NoBind: true})
	a2.Send("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='2'/>", id)
	if r := a2.Next(); string(r.Name()) != "resumed" || string(r.Attr("previd")) != id {
		t.Fatalf("resume answered %s", r)
	}
	for _, want := range []string{"m2", "m3", "m4", "m5"} {
		if m := a2.Next(); string(m.Attr("id")) != want {
			t.Fatalf("after resumption got %s, want %s", m, want)
		}
	}
	msg(6)
	a2.Expect("m6 on the resumed session", func(e *xml.Element) bool { return string(e.Attr("id")) == "m6" })
}

// TestResumptionExpires: a detached session whose client does not come back ends at the timeout, and
// what the client never acknowledged is stored offline.
func TestResumptionExpires(t *testing.T) {
	tn := startNode(t, func(c *config.Config) { c.C2S.ResumptionTimeout = time.Second })
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a := tn.login(t, "alice", "phone")
	a.SendRaw("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	if en := a.Next(); string(en.Attr("max")) != "1" {
		t.Fatalf("enable answered %s", en)
	}
	b := tn.login(t, "bob", "desk")
	b.SendRaw("<message to='alice@example.test/phone' type='chat' id='lost?'><body>x</body></message>")
	a.Expect("the message", func(e *xml.Element) bool { return string(e.Attr("id")) == "lost?" })
	a.Conn().Close() // never acknowledged
	deadline := time.Now().Add(10 * time.Second)
	for tn.Router().Resource(jid.MustParse("alice@example.test/phone")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the detached session never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a2 := tn.login(t, "alice", "tablet")
	a2.SendRaw("<presence/>")
	a2.Expect("the unacknowledged message, from offline storage", func(e *xml.Element) bool { return string(e.Attr("id")) == "lost?" })
}

// TestClientStateIndication: while a client is inactive (XEP-0352) presence and chat states wait, only
// the latest of each per sender, and go out before the next message that matters.
func TestClientStateIndication(t *testing.T) {
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a := tn.login(t, "alice", "phone")
	if a.Features.Child("urn:xmpp:csi:0", "csi") == nil {
		t.Fatal("CSI is not offered")
	}
	a.SendRaw("<inactive xmlns='urn:xmpp:csi:0'/>")
	// A barrier: the node reads a stream in order, so once the ping is answered <inactive/> has been
	// handled, and bob's presence (another connection) cannot overtake it.
	a.SendRaw("<iq type='get' id='csi-barrier' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	if r := a.ExpectID("csi-barrier"); string(r.Attr("type")) != "result" {
		t.Fatalf("ping answered %s", r)
	}
	b := tn.login(t, "bob", "desk")
	for i := 1; i <= 3; i++ {
		b.Send("<presence to='alice@example.test/phone'><status>s%d</status></presence>", i)
	}
	b.SendRaw("<message to='alice@example.test/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	b.SendRaw("<message to='alice@example.test/phone' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>")
	if e, err := a.NextBefore(time.Now().Add(300 * time.Millisecond)); err == nil {
		t.Fatalf("an inactive client was sent %s", e)
	}
	b.SendRaw("<message to='alice@example.test/phone' type='chat' id='body'><body>hi</body></message>")
	var got []string
	for len(got) < 3 {
		e := a.Next()
		switch {
		case string(e.Name()) == "presence":
			got = append(got, "presence:"+string(e.Child("", "status").Text()))
		case e.Child("http://jabber.org/protocol/chatstates", "paused") != nil:
			got = append(got, "paused")
		case e.Child("http://jabber.org/protocol/chatstates", "composing") != nil:
			got = append(got, "composing")
		default:
			got = append(got, "message:"+string(e.Attr("id")))
		}
	}
	if strings.Join(got, " ") != "presence:s3 paused message:body" {
		t.Fatalf("an inactive client got %v", got)
	}
	// Active again: presence flows at once.
	a.SendRaw("<active xmlns='urn:xmpp:csi:0'/>")
	b.SendRaw("<presence to='alice@example.test/phone'><status>s4</status></presence>")
	if e := a.Next(); string(e.Name()) != "presence" {
		t.Fatalf("an active client got %s", e)
	}
}

// TestInBandRegistration: with 'vhost-register-enabled' an unauthenticated client creates an account
// (XEP-0077) and logs in with it; without it, the request is refused.
func TestInBandRegistration(t *testing.T) {
	tn := startNode(t, func(c *config.Config) { c.Registration = true })
	c := xmpptest.Dial(t, tn.plain, xmpptest.Options{Domain: "example.test"})
	if c.Features.Child("http://jabber.org/features/iq-register", "register") == nil {
		t.Fatal("registration is not advertised")
	}
	c.SendRaw("<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>")
	if r := c.ExpectID("f"); string(r.Attr("type")) != "result" {
		t.Fatalf("form request answered %s", r)
	}
	c.SendRaw("<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>dave</username><password>secret-dave</password></query></iq>")
	if r := c.ExpectID("r"); string(r.Attr("type")) != "result" {
		t.Fatalf("registration answered %s", r)
	}
	tn.login(t, "dave", "r")

	off := startNode(t, nil)
	c2 := xmpptest.Dial(t, off.plain, xmpptest.Options{Domain: "example.test"})
	if c2.Features.Child("http://jabber.org/features/iq-register", "register") != nil {
		t.Fatal("registration advertised while off")
	}
}
