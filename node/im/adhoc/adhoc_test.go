package adhoc

import (
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/node/im/adhoc/dataform"
	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// wizard asks a name, then a colour, and can go back.
var wizard = HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
	nameForm := &Response{Form: &dataform.Form{Type: dataform.TypeForm, Fields: []dataform.Field{{Var: "name", Required: true}}}, Actions: []string{ActionNext}}
	switch {
	case req.Stage == 0:
		return nameForm, nil
	case req.Action == ActionPrev:
		return nameForm, nil
	case req.State == nil:
		name := ""
		if req.Form != nil {
			name = req.Form.Value("name")
		}
		if name == "" {
			return nil, stanza.New(stanza.NotAcceptable, "a name is required")
		}
		return &Response{Form: &dataform.Form{Type: dataform.TypeForm, Fields: []dataform.Field{{Var: "color"}}},
			Actions: []string{ActionPrev, ActionComplete}, Default: ActionComplete, State: name}, nil
	}
	return &Response{Notes: []Note{{Text: req.State.(string) + " likes " + req.Form.Value("color")}},
		Form: &dataform.Form{Type: dataform.TypeResult, Fields: []dataform.Field{{Var: "stage", Values: []string{string(rune('0' + req.Stage))}}}}}, nil
})

type env struct {
	r     *router.Router
	d     *disco.Service
	a     *Service
	clk   *clock
	alice *client
	root  *client
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts.Admins = []jid.JID{jid.MustParse("root@example.com")}
	opts.Now = clk.Now
	r := router.New(router.Options{Domains: []string{"example.com"}})
	d := disco.New(disco.Options{Admins: opts.Admins})
	d.Register(r)
	a := New(opts)
	err := a.Add(
		Command{Node: "echo", Name: "Echo", Handler: HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
			return &Response{Notes: []Note{{Text: "hello " + req.From.String() + " at " + req.To.String()}}}, nil
		})},
		Command{Node: "wizard", Name: "Wizard", Handler: wizard},
		Command{Node: "secret", Name: "Secret", AdminOnly: true, Handler: HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
			return &Response{Notes: []Note{{Type: NoteWarn, Text: "admin only"}}}, nil
		})},
		Command{Node: "broken", Name: "Broken", Handler: HandlerFunc(func(context.Context, *Request) (*Response, error) {
			return nil, errors.New("database gone")
		})},
		Command{Node: "bad-default", Name: "Bad default", Handler: HandlerFunc(func(context.Context, *Request) (*Response, error) {
			return &Response{Actions: []string{ActionNext}, Default: ActionComplete}, nil
		})},
		Command{Node: "bad-offer", Name: "Bad offer", Handler: HandlerFunc(func(context.Context, *Request) (*Response, error) {
			return &Response{Actions: []string{ActionCancel}}, nil
		})},
	)
	if err != nil {
		t.Fatal(err)
	}
	a.Register(r, d)
	return &env{r: r, d: d, a: a, clk: clk, alice: bind(t, r, "alice@example.com/phone"), root: bind(t, r, "root@example.com/console")}
}

func TestAdd(t *testing.T) {
	a := New(Options{})
	h := HandlerFunc(func(context.Context, *Request) (*Response, error) { return nil, nil })
	if err := a.Add(Command{Node: "x", Handler: h}); err != nil {
		t.Fatal(err)
	}
	for name, cmds := range map[string][]Command{
		"taken":         {{Node: "x", Handler: h}},
		"twice in call": {{Node: "y", Handler: h}, {Node: "y", Handler: h}},
		"no node":       {{Handler: h}},
		"no handler":    {{Node: "z"}},
	} {
		if err := a.Add(cmds...); err == nil {
			t.Errorf("%s: Add succeeded", name)
		}
	}
	if err := a.Add(Command{Node: "y", Handler: h}); err != nil {
		t.Errorf("a failed Add added something: %v", err)
	}
}

func TestDisco(t *testing.T) {
	e := newEnv(t, Options{})
	type query struct {
		ns, node string
	}
	tests := []struct {
		name  string
		admin bool
		q     query
		want  []string // items as node, or identities+features
		cond  string
	}{
		{"list", false, query{disco.NSItems, NS}, []string{"echo", "wizard", "broken", "bad-default", "bad-offer"}, ""},
		{"list admin", true, query{disco.NSItems, NS}, []string{"echo", "wizard", "secret", "broken", "bad-default", "bad-offer"}, ""},
		{"list info", false, query{disco.NSInfo, NS}, []string{"automation/command-list", disco.NSItems}, ""},
		{"command info", false, query{disco.NSInfo, "wizard"}, []string{"automation/command-node", NS, dataform.NS}, ""},
		{"admin command info hidden", false, query{disco.NSInfo, "secret"}, nil, "item-not-found"},
		{"admin command items hidden", false, query{disco.NSItems, "secret"}, nil, "item-not-found"},
		{"admin command info", true, query{disco.NSInfo, "secret"}, []string{"automation/command-node", NS, dataform.NS}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.alice
			if tt.admin {
				c = e.root
			}
			raw := c.Exchange(t, "<iq type='get' id='d' to='example.com'><query xmlns='"+tt.q.ns+"' node='"+tt.q.node+"'/></iq>")
			var r struct {
				Type  string `xml:"type,attr"`
				Error *struct {
					Cond []struct{ XMLName xml.Name } `xml:",any"`
				} `xml:"error"`
				Items []struct {
					JID  string `xml:"jid,attr"`
					Node string `xml:"node,attr"`
				} `xml:"query>item"`
				Identities []struct {
					Category string `xml:"category,attr"`
					Type     string `xml:"type,attr"`
				} `xml:"query>identity"`
				Features []struct {
					Var string `xml:"var,attr"`
				} `xml:"query>feature"`
			}
			if err := xml.Unmarshal(raw, &r); err != nil {
				t.Fatal(err)
			}
			if tt.cond != "" {
				if r.Type != "error" || r.Error == nil || r.Error.Cond[0].XMLName.Local != tt.cond {
					t.Fatalf("reply %s, want %s", raw, tt.cond)
				}
				return
			}
			var list []string
			for _, it := range r.Items {
				if it.JID != "example.com" {
					t.Errorf("item jid %q", it.JID)
				}
				list = append(list, it.Node)
			}
			for _, id := range r.Identities {
				list = append(list, id.Category+"/"+id.Type)
			}
			for _, f := range r.Features {
				list = append(list, f.Var)
			}
			if !slices.Equal(list, tt.want) {
				t.Errorf("got %q, want %q (%s)", list, tt.want, raw)
			}
		})
	}
	// The server advertises the commands feature because the handler is registered.
	if !slices.Contains(e.d.ServerInfo().Features, NS) {
		t.Error("server disco lacks the commands feature")
	}
}

func TestSingleStage(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		name   string
		c      func(*env) *client
		in     string
		status string
		notes  []string
		cond   string
	}{
		{name: "execute", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "execute", ""), status: StatusCompleted,
			notes: []string{"info: hello alice@example.com/phone at example.com"}},
		{name: "no action", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "", ""), status: StatusCompleted,
			notes: []string{"info: hello alice@example.com/phone at example.com"}},
		{name: "admin", c: func(e *env) *client { return e.root }, in: exec("secret", "", "", ""), status: StatusCompleted, notes: []string{"warn: admin only"}},
		{name: "admin only", c: func(e *env) *client { return e.alice }, in: exec("secret", "", "", ""), cond: "forbidden"},
		{name: "unknown", c: func(e *env) *client { return e.alice }, in: exec("nope", "", "", ""), cond: "item-not-found"},
		{name: "malformed action", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "jump", ""), cond: "bad-request/malformed-action"},
		{name: "next without session", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "next", ""), cond: "bad-request/bad-action"},
		{name: "cancel without session", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "cancel", ""), status: StatusCanceled},
		{name: "get", c: func(e *env) *client { return e.alice }, in: "<iq type='get' id='c' to='example.com'><command xmlns='" + NS + "' node='echo'/></iq>", cond: "bad-request"},
		{name: "to an account", c: func(e *env) *client { return e.alice }, in: "<iq type='set' id='c' to='alice@example.com'><command xmlns='" + NS + "' node='echo'/></iq>", cond: "service-unavailable"},
		{name: "wrong element", c: func(e *env) *client { return e.alice }, in: "<iq type='set' id='c' to='example.com'><execute xmlns='" + NS + "' node='echo'/></iq>", cond: "service-unavailable"},
		{name: "bad form", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "", "<x xmlns='jabber:x:data' type='bogus'/>"), cond: "bad-request/bad-payload"},
		{name: "form of type result", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "", "<x xmlns='jabber:x:data' type='result'/>"), cond: "bad-request/bad-payload"},
		{name: "cancel form", c: func(e *env) *client { return e.alice }, in: exec("echo", "", "", "<x xmlns='jabber:x:data' type='cancel'/>"), status: StatusCanceled},
		{name: "handler fails", c: func(e *env) *client { return e.alice }, in: exec("broken", "", "", ""), cond: "internal-server-error"},
		{name: "bad default action", c: func(e *env) *client { return e.alice }, in: exec("bad-default", "", "", ""), cond: "internal-server-error"},
		{name: "offers cancel", c: func(e *env) *client { return e.alice }, in: exec("bad-offer", "", "", ""), cond: "internal-server-error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c(e).do(tt.in)
			if tt.cond != "" {
				if r.Type != "error" || r.condition() != tt.cond {
					t.Fatalf("reply %s, want error %s", r.raw, tt.cond)
				}
			} else {
				if r.Type != "result" || r.Command.Status != tt.status || r.Command.Actions != nil || r.Command.XMLName.Space != NS {
					t.Fatalf("reply %s, want %s", r.raw, tt.status)
				}
				if got := r.notes(); !slices.Equal(got, tt.notes) {
					t.Errorf("notes %q, want %q", got, tt.notes)
				}
			}
			if n := e.a.Sessions(); n != 0 {
				t.Errorf("%d sessions left open", n)
			}
		})
	}
}

func TestMultiStage(t *testing.T) {
	e := newEnv(t, Options{})
	alice := e.alice
	// Stage 0: the name form, 'next' only.
	r := alice.do(exec("wizard", "", "execute", ""))
	id := r.Command.SessionID
	if r.Command.Status != StatusExecuting || id == "" || r.actions() != "next: next" || r.Command.X == nil || r.Command.X.Type != "form" {
		t.Fatalf("stage 0: %s", r.raw)
	}
	// Complete is not offered yet; the session survives the refusal.
	if r := alice.do(exec("wizard", id, "complete", "")); r.condition() != "bad-request/bad-action" {
		t.Fatalf("complete at stage 0: %s", r.raw)
	}
	// Another resource of the same account, another node, an unknown id: not this session.
	other := bind(t, e.r, "alice@example.com/laptop")
	if r := other.do(exec("wizard", id, "next", submit("name", "Ann"))); r.condition() != "bad-request/bad-sessionid" {
		t.Fatalf("session used by another resource: %s", r.raw)
	}
	if r := alice.do(exec("echo", id, "next", "")); r.condition() != "bad-request/bad-sessionid" {
		t.Fatalf("session used for another node: %s", r.raw)
	}
	if r := alice.do(exec("wizard", "0123", "next", "")); r.condition() != "bad-request/bad-sessionid" {
		t.Fatalf("unknown session: %s", r.raw)
	}
	// The handler refuses an empty name; the session stays for a corrected form.
	if r := alice.do(exec("wizard", id, "next", submit("name", ""))); r.condition() != "not-acceptable" {
		t.Fatalf("empty name: %s", r.raw)
	}
	// 'execute' means the default action, next.
	r = alice.do(exec("wizard", id, "execute", submit("name", "Ann")))
	if r.Command.Status != StatusExecuting || r.Command.SessionID != id || r.actions() != "complete: prev complete" {
		t.Fatalf("stage 1: %s", r.raw)
	}
	// Back, and forth again.
	if r := alice.do(exec("wizard", id, "prev", "")); r.actions() != "next: next" {
		t.Fatalf("prev: %s", r.raw)
	}
	if r := alice.do(exec("wizard", id, "next", submit("name", "Bea"))); r.actions() != "complete: prev complete" {
		t.Fatalf("next again: %s", r.raw)
	}
	r = alice.do(exec("wizard", id, "complete", submit("color", "blue")))
	if r.Command.Status != StatusCompleted || r.Command.SessionID != id || r.Command.Actions != nil {
		t.Fatalf("complete: %s", r.raw)
	}
	if got := r.notes(); !slices.Equal(got, []string{"info: Bea likes blue"}) {
		t.Errorf("notes %q", got)
	}
	if got := r.field("stage"); !slices.Equal(got, []string{"4"}) {
		t.Errorf("final stage %q, want 4", got)
	}
	// A completed session is gone.
	if r := alice.do(exec("wizard", id, "complete", submit("color", "red"))); r.condition() != "bad-request/bad-sessionid" {
		t.Fatalf("reuse after completion: %s", r.raw)
	}
	if n := e.a.Sessions(); n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, Options{})
	for _, how := range []string{"action", "form"} {
		t.Run(how, func(t *testing.T) {
			id := e.alice.do(exec("wizard", "", "", "")).Command.SessionID
			var r *cmdReply
			if how == "action" {
				r = e.alice.do(exec("wizard", id, "cancel", ""))
			} else {
				r = e.alice.do(exec("wizard", id, "", "<x xmlns='jabber:x:data' type='cancel'/>"))
			}
			if r.Command.Status != StatusCanceled || r.Command.SessionID != id {
				t.Fatalf("cancel: %s", r.raw)
			}
			if r := e.alice.do(exec("wizard", id, "next", submit("name", "x"))); r.condition() != "bad-request/bad-sessionid" {
				t.Fatalf("after cancel: %s", r.raw)
			}
			if n := e.a.Sessions(); n != 0 {
				t.Errorf("%d sessions left", n)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, Options{SessionTTL: time.Minute})
	id := e.alice.do(exec("wizard", "", "", "")).Command.SessionID
	e.clk.advance(59 * time.Second)
	r := e.alice.do(exec("wizard", id, "next", submit("name", "Ann")))
	if r.Command.Status != StatusExecuting {
		t.Fatalf("within the TTL: %s", r.raw)
	}
	// Each stage restarts the TTL.
	e.clk.advance(61 * time.Second)
	if r := e.alice.do(exec("wizard", id, "complete", submit("color", "red"))); r.condition() != "not-allowed/session-expired" {
		t.Fatalf("after the TTL: %s", r.raw)
	}
	if r := e.alice.do(exec("wizard", id, "complete", submit("color", "red"))); r.condition() != "bad-request/bad-sessionid" {
		t.Fatalf("expired session reused: %s", r.raw)
	}
	// Expired sessions do not count against the requester and are swept.
	e.alice.do(exec("wizard", "", "", ""))
	e.clk.advance(3 * time.Minute)
	e.alice.do(exec("echo", "", "", ""))
	if n := e.a.Sessions(); n != 0 {
		t.Errorf("%d sessions left after sweeping", n)
	}
}

func TestSessionBounds(t *testing.T) {
	e := newEnv(t, Options{MaxSessions: 2, MaxTotal: 3})
	for i := 0; i < 2; i++ {
		if r := e.alice.do(exec("wizard", "", "", "")); r.Command.Status != StatusExecuting {
			t.Fatalf("session %d: %s", i, r.raw)
		}
	}
	if r := e.alice.do(exec("wizard", "", "", "")); r.condition() != "resource-constraint" {
		t.Fatalf("third session of one requester: %s", r.raw)
	}
	if r := e.root.do(exec("wizard", "", "", "")); r.Command.Status != StatusExecuting {
		t.Fatalf("another requester: %s", r.raw)
	}
	if r := e.root.do(exec("echo", "", "", "")); r.condition() != "resource-constraint" {
		t.Fatalf("over the total: %s", r.raw)
	}
}
