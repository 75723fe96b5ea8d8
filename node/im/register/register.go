// Package register is In-Band Registration (XEP-0077): creating an account from a client that has not
// logged in yet, and, once logged in, changing the account's password or cancelling the account.
//
// It is off by default: an open server that lets anyone create accounts attracts spam bots. When off,
// nothing of it is advertised (no stream feature, no disco feature: the router has no handler for the
// namespace) and every request gets service-unavailable. Bounding how fast one address may register is
// the client listener's job, which already bounds authentication attempts per address.
//
// Try it (with 'vhost-register-enabled' = true): before authenticating, send
// <iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>juliet</username><password>s3cret</password></query></iq>.
package register

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/starling-xmpp/starling/node/accounts"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NS is the XEP-0077 namespace; FeatureNS names the stream feature the listener advertises.
const (
	NS        = "jabber:iq:register"
	FeatureNS = "http://jabber.org/features/iq-register"
)

// MaxPasswordBytes bounds a password: credentials are derived from it with PBKDF2, and nobody types
// a kilobyte.
const MaxPasswordBytes = 1024

// Accounts is the part of node/accounts registration uses.
type Accounts interface {
	Create(ctx context.Context, account jid.JID, password string) error
	SetPassword(ctx context.Context, account jid.JID, password string) error
	Delete(ctx context.Context, account jid.JID) error
}

// Sessions finds the sessions to end when an account is cancelled; *router.Router implements it.
type Sessions interface {
	Resources(bare string) []*router.Resource
}

// Options configure a Service.
type Options struct {
	// Enabled turns registration on ('vhost-register-enabled').
	Enabled  bool
	Accounts Accounts
	Sessions Sessions
	// Instructions are shown to a client asking how to register; "" means a default text.
	Instructions string
	Logger       *slog.Logger
}

// Service serves jabber:iq:register before and after authentication.
type Service struct {
	opts Options
	log  *slog.Logger
}

// New checks opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Enabled && (opts.Accounts == nil || opts.Sessions == nil) {
		return nil, errors.New("register: Accounts and Sessions are required when registration is enabled")
	}
	if opts.Instructions == "" {
		opts.Instructions = "Choose a username and password to register with this server."
	}
	s := &Service{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Enabled reports whether registration is offered: the listener advertises the stream feature
// (FeatureNS) exactly when it is.
func (s *Service) Enabled() bool { return s.opts.Enabled }

// Register installs the authenticated-client handler in r when registration is enabled; when it is
// off the namespace stays unhandled, so it is neither advertised nor served.
func (s *Service) Register(r *router.Router) {
	if s.opts.Enabled {
		r.HandleIQ(NS, s)
	}
}

// request is a parsed jabber:iq:register query.
type request struct {
	remove      bool
	onlyRemove  bool // <remove/> is the query's only child
	username    string
	hasUsername bool
	password    string
	hasPassword bool
}

func parseQuery(q *xml.Element) request {
	var r request
	n := 0
	for c := q.FirstChild(); c != nil; c = c.NextSibling() {
		n++
		if string(c.Space()) != NS {
			continue
		}
		switch string(c.Name()) {
		case "remove":
			r.remove = true
		case "username":
			r.username, r.hasUsername = string(c.Text()), true
		case "password":
			r.password, r.hasPassword = string(c.Text()), true
		}
	}
	r.onlyRemove = r.remove && n == 1
	return r
}

// checkPassword says what is wrong with a new password, or returns "".
func checkPassword(p string) string {
	switch {
	case p == "":
		return "the password is empty"
	case len(p) > MaxPasswordBytes:
		return fmt.Sprintf("the password is longer than %d bytes", MaxPasswordBytes)
	case !utf8.ValidString(p):
		return "the password is not UTF-8"
	}
	return ""
}

// HandleUnauthenticated answers a jabber:iq:register iq from a client that has not authenticated,
// on a stream to domain, and returns the whole reply stanza (nil for an iq result or error, which is
// never answered).
func (s *Service) HandleUnauthenticated(ctx context.Context, domain string, e *xml.Element) []byte {
	id := string(e.Attr("id"))
	typ := string(e.Attr("type"))
	fail := func(c stanza.Condition, text string) []byte {
		return stanza.New(c, text).AppendReply(nil, "iq", id, "", "", nil)
	}
	switch typ {
	case "result", "error":
		return nil
	case "get", "set":
	default:
		return fail(stanza.BadRequest, "an iq needs type get, set, result or error")
	}
	if !s.opts.Enabled {
		return fail(stanza.ServiceUnavailable, "")
	}
	if id == "" {
		return fail(stanza.BadRequest, "an iq needs an id")
	}
	q := e.FirstChild()
	if q == nil || q.NextSibling() != nil || !q.Is(NS, "query") {
		return fail(stanza.BadRequest, "expected one <query xmlns='"+NS+"'/>")
	}
	if typ == "get" {
		var b xml.Builder
		b.Start("iq", "type", "result", "id", id)
		b.Start("query", "xmlns", NS)
		b.Start("instructions")
		b.Text(s.opts.Instructions)
		b.End()
		b.Start("username")
		b.End()
		b.Start("password")
		b.End()
		b.End()
		b.End()
		return b.Bytes()
	}
	req := parseQuery(q)
	if req.remove {
		return fail(stanza.NotAuthorized, "log in to cancel an account")
	}
	if !req.hasUsername || req.username == "" || !req.hasPassword {
		return fail(stanza.NotAcceptable, "a username and a password are required")
	}
	if msg := checkPassword(req.password); msg != "" {
		return fail(stanza.NotAcceptable, msg)
	}
	account, err := jid.New(req.username, domain, "")
	if err != nil {
		return fail(stanza.NotAcceptable, "the username is not valid: "+err.Error())
	}
	switch err := s.opts.Accounts.Create(ctx, account, req.password); {
	case errors.Is(err, accounts.ErrExists):
		return fail(stanza.Conflict, "the username is taken")
	case err != nil:
		s.log.Error("in-band registration failed", "account", account.String(), "err", err)
		return fail(stanza.InternalServerError, "")
	}
	s.log.Info("account registered in-band", "account", account.String())
	var b xml.Builder
	b.Start("iq", "type", "result", "id", id)
	b.End()
	return b.Bytes()
}

// HandleIQ implements router.IQHandler for authenticated clients: read the registration, change
// the password (XEP-0077 §3.3), cancel the account (§3.2).
func (s *Service) HandleIQ(ctx context.Context, q *router.IQ) error {
	if !q.Payload.Is(NS, "query") {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	account := q.From.JID().Bare()
	// Registration is with the user's own server: a request to another account, or to another
	// served domain, is not something this server registers for.
	if !(q.ToOwnAccount() || q.ToServer() && q.To.Domain() == account.Domain()) {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if q.Type == "get" {
		var b xml.Builder
		b.Start("query", "xmlns", NS)
		b.Start("registered")
		b.End()
		b.Start("username")
		b.Text(account.Local())
		b.End()
		b.End()
		return q.Result(b.Bytes())
	}
	req := parseQuery(q.Payload)
	switch {
	case req.remove:
		if !req.onlyRemove {
			return stanza.New(stanza.BadRequest, "<remove/> must be the only child of the query")
		}
		return s.cancel(ctx, q, account)
	case req.hasUsername && req.hasPassword:
		user, err := jid.New(req.username, account.Domain(), "")
		if err != nil || user != account {
			return stanza.New(stanza.BadRequest, "the username is not that of the logged-in account")
		}
		if msg := checkPassword(req.password); msg != "" {
			return stanza.New(stanza.NotAcceptable, msg)
		}
		if err := s.opts.Accounts.SetPassword(ctx, account, req.password); err != nil {
			return fmt.Errorf("in-band password change: %w", err)
		}
		s.log.Info("password changed in-band", "account", account.String())
		return q.Result(nil)
	}
	return stanza.New(stanza.BadRequest, "a password change needs <username/> and <password/>")
}

// cancel deletes the account, answers, and ends every session of it: they are authenticated as an
// account that no longer exists.
func (s *Service) cancel(ctx context.Context, q *router.IQ, account jid.JID) error {
	if err := s.opts.Accounts.Delete(ctx, account); err != nil {
		return fmt.Errorf("in-band account cancellation: %w", err)
	}
	s.log.Info("account cancelled in-band", "account", account.String())
	err := q.Result(nil)
	for _, res := range s.opts.Sessions.Resources(account.String()) {
		res.Close("not-authorized", "the account was removed")
	}
	return err
}
