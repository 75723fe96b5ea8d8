package admin

import (
	"bytes"
	"encoding/xml"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/accounts"
	"github.com/starling-xmpp/starling/node/im/adhoc"
	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// cmdReply is a reply as a client reads it.
type cmdReply struct {
	routertest.Reply
	Command struct {
		SessionID string `xml:"sessionid,attr"`
		Status    string `xml:"status,attr"`
		Notes     []struct {
			Type string `xml:"type,attr"`
			Text string `xml:",chardata"`
		} `xml:"note"`
		X *struct {
			Type   string `xml:"type,attr"`
			Fields []struct {
				Var     string   `xml:"var,attr"`
				Type    string   `xml:"type,attr"`
				Values  []string `xml:"value"`
				Options []struct {
					Value string `xml:"value"`
				} `xml:"option"`
			} `xml:"field"`
		} `xml:"x"`
	} `xml:"command"`
}

// vars lists the form's fields as var=type.
func (r *cmdReply) vars() []string {
	var out []string
	if r.Command.X != nil {
		for _, f := range r.Command.X.Fields {
			out = append(out, f.Var+"="+f.Type)
		}
	}
	return out
}

func (r *cmdReply) values(v string) []string {
	if r.Command.X != nil {
		for _, f := range r.Command.X.Fields {
			if f.Var == v {
				return f.Values
			}
		}
	}
	return nil
}

func (r *cmdReply) notes() []string {
	var out []string
	for _, n := range r.Command.Notes {
		out = append(out, n.Type+": "+n.Text)
	}
	return out
}

type env struct {
	t       *testing.T
	st      *sqlite.Store
	acc     *accounts.Accounts
	r       *router.Router
	clients []*routertest.Client // every session bound, to see which were ended
	root    *routertest.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "starling.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	acc := accounts.New(st, 0)
	r := router.New(router.Options{Domains: []string{"example.com", "other.example"}, Accounts: acc})
	admins := []jid.JID{jid.MustParse("root@example.com")}
	d := disco.New(disco.Options{Admins: admins})
	d.Register(r)
	a := adhoc.New(adhoc.Options{Admins: admins})
	cmds, err := Commands(Options{Accounts: acc, Sessions: r})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(cmds...); err != nil {
		t.Fatal(err)
	}
	a.Register(r, d)
	e := &env{t: t, st: st, acc: acc, r: r}
	e.user("root@example.com")
	e.root = e.bind("root@example.com/console")
	return e
}

func (e *env) user(bares ...string) {
	e.t.Helper()
	for _, b := range bares {
		if err := e.acc.Create(e.t.Context(), jid.MustParse(b), "old"); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) bind(full string) *routertest.Client {
	c := routertest.Bind(e.t, e.r, full)
	e.clients = append(e.clients, c)
	return c
}

// closed lists the sessions that were ended, and how, as "full condition".
func (e *env) closed() []string {
	var out []string
	for _, c := range e.clients {
		for _, cond := range c.Closer.Conditions() {
			out = append(out, string(c.Resource.Full())+" "+cond)
		}
	}
	return out
}

func (e *env) exists(bare string) bool {
	e.t.Helper()
	ok, err := e.st.UserExists(e.t.Context(), bare)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func (e *env) storedKey(bare string) []byte {
	e.t.Helper()
	c, err := e.st.Credential(e.t.Context(), bare, storage.HashSHA256)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.StoredKey
}

// run sends a command request from c and decodes the reply.
func (e *env) run(c *routertest.Client, to, node, sessionid, form string) *cmdReply {
	e.t.Helper()
	in := "<iq type='set' id='c' to='" + to + "'><command xmlns='" + adhoc.NS + "' node='" + node + "'"
	if sessionid != "" {
		in += " sessionid='" + sessionid + "' action='complete'"
	}
	in += ">" + form + "</command></iq>"
	raw := c.Exchange(e.t, in)
	r := &cmdReply{Reply: routertest.Reply{Raw: raw}}
	if err := xml.Unmarshal(raw, r); err != nil {
		e.t.Fatalf("reply %s: %v", raw, err)
	}
	return r
}

// twoStage runs a command as root: first without form, then completing with fields.
func (e *env) twoStage(to, node string, fields ...string) (first, second *cmdReply) {
	e.t.Helper()
	first = e.run(e.root, to, node, "", "")
	if first.Command.Status != adhoc.StatusExecuting || first.Command.X == nil || first.Command.X.Type != "form" {
		e.t.Fatalf("first stage of %s: %s", node, first.Raw)
	}
	if v := first.values("FORM_TYPE"); !slices.Equal(v, []string{NS}) {
		e.t.Errorf("FORM_TYPE %q", v)
	}
	return first, e.run(e.root, to, node, first.Command.SessionID, form(fields...))
}

// form builds a submitted XEP-0133 form; a field given twice gets both values.
func form(pairs ...string) string {
	var b strings.Builder
	b.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + NS + "</value></field>")
	vals := map[string][]string{}
	var order []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, ok := vals[pairs[i]]; !ok {
			order = append(order, pairs[i])
		}
		vals[pairs[i]] = append(vals[pairs[i]], pairs[i+1])
	}
	for _, k := range order {
		b.WriteString("<field var='" + k + "'>")
		for _, v := range vals[k] {
			b.WriteString("<value>" + v + "</value>")
		}
		b.WriteString("</field>")
	}
	b.WriteString("</x>")
	return b.String()
}

func TestNonAdmin(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com")
	alice := e.bind("alice@example.com/phone")
	for _, node := range []string{NodeAddUser, NodeDeleteUser, NodeChangeUserPassword, NodeGetOnlineUsersList, NodeGetOnlineUsersNum, NodeGetRegisteredUsersNum} {
		if r := e.run(alice, "example.com", node, "", ""); r.Condition() != "forbidden" {
			t.Errorf("%s by a non-admin: %s", node, r.Raw)
		}
		// Submitting the form at once is refused just the same.
		if r := e.run(alice, "example.com", node, "", form("accountjid", "eve@example.com", "password", "x", "password-verify", "x")); r.Condition() != "forbidden" {
			t.Errorf("%s submitted by a non-admin: %s", node, r.Raw)
		}
	}
	if e.exists("eve@example.com") {
		t.Error("a non-admin added an account")
	}
	// The commands are not listed to a non-admin, and are to an admin.
	list := func(c *routertest.Client) []string {
		raw := c.Exchange(t, "<iq type='get' id='d' to='example.com'><query xmlns='"+disco.NSItems+"' node='"+adhoc.NS+"'/></iq>")
		var q struct {
			Items []struct {
				Node string `xml:"node,attr"`
			} `xml:"query>item"`
		}
		if xml.Unmarshal(raw, &q) != nil {
			t.Fatalf("disco reply %q", raw)
		}
		var out []string
		for _, it := range q.Items {
			out = append(out, it.Node)
		}
		return out
	}
	if got := list(alice); len(got) != 0 {
		t.Errorf("non-admin sees %q", got)
	}
	if got := list(e.root); len(got) != 6 {
		t.Errorf("admin sees %q", got)
	}
}

func TestAddUser(t *testing.T) {
	e := newEnv(t)
	e.user("taken@example.com")
	tests := []struct {
		name   string
		fields []string
		cond   string
		added  string
	}{
		{name: "add", fields: []string{"accountjid", "juliet@example.com", "password", "pw", "password-verify", "pw"}, added: "juliet@example.com"},
		{name: "other served domain", fields: []string{"accountjid", "Romeo@Other.Example", "password", "pw", "password-verify", "pw"}, added: "romeo@other.example"},
		{name: "without verify field", fields: []string{"accountjid", "nurse@example.com", "password", "pw"}, added: "nurse@example.com"},
		{name: "exists", fields: []string{"accountjid", "taken@example.com", "password", "pw", "password-verify", "pw"}, cond: "conflict"},
		{name: "passwords differ", fields: []string{"accountjid", "x@example.com", "password", "pw", "password-verify", "wp"}, cond: "not-acceptable"},
		{name: "empty password", fields: []string{"accountjid", "x@example.com", "password", "", "password-verify", ""}, cond: "not-acceptable"},
		{name: "foreign domain", fields: []string{"accountjid", "x@elsewhere.example", "password", "pw", "password-verify", "pw"}, cond: "not-acceptable"},
		{name: "not a bare JID", fields: []string{"accountjid", "x@example.com/r", "password", "pw", "password-verify", "pw"}, cond: "jid-malformed"},
		{name: "domain only", fields: []string{"accountjid", "example.com", "password", "pw", "password-verify", "pw"}, cond: "jid-malformed"},
		{name: "no account", fields: []string{"password", "pw", "password-verify", "pw"}, cond: "jid-malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, r := e.twoStage("example.com", NodeAddUser, tt.fields...)
			if got := first.vars(); !slices.Equal(got, []string{"FORM_TYPE=hidden", "accountjid=jid-single", "password=text-private", "password-verify=text-private"}) {
				t.Errorf("form fields %q", got)
			}
			if tt.cond != "" {
				if r.Condition() != tt.cond {
					t.Fatalf("reply %s, want %s", r.Raw, tt.cond)
				}
				return
			}
			if r.Command.Status != adhoc.StatusCompleted || !e.exists(tt.added) {
				t.Fatalf("reply %s; %s exists: %v", r.Raw, tt.added, e.exists(tt.added))
			}
		})
	}
	// A form submitted with the first request acts at once, and a wrong FORM_TYPE is refused.
	if r := e.run(e.root, "example.com", NodeAddUser, "", form("accountjid", "quick@example.com", "password", "pw")); r.Command.Status != adhoc.StatusCompleted || !e.exists("quick@example.com") {
		t.Errorf("one-stage add: %s", r.Raw)
	}
	wrong := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:other</value></field><field var='accountjid'><value>w@example.com</value></field><field var='password'><value>pw</value></field></x>"
	if r := e.run(e.root, "example.com", NodeAddUser, "", wrong); r.Condition() != "bad-request" || e.exists("w@example.com") {
		t.Errorf("wrong FORM_TYPE: %s", r.Raw)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	e.user("juliet@example.com")
	before := e.storedKey("juliet@example.com")
	if _, r := e.twoStage("example.com", NodeChangeUserPassword, "accountjid", "juliet@example.com", "password", "n3w"); r.Command.Status != adhoc.StatusCompleted {
		t.Fatalf("change: %s", r.Raw)
	}
	if bytes.Equal(before, e.storedKey("juliet@example.com")) {
		t.Error("the password did not change")
	}
	for name, fields := range map[string][]string{
		"item-not-found": {"accountjid", "nobody@example.com", "password", "n3w"},
		"not-acceptable": {"accountjid", "juliet@example.com", "password", ""},
		"jid-malformed":  {"accountjid", "@example.com", "password", "x"},
	} {
		if _, r := e.twoStage("example.com", NodeChangeUserPassword, fields...); r.Condition() != name {
			t.Errorf("%v: %s, want %s", fields, r.Raw, name)
		}
	}
}

func TestDeleteUser(t *testing.T) {
	e := newEnv(t)
	e.user("juliet@example.com", "romeo@example.com", "nurse@example.com")
	e.bind("juliet@example.com/balcony")
	e.bind("juliet@example.com/garden")
	e.bind("nurse@example.com/kitchen")
	_, r := e.twoStage("example.com", NodeDeleteUser, "accountjids", "juliet@example.com", "accountjids", "romeo@example.com", "accountjids", "ghost@example.com")
	if r.Command.Status != adhoc.StatusCompleted {
		t.Fatalf("delete: %s", r.Raw)
	}
	if got := r.notes(); !slices.Equal(got, []string{"info: Deleted juliet@example.com, romeo@example.com.", "warn: No such account: ghost@example.com."}) {
		t.Errorf("notes %q", got)
	}
	if e.exists("juliet@example.com") || e.exists("romeo@example.com") || !e.exists("nurse@example.com") {
		t.Error("wrong accounts deleted")
	}
	closed := e.closed()
	slices.Sort(closed)
	if want := []string{"juliet@example.com/balcony not-authorized", "juliet@example.com/garden not-authorized"}; !slices.Equal(closed, want) {
		t.Errorf("sessions closed %q, want %q", closed, want)
	}
	for cond, fields := range map[string][]string{
		"item-not-found": {"accountjids", "ghost@example.com"},
		"not-acceptable": {"accountjids", "x@elsewhere.example"},
		"jid-malformed":  {"accountjids", "nurse@example.com", "accountjids", "a b@example.com"},
	} {
		if _, r := e.twoStage("example.com", NodeDeleteUser, fields...); r.Condition() != cond {
			t.Errorf("%v: %s, want %s", fields, r.Raw, cond)
		}
	}
	if !e.exists("nurse@example.com") {
		t.Error("a request with a malformed JID deleted the valid ones before it")
	}
	if r := e.run(e.root, "example.com", NodeDeleteUser, "", form()); r.Condition() != "not-acceptable" {
		t.Errorf("no account: %s", r.Raw)
	}
}

func TestOnlineUsers(t *testing.T) {
	e := newEnv(t)
	for _, full := range []string{"bob@example.com/1", "alice@example.com/1", "alice@example.com/2", "carol@other.example/1"} {
		e.bind(full)
	}
	first, r := e.twoStage("example.com", NodeGetOnlineUsersList, "max_items", "none")
	var choices []string
	for _, f := range first.Command.X.Fields {
		if f.Var == "max_items" {
			for _, o := range f.Options {
				choices = append(choices, o.Value)
			}
		}
	}
	if !slices.Equal(choices, maxItemsChoices) {
		t.Errorf("max_items options %q", choices)
	}
	if got := r.values("onlineuserjids"); r.Command.X.Type != "result" || !slices.Equal(got, []string{"alice@example.com", "bob@example.com", "root@example.com"}) {
		t.Errorf("online users %q in %s", got, r.Raw)
	}
	if _, r := e.twoStage("example.com", NodeGetOnlineUsersList, "max_items", "2"); !slices.Equal(r.values("onlineuserjids"), []string{"alice@example.com", "bob@example.com"}) {
		t.Errorf("two online users: %s", r.Raw)
	}
	if _, r := e.twoStage("other.example", NodeGetOnlineUsersList, "max_items", "25"); !slices.Equal(r.values("onlineuserjids"), []string{"carol@other.example"}) {
		t.Errorf("online users of other.example: %s", r.Raw)
	}
	if _, r := e.twoStage("example.com", NodeGetOnlineUsersList, "max_items", "0"); r.Condition() != "not-acceptable" {
		t.Errorf("max_items 0: %s", r.Raw)
	}
	// The number of online users counts sessions: alice's two, bob's, root's.
	r = e.run(e.root, "example.com", NodeGetOnlineUsersNum, "", "")
	if r.Command.Status != adhoc.StatusCompleted || !slices.Equal(r.values("onlineusersnum"), []string{"4"}) {
		t.Errorf("online number: %s", r.Raw)
	}
}

func TestRegisteredUsers(t *testing.T) {
	e := newEnv(t)
	e.user("a@example.com", "b@example.com", "c@other.example")
	for to, want := range map[string]string{"example.com": "3", "other.example": "1"} {
		r := e.run(e.root, to, NodeGetRegisteredUsersNum, "", "")
		if r.Command.Status != adhoc.StatusCompleted || !slices.Equal(r.values("registeredusersnum"), []string{want}) {
			t.Errorf("%s: %s, want %s", to, r.Raw, want)
		}
	}
}

func TestCommandsNeedDependencies(t *testing.T) {
	if _, err := Commands(Options{}); err == nil {
		t.Error("Commands without Accounts and Sessions succeeded")
	}
}
