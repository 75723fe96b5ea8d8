package router

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// IQHandler serves IQ requests (get/set) addressed to the server or to an account, for one payload
// namespace. Returning a *stanza.Error sends that error; any other error is logged and answered with
// internal-server-error. A handler that answers itself returns nil.
type IQHandler interface {
	HandleIQ(ctx context.Context, iq *IQ) error
}

// IQHandlerFunc adapts a function to IQHandler.
type IQHandlerFunc func(ctx context.Context, iq *IQ) error

// HandleIQ calls f.
func (f IQHandlerFunc) HandleIQ(ctx context.Context, iq *IQ) error { return f(ctx, iq) }

// PresenceHandler owns presence (RFC 6121 §3, §4): the router hands it every presence stanza a client
// sends, and tells it when a resource goes away.
type PresenceHandler interface {
	HandlePresence(ctx context.Context, from *Resource, e *xml.Element)
	ResourceGone(ctx context.Context, res *Resource)
}

// Copier makes message carbons (XEP-0280): copies of a one-to-one message for the sender's and the
// recipient's other resources that asked for them. The router finds who gets a copy; the copier decides
// which messages qualify and builds the copies.
type Copier interface {
	// Eligible reports whether a message qualifies for carbons.
	Eligible(e *xml.Element) bool
	// Copy sends res a copy of e (with set applied to it), wrapped as "sent" or "received", from owner,
	// the bare JID of res's account.
	Copy(kind string, owner string, res *Resource, e *xml.Element, set []xml.Attr)
}

// Blocker answers the Blocking Command's question (XEP-0191): does the account owner block contact?
// owner is a bare JID, contact a full, bare or domain JID, both prepared. The router asks on every
// message, so an implementation should answer from memory without allocating.
type Blocker interface {
	Blocks(ctx context.Context, owner, contact []byte) bool
}

// Offline stores messages for accounts with no available resource (XEP-0160).
type Offline interface {
	// StoreOffline stores stanza (with 'from' stamped) for the bare JID owner. A full store returns
	// an error that the router answers with service-unavailable.
	StoreOffline(ctx context.Context, owner string, stanza []byte) error
}

// Accounts tells whether a local account exists.
type Accounts interface {
	UserExists(ctx context.Context, bare string) (bool, error)
}

// Options configure a Router.
type Options struct {
	// Domains are the served XMPP domains (virtual hosts).
	Domains  []string
	Accounts Accounts
	Offline  Offline
	Logger   *slog.Logger
	// Observe, if set, receives the time each client stanza took to route, by kind.
	Observe func(kind string, d time.Duration)
}

// Router holds the bound resources of this node and routes stanzas between them and the features.
type Router struct {
	opts     Options
	log      *slog.Logger
	domains  map[string]struct{}
	iq       map[string]IQHandler
	presence PresenceHandler
	carbons  Copier
	blocker  Blocker

	mu    sync.RWMutex
	users map[string][]*Resource // bare JID → bound resources, in bind order
	count atomic.Int64
}

// New returns a Router. Handlers are registered before the node starts accepting sessions.
func New(opts Options) *Router {
	r := &Router{
		opts:    opts,
		log:     opts.Logger,
		domains: make(map[string]struct{}),
		iq:      make(map[string]IQHandler),
		users:   make(map[string][]*Resource),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, d := range opts.Domains {
		r.domains[d] = struct{}{}
	}
	return r
}

// HandleIQ registers h for IQ requests whose payload is in namespace ns.
func (r *Router) HandleIQ(ns string, h IQHandler) { r.iq[ns] = h }

// HandleCarbons sets the message-carbons copier.
func (r *Router) HandleCarbons(c Copier) { r.carbons = c }

// HandleBlocking sets the blocker that keeps stanzas from passing between an account and the entities
// it blocks (XEP-0191 §3.3).
func (r *Router) HandleBlocking(b Blocker) { r.blocker = b }

// HandlePresence sets the presence handler.
func (r *Router) HandlePresence(h PresenceHandler) { r.presence = h }

// IQNamespaces lists the namespaces that have handlers (service discovery advertises them).
func (r *Router) IQNamespaces() []string {
	ns := make([]string, 0, len(r.iq))
	for k := range r.iq {
		ns = append(ns, k)
	}
	slices.Sort(ns)
	return ns
}

// IsLocalDomain reports whether d is served here.
func (r *Router) IsLocalDomain(d string) bool {
	_, ok := r.domains[d]
	return ok
}

// Domains lists the served domains.
func (r *Router) Domains() []string { return slices.Clone(r.opts.Domains) }

// Bind adds a resource. If a resource with the same full JID is bound, it is replaced and returned so
// that the caller can end it with <conflict/> (RFC 6120 §7.7.2.2); its contacts are told it went away.
func (r *Router) Bind(ctx context.Context, res *Resource) (replaced *Resource) {
	r.mu.Lock()
	list := r.users[res.bare]
	for i, old := range list {
		if old.jid == res.jid {
			list[i] = res
			replaced = old
			break
		}
	}
	if replaced == nil {
		r.users[res.bare] = append(list, res)
		r.count.Add(1)
	}
	r.mu.Unlock()
	if replaced != nil && r.presence != nil {
		r.presence.ResourceGone(ctx, replaced)
	}
	return replaced
}

// Unbind removes a resource that ended and, if it was available, lets the presence handler send its
// unavailable presence. It does nothing for a resource that was replaced.
func (r *Router) Unbind(ctx context.Context, res *Resource) {
	r.mu.Lock()
	list := r.users[res.bare]
	i := slices.Index(list, res)
	if i < 0 {
		r.mu.Unlock()
		return
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(r.users, res.bare)
	} else {
		r.users[res.bare] = list
	}
	r.count.Add(-1)
	r.mu.Unlock()
	if r.presence != nil {
		r.presence.ResourceGone(ctx, res)
	}
}

// Count is the number of bound resources.
func (r *Router) Count() int { return int(r.count.Load()) }

// Resources returns the resources bound for a bare JID.
func (r *Router) Resources(bare string) []*Resource {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.users[bare])
}

// Resource returns the resource bound for a full JID, or nil.
func (r *Router) Resource(full jid.JID) *Resource {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, res := range r.users[full.Bare().String()] {
		if res.jid == full {
			return res
		}
	}
	return nil
}

// Online lists the full JIDs of every bound resource, sorted.
func (r *Router) Online() []string {
	r.mu.RLock()
	out := make([]string, 0, r.count.Load())
	for _, list := range r.users {
		for _, res := range list {
			out = append(out, string(res.full))
		}
	}
	r.mu.RUnlock()
	slices.Sort(out)
	return out
}

// SendToFull delivers raw bytes to one full JID if that resource is bound here, reporting whether it was.
func (r *Router) SendToFull(ctx context.Context, full jid.JID, raw []byte) bool {
	res := r.Resource(full)
	if res == nil {
		return false
	}
	return res.SendRaw(raw) == nil
}

// SendToBare delivers raw bytes to every resource of a bare JID (only the available ones if
// onlyAvailable), returning how many got it.
func (r *Router) SendToBare(ctx context.Context, bare string, raw []byte, onlyAvailable bool) int {
	n := 0
	for _, res := range r.Resources(bare) {
		if onlyAvailable && !res.Available() {
			continue
		}
		if res.SendRaw(raw) == nil {
			n++
		}
	}
	return n
}

// StoreOffline keeps a stanza for a local account's next session (XEP-0160), when offline storage is on.
func (r *Router) StoreOffline(ctx context.Context, owner string, raw []byte) error {
	if r.opts.Offline == nil {
		return errors.New("offline storage is off")
	}
	return r.opts.Offline.StoreOffline(ctx, owner, raw)
}

// UserExists asks the account store.
func (r *Router) UserExists(ctx context.Context, bare string) (bool, error) {
	if r.opts.Accounts == nil {
		return false, nil
	}
	return r.opts.Accounts.UserExists(ctx, bare)
}

var (
	attrFrom = []byte("from")
)

// ErrUnknownStanza is returned by Route for an element that is not a stanza.
var ErrUnknownStanza = errors.New("not a stanza")

// Route routes one stanza sent by a bound client resource. It returns ErrUnknownStanza for anything
// but message, presence and iq, which the caller answers with a stream error.
func (r *Router) Route(ctx context.Context, from *Resource, e *xml.Element) error {
	var start time.Time
	if r.opts.Observe != nil {
		start = time.Now()
	}
	var kind string
	switch string(e.Name()) {
	case "message":
		kind = "message"
		r.routeMessage(ctx, from, e)
	case "presence":
		kind = "presence"
		if r.presence != nil {
			r.presence.HandlePresence(ctx, from, e)
		}
	case "iq":
		kind = "iq"
		r.routeIQ(ctx, from, e)
	default:
		return ErrUnknownStanza
	}
	if r.opts.Observe != nil {
		r.opts.Observe(kind, time.Since(start))
	}
	return nil
}

// replyError sends a stanza error back to the sender of e.
func (r *Router) replyError(from *Resource, e *xml.Element, serr *stanza.Error) {
	if string(e.Attr("type")) == "error" {
		return // never answer an error with an error (RFC 6120 §8.3.1)
	}
	reply := serr.AppendReply(nil, string(e.Name()), string(e.Attr("id")), string(e.Attr("to")), string(from.full), nil)
	from.SendRaw(reply)
}
