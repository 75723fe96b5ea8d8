package register

import (
	"bytes"
	"encoding/xml"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/accounts"
	"github.com/starling-xmpp/starling/node/c2s"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

const domain = "example.com"

type env struct {
	st  *sqlite.Store
	acc *accounts.Accounts
	r   *router.Router
	s   *Service
}

func newEnv(t *testing.T, enabled bool) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "starling.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	acc := accounts.New(st, 0)
	r := router.New(router.Options{Domains: []string{domain, "other.example"}, Accounts: acc})
	s, err := New(Options{Enabled: enabled, Accounts: acc, Sessions: r})
	if err != nil {
		t.Fatal(err)
	}
	s.Register(r)
	return &env{st: st, acc: acc, r: r, s: s}
}

func (e *env) exists(t *testing.T, bare string) bool {
	t.Helper()
	ok, err := e.st.UserExists(t.Context(), bare)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// unauth sends in as a client that has not logged in and decodes the reply.
func (e *env) unauth(t *testing.T, in string) (routertest.Reply, []byte) {
	t.Helper()
	out := e.s.HandleUnauthenticated(t.Context(), domain, routertest.Parse(t, in))
	var r routertest.Reply
	if out != nil {
		if err := xml.Unmarshal(out, &r); err != nil {
			t.Fatalf("reply %q: %v", out, err)
		}
	}
	return r, out
}

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t, true)
	set := func(user, pass string) string {
		return "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>" + user + "</username><password>" + pass + "</password></query></iq>"
	}
	tests := []struct {
		name    string
		in      string
		typ     string // "" for no reply
		cond    string
		created string // an account that must exist afterwards
	}{
		{name: "register", in: set("juliet", "s3cret &amp; more"), typ: "result", created: "juliet@example.com"},
		{name: "taken", in: set("juliet", "other"), typ: "error", cond: "conflict"},
		{name: "taken after preparation", in: set("JULIET", "other"), typ: "error", cond: "conflict"},
		{name: "unicode username", in: set("ромео", "pw"), typ: "result", created: "ромео@example.com"},
		{name: "no password", in: "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>x</username></query></iq>", typ: "error", cond: "not-acceptable"},
		{name: "empty password", in: set("x", ""), typ: "error", cond: "not-acceptable"},
		{name: "long password", in: set("x", strings.Repeat("p", MaxPasswordBytes+1)), typ: "error", cond: "not-acceptable"},
		{name: "no username", in: "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><password>x</password></query></iq>", typ: "error", cond: "not-acceptable"},
		{name: "empty username", in: set("", "pw"), typ: "error", cond: "not-acceptable"},
		{name: "username with @", in: set("a@b", "pw"), typ: "error", cond: "not-acceptable"},
		{name: "username with space", in: set("a b", "pw"), typ: "error", cond: "not-acceptable"},
		{name: "remove", in: "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><remove/></query></iq>", typ: "error", cond: "not-authorized"},
		{name: "no query", in: "<iq type='set' id='r1'><ping xmlns='urn:xmpp:ping'/></iq>", typ: "error", cond: "bad-request"},
		{name: "two children", in: "<iq type='get' id='r1'><query xmlns='jabber:iq:register'/><query xmlns='jabber:iq:register'/></iq>", typ: "error", cond: "bad-request"},
		{name: "no id", in: "<iq type='get'><query xmlns='jabber:iq:register'/></iq>", typ: "error", cond: "bad-request"},
		{name: "bad type", in: "<iq type='put' id='r1'><query xmlns='jabber:iq:register'/></iq>", typ: "error", cond: "bad-request"},
		{name: "result ignored", in: "<iq type='result' id='r1'><query xmlns='jabber:iq:register'/></iq>"},
		{name: "error ignored", in: "<iq type='error' id='r1'><query xmlns='jabber:iq:register'/></iq>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, raw := e.unauth(t, tt.in)
			if tt.typ == "" {
				if raw != nil {
					t.Fatalf("answered %s", raw)
				}
				return
			}
			if r.Type != tt.typ || r.Condition() != tt.cond {
				t.Fatalf("reply %s, want %s %s", raw, tt.typ, tt.cond)
			}
			if tt.cond != "bad-request" && r.ID != "r1" {
				t.Errorf("reply id %q", r.ID)
			}
			if tt.created != "" && !e.exists(t, tt.created) {
				t.Errorf("%s was not created", tt.created)
			}
		})
	}
	// The password given is the one that logs in: its credentials verify.
	c, err := e.st.Credential(t.Context(), "juliet@example.com", storage.HashSHA256)
	if err != nil || c.Iterations == 0 || len(c.StoredKey) == 0 {
		t.Fatalf("credential %+v, %v", c, err)
	}
}

func TestUnauthenticatedForm(t *testing.T) {
	e := newEnv(t, true)
	_, raw := e.unauth(t, "<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
	var form struct {
		Type  string `xml:"type,attr"`
		ID    string `xml:"id,attr"`
		Query struct {
			XMLName      xml.Name
			Instructions string    `xml:"instructions"`
			Username     *struct{} `xml:"username"`
			Password     *struct{} `xml:"password"`
			Registered   *struct{} `xml:"registered"`
		} `xml:"query"`
	}
	if err := xml.Unmarshal(raw, &form); err != nil {
		t.Fatal(err)
	}
	if form.Type != "result" || form.ID != "g" || form.Query.XMLName.Space != NS || form.Query.Instructions == "" ||
		form.Query.Username == nil || form.Query.Password == nil || form.Query.Registered != nil {
		t.Errorf("registration form %s", raw)
	}
}

func TestDisabled(t *testing.T) {
	e := newEnv(t, false)
	if e.s.Enabled() {
		t.Fatal("enabled")
	}
	r, raw := e.unauth(t, "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>a</username><password>b</password></query></iq>")
	if r.Type != "error" || r.Condition() != "service-unavailable" {
		t.Errorf("reply %s, want service-unavailable", raw)
	}
	if e.exists(t, "a@example.com") {
		t.Error("account created while registration is off")
	}
	if slices.Contains(e.r.IQNamespaces(), NS) {
		t.Error("namespace handled (and so advertised) while registration is off")
	}
	if err := e.acc.Create(t.Context(), jid.MustParse("a@example.com"), "pw"); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	res := router.NewResource(jid.MustParse("a@example.com/x"), recSink{ev, "a/x"}, recCloser{ev, "a/x"})
	e.r.Bind(t.Context(), res)
	e.r.Route(t.Context(), res, routertest.Parse(t, "<iq type='set' id='c'><query xmlns='jabber:iq:register'><remove/></query></iq>"))
	if got := ev.take(); !slices.Equal(got, []string{"send a/x error/service-unavailable"}) {
		t.Errorf("cancel while off: %q", got)
	}
	if !e.exists(t, "a@example.com") {
		t.Error("account removed while registration is off")
	}
}

func TestNewNeedsAccounts(t *testing.T) {
	if _, err := New(Options{Enabled: true}); err == nil {
		t.Error("New without Accounts succeeded")
	}
	if _, err := New(Options{}); err != nil {
		t.Errorf("disabled without Accounts: %v", err)
	}
}

func TestAuthenticated(t *testing.T) {
	tests := []struct {
		name string
		from string
		in   string
		want []string // events
		// after checks
		removed     bool
		pwChanged   bool
		otherIntact bool
	}{
		{name: "get", from: "juliet/balcony", in: "<iq type='get' id='1' to='example.com'><query xmlns='jabber:iq:register'/></iq>",
			want: []string{"send juliet/balcony result"}},
		{name: "change password", from: "juliet/balcony", in: "<iq type='set' id='1' to='example.com'><query xmlns='jabber:iq:register'><username>juliet</username><password>n3w</password></query></iq>",
			want: []string{"send juliet/balcony result"}, pwChanged: true},
		{name: "change password without to", from: "juliet/balcony", in: "<iq type='set' id='1'><query xmlns='jabber:iq:register'><username>Juliet</username><password>n3w</password></query></iq>",
			want: []string{"send juliet/balcony result"}, pwChanged: true},
		{name: "change someone else's password", from: "juliet/balcony", in: "<iq type='set' id='1'><query xmlns='jabber:iq:register'><username>romeo</username><password>n3w</password></query></iq>",
			want: []string{"send juliet/balcony error/bad-request"}},
		{name: "change password without password", from: "juliet/balcony", in: "<iq type='set' id='1'><query xmlns='jabber:iq:register'><username>juliet</username></query></iq>",
			want: []string{"send juliet/balcony error/bad-request"}},
		{name: "empty new password", from: "juliet/balcony", in: "<iq type='set' id='1'><query xmlns='jabber:iq:register'><username>juliet</username><password/></query></iq>",
			want: []string{"send juliet/balcony error/not-acceptable"}},
		{name: "remove with more", from: "juliet/balcony", in: "<iq type='set' id='1'><query xmlns='jabber:iq:register'><remove/><username>juliet</username></query></iq>",
			want: []string{"send juliet/balcony error/bad-request"}},
		{name: "to another account", from: "juliet/balcony", in: "<iq type='set' id='1' to='romeo@example.com'><query xmlns='jabber:iq:register'><remove/></query></iq>",
			want: []string{"send juliet/balcony error/service-unavailable"}, otherIntact: true},
		{name: "to another domain", from: "juliet/balcony", in: "<iq type='get' id='1' to='other.example'><query xmlns='jabber:iq:register'/></iq>",
			want: []string{"send juliet/balcony error/service-unavailable"}},
		{name: "cancel", from: "juliet/balcony", in: "<iq type='set' id='1' to='example.com'><query xmlns='jabber:iq:register'><remove/></query></iq>",
			want:    []string{"send juliet/balcony result", "close juliet/balcony not-authorized", "close juliet/garden not-authorized"},
			removed: true, otherIntact: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, true)
			ctx := t.Context()
			for _, u := range []string{"juliet", "romeo"} {
				if err := e.acc.Create(ctx, jid.MustParse(u+"@"+domain), "old"); err != nil {
					t.Fatal(err)
				}
			}
			before, err := e.st.Credential(ctx, "juliet@example.com", storage.HashSHA256)
			if err != nil {
				t.Fatal(err)
			}
			ev := &events{}
			var self *router.Resource
			for _, full := range []string{"juliet/balcony", "juliet/garden", "romeo/street"} {
				local, res, _ := strings.Cut(full, "/")
				r := router.NewResource(jid.MustParse(local+"@"+domain+"/"+res), recSink{ev, full}, recCloser{ev, full})
				e.r.Bind(ctx, r)
				if full == tt.from {
					self = r
				}
			}
			if err := e.r.Route(ctx, self, routertest.Parse(t, tt.in)); err != nil {
				t.Fatal(err)
			}
			got := ev.take()
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %q, want %q", got, tt.want)
			}
			if removed := !e.exists(t, "juliet@example.com"); removed != tt.removed {
				t.Errorf("juliet removed: %v, want %v", removed, tt.removed)
			}
			if !e.exists(t, "romeo@example.com") {
				t.Error("romeo was removed")
			}
			if !tt.removed {
				after, err := e.st.Credential(ctx, "juliet@example.com", storage.HashSHA256)
				if err != nil {
					t.Fatal(err)
				}
				if changed := !bytes.Equal(after.StoredKey, before.StoredKey); changed != tt.pwChanged {
					t.Errorf("password changed: %v, want %v", changed, tt.pwChanged)
				}
			}
		})
	}
}

// TestAuthenticatedGet checks the content of the registration an authenticated client reads.
func TestAuthenticatedGet(t *testing.T) {
	e := newEnv(t, true)
	if err := e.acc.Create(t.Context(), jid.MustParse("juliet@example.com"), "pw"); err != nil {
		t.Fatal(err)
	}
	raw := routertest.Bind(t, e.r, "juliet@example.com/b").Exchange(t, "<iq type='get' id='1'><query xmlns='jabber:iq:register'/></iq>")
	var got struct {
		Registered *struct{} `xml:"query>registered"`
		Username   string    `xml:"query>username"`
	}
	if err := xml.Unmarshal(raw, &got); err != nil || got.Registered == nil || got.Username != "juliet" {
		t.Errorf("reply %s (%v)", raw, err)
	}
}

// The client listener calls the Service before authentication and the router after.
var (
	_ c2s.Registration = (*Service)(nil)
	_ router.IQHandler = (*Service)(nil)
)
