// Package adhoc runs Ad-Hoc Commands (XEP-0050): commands a client discovers through service
// discovery (disco#items of the node http://jabber.org/protocol/commands) and executes, in one or
// several stages, exchanging data forms (XEP-0004, package dataform).
//
// A command is a Handler called once per stage. A multi-stage command runs in a session: the first
// response carries a sessionid, every later request must come from the same full JID with that
// sessionid, may only use the actions the previous stage offered, and must arrive before the session
// expires. Commands marked AdminOnly are listed to, and run for, the configured admins only; anyone
// else does not see them in disco and gets forbidden if they try. The operator's commands of XEP-0133
// are in the admin subpackage.
//
// Try it as an admin: <iq type='set' to='example.com' id='c1'><command xmlns='http://jabber.org/protocol/commands'
// node='http://jabber.org/protocol/admin#get-registered-users-num' action='execute'/></iq>.
package adhoc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/starling-xmpp/starling/node/im/adhoc/dataform"
	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NS is the XEP-0050 namespace, which is also the disco node listing the commands.
const NS = "http://jabber.org/protocol/commands"

// Actions (XEP-0050 §3.4).
const (
	ActionExecute  = "execute"
	ActionCancel   = "cancel"
	ActionPrev     = "prev"
	ActionNext     = "next"
	ActionComplete = "complete"
)

// Statuses of a command response.
const (
	StatusExecuting = "executing"
	StatusCompleted = "completed"
	StatusCanceled  = "canceled"
)

// Note types.
const (
	NoteInfo  = "info"
	NoteWarn  = "warn"
	NoteError = "error"
)

// Defaults of Options.
const (
	DefaultSessionTTL  = 10 * time.Minute
	DefaultMaxSessions = 8
	DefaultMaxTotal    = 4096
)

// Note is a note to the requester in a response.
type Note struct {
	Type string // NoteInfo (the default when empty), NoteWarn or NoteError
	Text string
}

// Request is one stage of a command's execution.
type Request struct {
	From   jid.JID // the requester's full JID
	To     jid.JID // the domain the command was sent to
	Admin  bool    // the requester is a configured admin
	Action string  // ActionExecute on the first stage; later the action chosen (next, prev or complete)
	Stage  int     // 0 on the first request, then 1, 2, ...
	Form   *dataform.Form
	State  any // the State of the previous stage's Response
}

// Response is what a stage answers. A Response with no Actions completes the command; one with
// Actions keeps the session open for the next stage.
type Response struct {
	Form    *dataform.Form
	Notes   []Note
	Actions []string // offered for the next stage: a subset of prev, next, complete
	Default string   // what 'execute' means in the next stage; "" means the last of Actions
	State   any      // handed to the next stage
}

// Handler runs the stages of one command. Returning a *stanza.Error sends it (the session, if
// any, stays open so that the requester can correct the form); any other error is logged and
// answered with internal-server-error.
type Handler interface {
	Execute(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// Execute calls f.
func (f HandlerFunc) Execute(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// Command is a command the server offers.
type Command struct {
	Node      string // unique; conventionally a URI
	Name      string // shown in the command list
	AdminOnly bool
	Handler   Handler
}

// Options configure a Service.
type Options struct {
	// Admins are the bare JIDs allowed to run AdminOnly commands.
	Admins []jid.JID
	// SessionTTL is how long a multi-stage session waits for its next stage (default 10 minutes).
	SessionTTL time.Duration
	// MaxSessions bounds the open sessions of one full JID (default 8), MaxTotal those of everyone
	// (default 4096): a client cannot make the server hold unbounded state.
	MaxSessions, MaxTotal int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service executes commands and lists them in service discovery.
type Service struct {
	opts   Options
	log    *slog.Logger
	admins map[string]struct{}

	mu       sync.Mutex
	cmds     []*Command
	byNode   map[string]*Command
	sessions map[string]*session
}

// session is the state of a multi-stage execution between two stages.
type session struct {
	node    string
	owner   string // full JID
	stage   int
	actions []string
	def     string
	state   any
	expires time.Time
}

// New returns a Service with no commands.
func New(opts Options) *Service {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxTotal <= 0 {
		opts.MaxTotal = DefaultMaxTotal
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{opts: opts, log: opts.Logger, admins: make(map[string]struct{}),
		byNode: make(map[string]*Command), sessions: make(map[string]*session)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, a := range opts.Admins {
		s.admins[a.Bare().String()] = struct{}{}
	}
	return s
}

// Add adds commands; a node that is empty or already taken, or a command without handler, is an
// error and nothing is added.
func (s *Service) Add(cmds ...Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool)
	for _, c := range cmds {
		switch {
		case c.Node == "" || c.Handler == nil:
			return fmt.Errorf("adhoc: command %q needs a node and a handler", c.Name)
		case s.byNode[c.Node] != nil || seen[c.Node]:
			return fmt.Errorf("adhoc: command node %q added twice", c.Node)
		}
		seen[c.Node] = true
	}
	for _, c := range cmds {
		s.cmds = append(s.cmds, &c)
		s.byNode[c.Node] = &c
	}
	return nil
}

// Register makes r send command executions to s and lists the commands in d: the command list
// node and one node per command.
func (s *Service) Register(r *router.Router, d *disco.Service) {
	r.HandleIQ(NS, s)
	d.HandleNode(NS, listNode{s})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cmds {
		d.HandleNode(c.Node, cmdNode{s, c})
	}
}

func (s *Service) isAdmin(bare string) bool {
	_, ok := s.admins[bare]
	return ok
}

// allowed lists the commands the requester may run, in the order added.
func (s *Service) allowed(admin bool) []*Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Command
	for _, c := range s.cmds {
		if admin || !c.AdminOnly {
			out = append(out, c)
		}
	}
	return out
}

// listNode is the disco node listing the commands (XEP-0050 §2.2).
type listNode struct{ s *Service }

func (n listNode) DiscoInfo(context.Context, *disco.Request) (disco.Info, error) {
	return disco.Info{
		Identities: []disco.Identity{{Category: "automation", Type: "command-list"}},
		Features:   []string{disco.NSItems},
	}, nil
}

func (n listNode) DiscoItems(_ context.Context, req *disco.Request) ([]disco.Item, error) {
	var items []disco.Item
	for _, c := range n.s.allowed(req.Admin) {
		items = append(items, disco.Item{JID: req.To.String(), Node: c.Node, Name: c.Name})
	}
	return items, nil
}

// cmdNode is the disco node of one command (XEP-0050 §2.3); it does not exist for those who may
// not run the command.
type cmdNode struct {
	s *Service
	c *Command
}

func (n cmdNode) DiscoInfo(_ context.Context, req *disco.Request) (disco.Info, error) {
	if n.c.AdminOnly && !req.Admin {
		return disco.Info{}, stanza.New(stanza.ItemNotFound, "no such node")
	}
	return disco.Info{
		Identities: []disco.Identity{{Category: "automation", Type: "command-node", Name: n.c.Name}},
		Features:   []string{NS, dataform.NS},
	}, nil
}

func (n cmdNode) DiscoItems(_ context.Context, req *disco.Request) ([]disco.Item, error) {
	if n.c.AdminOnly && !req.Admin {
		return nil, stanza.New(stanza.ItemNotFound, "no such node")
	}
	return nil, nil
}

// commandError is an error of XEP-0050 §4.6: a general condition with a specific one of the
// commands namespace.
func commandError(general stanza.Condition, specific, text string) *stanza.Error {
	e := stanza.New(general, text)
	e.App = []byte("<" + specific + " xmlns='" + NS + "'/>")
	return e
}

// Errors of XEP-0050 §4.6.
var (
	errMalformedAction = func(a string) *stanza.Error {
		return commandError(stanza.BadRequest, "malformed-action", fmt.Sprintf("%q is not an action", a))
	}
	errBadAction = func(a string) *stanza.Error {
		return commandError(stanza.BadRequest, "bad-action", fmt.Sprintf("action %q is not offered at this stage", a))
	}
	errBadSessionID = func() *stanza.Error {
		return commandError(stanza.BadRequest, "bad-sessionid", "no such session for this command and requester")
	}
	errSessionExpired = func() *stanza.Error {
		return commandError(stanza.NotAllowed, "session-expired", "the session expired")
	}
	errBadPayload = func(err error) *stanza.Error {
		return commandError(stanza.BadRequest, "bad-payload", err.Error())
	}
)

// HandleIQ implements router.IQHandler.
func (s *Service) HandleIQ(ctx context.Context, q *router.IQ) error {
	if !q.Payload.Is(NS, "command") {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	// Commands are the server's; accounts have none that the server runs for them.
	if !q.ToServer() {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if q.Type != "set" {
		return stanza.New(stanza.BadRequest, "commands are executed with iq set")
	}
	node := string(q.Payload.Attr("node"))
	s.mu.Lock()
	cmd := s.byNode[node]
	s.mu.Unlock()
	if cmd == nil {
		return stanza.New(stanza.ItemNotFound, "no such command")
	}
	admin := s.isAdmin(q.From.Bare())
	if cmd.AdminOnly && !admin {
		return stanza.New(stanza.Forbidden, "this command is for administrators")
	}
	action := string(q.Payload.Attr("action"))
	switch action {
	case "":
		action = ActionExecute
	case ActionExecute, ActionCancel, ActionPrev, ActionNext, ActionComplete:
	default:
		return errMalformedAction(action)
	}
	var form *dataform.Form
	if x := q.Payload.Child(dataform.NS, "x"); x != nil {
		var err error
		if form, err = dataform.Parse(x); err != nil {
			return errBadPayload(err)
		}
		if form.Type == dataform.TypeCancel {
			action = ActionCancel
		} else if form.Type != dataform.TypeSubmit {
			return errBadPayload(fmt.Errorf("a form sent to a command has type submit or cancel, not %s", form.Type))
		}
	}
	owner := string(q.From.Full())
	req := &Request{From: q.From.JID(), To: q.To, Admin: admin, Action: action, Form: form}
	id := string(q.Payload.Attr("sessionid"))
	var sess *session
	if id == "" {
		switch action {
		case ActionCancel:
			return q.Result(appendCommand(nil, node, "", StatusCanceled, nil))
		case ActionExecute:
		default:
			return errBadAction(action)
		}
		var err error
		if id, err = s.reserve(owner); err != nil {
			return err
		}
	} else {
		var err error
		if sess, err = s.take(id, owner, node); err != nil {
			return err
		}
		if action == ActionCancel {
			s.release(id, nil)
			return q.Result(appendCommand(nil, node, id, StatusCanceled, nil))
		}
		if action == ActionExecute {
			action = sess.def
		}
		if !slices.Contains(sess.actions, action) {
			s.put(id, sess)
			return errBadAction(action)
		}
		req.Action, req.Stage, req.State = action, sess.stage+1, sess.state
	}
	resp, err := cmd.Handler.Execute(ctx, req)
	if err != nil {
		s.release(id, sess)
		var serr *stanza.Error
		if !errors.As(err, &serr) {
			err = fmt.Errorf("command %s: %w", node, err)
		}
		return err
	}
	if resp == nil {
		resp = &Response{}
	}
	status := StatusCompleted
	if len(resp.Actions) > 0 {
		def := resp.Default
		if def == "" {
			def = resp.Actions[len(resp.Actions)-1]
		}
		for _, a := range resp.Actions {
			if a != ActionPrev && a != ActionNext && a != ActionComplete {
				s.release(id, nil)
				return fmt.Errorf("command %s offers action %q", node, a)
			}
		}
		if !slices.Contains(resp.Actions, def) {
			s.release(id, nil)
			return fmt.Errorf("command %s: default action %q is not offered", node, def)
		}
		status = StatusExecuting
		s.put(id, &session{node: node, owner: owner, stage: req.Stage, actions: resp.Actions, def: def,
			state: resp.State, expires: s.opts.Now().Add(s.opts.SessionTTL)})
	} else {
		s.release(id, nil)
	}
	return q.Result(appendCommand(nil, node, id, status, resp))
}

// reserve allocates a session id for a new execution, refusing one that would exceed the bounds.
// The slot is held (as a nil session) until put or release.
func (s *Service) reserve(owner string) (string, error) {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := 0
	for k, v := range s.sessions {
		switch {
		case v == nil:
			continue
		case now.After(v.expires.Add(s.opts.SessionTTL)):
			// Expired sessions linger for one more TTL, so that a late client learns its
			// session expired rather than that it never existed.
			delete(s.sessions, k)
		case v.owner == owner && !now.After(v.expires):
			mine++
		}
	}
	if mine >= s.opts.MaxSessions || len(s.sessions) >= s.opts.MaxTotal {
		return "", stanza.New(stanza.ResourceConstraint, "too many command sessions are open")
	}
	s.sessions[id] = nil
	return id, nil
}

// take removes the session id from the table for one stage. While a stage runs, the session is
// absent: a second request for it at the same time gets bad-sessionid rather than racing.
func (s *Service) take(id, owner, node string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	if sess == nil || sess.owner != owner || sess.node != node {
		return nil, errBadSessionID()
	}
	delete(s.sessions, id)
	if s.opts.Now().After(sess.expires) {
		return nil, errSessionExpired()
	}
	s.sessions[id] = nil // hold the id while the stage runs
	return sess, nil
}

// put stores the session for its next stage.
func (s *Service) put(id string, sess *session) {
	s.mu.Lock()
	s.sessions[id] = sess
	s.mu.Unlock()
}

// release ends a stage that failed or completed: a continued session is restored as it was (the
// requester may correct the form and retry), a new one forgotten.
func (s *Service) release(id string, restore *session) {
	s.mu.Lock()
	if restore != nil {
		s.sessions[id] = restore
	} else {
		delete(s.sessions, id)
	}
	s.mu.Unlock()
}

// Sessions reports how many command sessions are open (for tests and metrics).
func (s *Service) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// appendCommand appends a <command/> response.
func appendCommand(dst []byte, node, id, status string, resp *Response) []byte {
	b := xml.NewBuilder(dst)
	attrs := []string{"xmlns", NS, "node", node}
	if id != "" {
		attrs = append(attrs, "sessionid", id)
	}
	b.Start("command", append(attrs, "status", status)...)
	if resp != nil {
		if status == StatusExecuting {
			def := resp.Default
			if def == "" {
				def = resp.Actions[len(resp.Actions)-1]
			}
			b.Start("actions", "execute", def)
			for _, a := range resp.Actions {
				b.Start(a)
				b.End()
			}
			b.End()
		}
		for _, n := range resp.Notes {
			t := n.Type
			if t == "" {
				t = NoteInfo
			}
			b.Start("note", "type", t)
			b.Text(n.Text)
			b.End()
		}
		if resp.Form != nil {
			b.Raw(resp.Form.Append(nil))
		}
	}
	b.End()
	return b.Bytes()
}
