// Package blocking serves the Blocking Command (XEP-0191, urn:xmpp:blocking): a user keeps a list of
// JIDs it does not want to hear from or talk to, reads it with <blocklist/>, adds to it with <block/>,
// and removes from it with <unblock/> (an empty <unblock/> empties it).
//
// The [Handler] is both the IQ handler and the router's blocker ([Handler.Blocks]): the router refuses
// stanzas between an account and the entities it blocks (XEP-0191 §3.3, with the JID matching of
// XEP-0016 §2.1: a bare JID blocks its resources, a domain everyone there), and the presence handler
// filters broadcasts, directed presence, probes and subscription requests with the same call.
//
// Each account's list is ONE document in the account's document store (kind "blocklist", key ""),
// the <blocklist/> a get returns, and is cached in memory from its first use: the router asks on
// every message, and a map lookup is what it can afford. Changes go to storage first and to the cache
// after, so a failed write changes nothing.
//
// A resource that asked for the list is "interested" and gets a push (an iq set carrying the
// <block/> or <unblock/>) for every change made from any resource of its account. Blocking a
// contact sends it unavailable presence from the account's available resources, when it could see
// their presence; unblocking sends their current presence to those subscribed to it (§3.3, §3.4).
//
// Try it: <iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='romeo@example.com'/>
// </block></iq>, then send a message from romeo: it comes back with service-unavailable; a message to
// him comes back with not-acceptable and <blocked xmlns='urn:xmpp:blocking:errors'/>.
package blocking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Namespaces of XEP-0191.
const (
	NS       = "urn:xmpp:blocking"
	NSErrors = "urn:xmpp:blocking:errors"
)

// Kind is the document kind that holds an account's blocklist; its key is "".
const Kind = "blocklist"

// BlockedApp is the application error condition sent with not-acceptable when a user addresses an
// entity it blocks (XEP-0191 §3.3).
const BlockedApp = "<blocked xmlns='" + NSErrors + "'/>"

// MaxItems bounds one list. The 64 KiB document bound alone would let a list of short JIDs grow to
// thousands, each a map entry in memory for as long as the node runs; people block tens.
const MaxItems = 1000

// Store is the storage the handler needs: the account's documents.
type Store interface {
	Document(ctx context.Context, owner, kind, key string) ([]byte, error)
	PutDocument(ctx context.Context, owner, kind, key string, xml []byte) error
	DeleteDocument(ctx context.Context, owner, kind, key string) error
}

// Accounts tells whether an account exists; a list is cached only for accounts that do.
type Accounts interface {
	UserExists(ctx context.Context, bare string) (bool, error)
}

// Sessions gives the bound resources of an account, to push changes to.
type Sessions interface {
	Resources(bare string) []*router.Resource
}

// Presence sends the presence that a change of the list implies (XEP-0191 §3.3, §3.4);
// *presence.Handler implements it.
type Presence interface {
	// Hide sends unavailable presence from owner's available resources to the entities that could see
	// them and for which match reports true.
	Hide(ctx context.Context, owner string, match func(contact string) bool)
	// Show sends owner's current presence to the subscribers for which match reports true.
	Show(ctx context.Context, owner string, match func(contact string) bool)
}

// Options configure a Handler.
type Options struct {
	Store    Store    // required
	Accounts Accounts // required
	Sessions Sessions // required
	Logger   *slog.Logger
	// LoadTimeout bounds the storage read that fills the cache for an account when a stanza needs
	// its list; 0 means 5 s.
	LoadTimeout time.Duration
}

// Handler serves urn:xmpp:blocking and answers the router's and presence's "does owner block contact".
type Handler struct {
	opts     Options
	log      *slog.Logger
	presence Presence      // set by SetPresence; nil sends no presence on changes
	push     atomic.Uint64 // push id counter

	mu       sync.RWMutex
	accounts map[string]*account // bare JID → cached list, for existing accounts
}

// account is the cached state of one account.
type account struct {
	list atomic.Pointer[List] // read without a lock on every stanza

	mu         sync.Mutex         // serialises changes, guards interested
	interested []*router.Resource // resources that asked for the list (pruned to those still bound)
}

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Store == nil || opts.Accounts == nil || opts.Sessions == nil {
		return nil, errors.New("blocking: Store, Accounts and Sessions are required")
	}
	if opts.LoadTimeout <= 0 {
		opts.LoadTimeout = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, log: log, accounts: make(map[string]*account)}, nil
}

// Register makes r serve the blocking command (its namespace then shows in service discovery) and
// enforce the lists.
func (h *Handler) Register(r *router.Router) {
	r.HandleIQ(NS, h)
	r.HandleBlocking(h)
}

// SetPresence sets what sends the presence a change implies. It is a setter rather than an option
// because the presence handler asks this one whether a contact is blocked: one of the two is made
// first. Call it before the node serves sessions.
func (h *Handler) SetPresence(p Presence) { h.presence = p }

var _ router.Blocker = (*Handler)(nil)

// Blocks implements router.Blocker: it reports whether the account owner (a bare JID) blocks
// contact (a full, bare or domain JID), both prepared. For an account whose list is cached it takes
// a read lock and allocates nothing. Otherwise it reads the list from storage; if that fails, the
// failure is logged and nothing is blocked: refusing every stanza for a storage hiccup would cut users
// off, and the next stanza tries again.
func (h *Handler) Blocks(ctx context.Context, owner, contact []byte) bool {
	h.mu.RLock()
	a := h.accounts[string(owner)]
	h.mu.RUnlock()
	if a == nil {
		var err error
		if a, err = h.load(ctx, string(owner)); err != nil {
			h.log.Warn("blocklist unavailable; not blocking", "owner", string(owner), "err", err)
			return false
		}
		if a == nil {
			return false // no such account
		}
	}
	return a.list.Load().Blocks(contact)
}

// List returns owner's list, reading it from storage on first use.
func (h *Handler) List(ctx context.Context, owner string) (*List, error) {
	a, err := h.account(ctx, owner)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("blocklist of %s: %w", owner, storage.ErrNotFound)
	}
	return a.list.Load(), nil
}

// account returns owner's cached state, loading it on first use; nil, nil for no such account.
func (h *Handler) account(ctx context.Context, owner string) (*account, error) {
	h.mu.RLock()
	a := h.accounts[owner]
	h.mu.RUnlock()
	if a != nil {
		return a, nil
	}
	return h.load(ctx, owner)
}

// load reads owner's list from storage and caches it, unless another goroutine cached it first (then
// that one wins: it may already carry a change). Storage answers "not found" both for an account
// without a list and for no account at all; only the first is cached, so that stanzas to made-up
// names do not fill memory.
func (h *Handler) load(ctx context.Context, owner string) (*account, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.LoadTimeout)
	defer cancel()
	l := empty
	doc, err := h.opts.Store.Document(ctx, owner, Kind, "")
	switch {
	case err == nil:
		if l, err = ParseList(doc); err != nil {
			return nil, fmt.Errorf("read blocklist of %s: %w", owner, err)
		}
	case errors.Is(err, storage.ErrNotFound):
		exists, err := h.opts.Accounts.UserExists(ctx, owner)
		if err != nil {
			return nil, fmt.Errorf("read blocklist of %s: %w", owner, err)
		}
		if !exists {
			return nil, nil
		}
	default:
		return nil, fmt.Errorf("read blocklist of %s: %w", owner, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if a := h.accounts[owner]; a != nil {
		return a, nil
	}
	a := &account{}
	a.list.Store(l)
	h.accounts[owner] = a
	return a, nil
}

// Forget drops owner's cached list (when the account is deleted), so that an account created later
// with the same name starts with an empty one.
func (h *Handler) Forget(owner string) {
	h.mu.Lock()
	delete(h.accounts, owner)
	h.mu.Unlock()
}

// HandleIQ implements router.IQHandler.
func (h *Handler) HandleIQ(ctx context.Context, q *router.IQ) error {
	if !q.ToOwnAccount() {
		return stanza.New(stanza.Forbidden, "a blocklist belongs to its account alone")
	}
	owner := q.From.Bare()
	switch {
	case q.Type == "get" && q.Payload.Is(NS, "blocklist"):
		return h.get(ctx, q, owner)
	case q.Type == "set" && q.Payload.Is(NS, "block"):
		js, err := requestItems(q)
		if err != nil {
			return err
		}
		if len(js) == 0 {
			return stanza.New(stanza.BadRequest, "a <block/> needs at least one <item/>")
		}
		return h.change(ctx, q, owner, true, js)
	case q.Type == "set" && q.Payload.Is(NS, "unblock"):
		js, err := requestItems(q)
		if err != nil {
			return err
		}
		return h.change(ctx, q, owner, false, js)
	}
	return stanza.New(stanza.BadRequest, "urn:xmpp:blocking takes a get of <blocklist/> or a set of <block/> or <unblock/>")
}

// requestItems reads and prepares the items of a block or unblock, without duplicates.
func requestItems(q *router.IQ) ([]string, error) {
	js, err := items(q.Payload)
	if err != nil {
		return nil, stanza.New(stanza.JIDMalformed, err.Error())
	}
	out := js[:0]
	for _, j := range js {
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out, nil
}

// get answers with the list and marks the resource as interested in pushes (XEP-0191 §3.2).
func (h *Handler) get(ctx context.Context, q *router.IQ, owner string) error {
	a, err := h.account(ctx, owner)
	if err != nil {
		return err
	}
	if a == nil {
		return stanza.New(stanza.ItemNotFound, "the account no longer exists")
	}
	a.mu.Lock()
	a.interested = h.prune(owner, a.interested)
	if !slices.Contains(a.interested, q.From) {
		a.interested = append(a.interested, q.From)
	}
	l := a.list.Load()
	a.mu.Unlock()
	return q.Result(l.Encode())
}

// prune keeps the resources that are still bound, so that the interested set of an account does not
// grow with every session it ever had. Called with the account's lock held.
func (h *Handler) prune(owner string, list []*router.Resource) []*router.Resource {
	if len(list) == 0 {
		return list
	}
	bound := h.opts.Sessions.Resources(owner)
	return slices.DeleteFunc(list, func(r *router.Resource) bool { return !slices.Contains(bound, r) })
}

// change blocks (block true) or unblocks js, an empty js with unblock meaning everyone (§3.5); it
// stores the new list, answers, pushes the change and sends the presence it implies.
func (h *Handler) change(ctx context.Context, q *router.IQ, owner string, block bool, js []string) error {
	a, err := h.account(ctx, owner)
	if err != nil {
		return err
	}
	if a == nil {
		return stanza.New(stanza.ItemNotFound, "the account no longer exists")
	}
	a.mu.Lock()
	old := a.list.Load()
	var next []string
	if block {
		next = old.JIDs()
		for _, j := range js {
			if !old.Contains(j) {
				next = append(next, j)
			}
		}
		if len(next) > MaxItems {
			a.mu.Unlock()
			return stanza.New(stanza.ResourceConstraint, "a blocklist holds at most "+strconv.Itoa(MaxItems)+" JIDs")
		}
	} else if len(js) > 0 {
		next = slices.DeleteFunc(old.JIDs(), func(j string) bool { return slices.Contains(js, j) })
	}
	l := newList(next)
	if err := h.store(ctx, owner, old, l); err != nil {
		a.mu.Unlock()
		return err
	}
	a.list.Store(l)
	a.interested = h.prune(owner, a.interested)
	interested := slices.Clone(a.interested)
	a.mu.Unlock()

	if err := q.Result(nil); err != nil {
		h.log.Debug("blocking result not queued", "to", string(q.From.Full()), "err", err)
	}
	name := "block"
	if !block {
		name = "unblock"
	}
	h.pushTo(interested, name, js)
	if h.presence == nil {
		return nil
	}
	// Only those whose standing changed: a contact already blocked saw the unavailable presence then,
	// and one still blocked by another item (its domain, say) must not see presence now.
	if block {
		h.presence.Hide(ctx, owner, func(c string) bool { return l.Blocks([]byte(c)) && !old.Blocks([]byte(c)) })
	} else {
		h.presence.Show(ctx, owner, func(c string) bool { return old.Blocks([]byte(c)) && !l.Blocks([]byte(c)) })
	}
	return nil
}

// store writes l in place of old: the document, or its deletion when l is empty.
func (h *Handler) store(ctx context.Context, owner string, old, l *List) error {
	if l.Len() == 0 {
		if old.Len() == 0 {
			return nil
		}
		if err := h.opts.Store.DeleteDocument(ctx, owner, Kind, ""); err != nil {
			return fmt.Errorf("delete blocklist of %s: %w", owner, err)
		}
		return nil
	}
	err := h.opts.Store.PutDocument(ctx, owner, Kind, "", l.Encode())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrTooLarge):
		return stanza.New(stanza.ResourceConstraint, "the blocklist would be larger than "+strconv.Itoa(storage.MaxDocumentBytes)+" bytes")
	case errors.Is(err, storage.ErrNotFound):
		return stanza.New(stanza.ItemNotFound, "the account no longer exists")
	}
	return fmt.Errorf("store blocklist of %s: %w", owner, err)
}

// pushTo sends each interested resource the change as an iq set (XEP-0191 §3.3, §3.4); like a roster
// push it has no 'from', which clients take as coming from their own account.
func (h *Handler) pushTo(interested []*router.Resource, name string, js []string) {
	payload := appendItems(nil, name, js)
	var b []byte
	for _, res := range interested {
		b = append(b[:0], "<iq type='set' id='block-push"...)
		b = strconv.AppendUint(b, h.push.Add(1), 10)
		b = append(b, "' to='"...)
		b = xml.EscapeAttr(b, string(res.Full()))
		b = append(b, "'>"...)
		b = append(b, payload...)
		b = append(b, "</iq>"...)
		if err := res.SendRaw(b); err != nil {
			h.log.Debug("blocking push not queued", "to", string(res.Full()), "err", err)
		}
	}
}
