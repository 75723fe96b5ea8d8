// Package roster implements the roster of RFC 6121 §2: the jabber:iq:roster get and set (§2.2–§2.5),
// roster versioning (§2.6) and roster pushes to interested resources (§2.1.6).
//
// [Roster] is the one place that changes a user's stored roster: the IQ [Handler] and the presence
// subscription state machine (package presence) both go through [Roster.Update], which serialises the
// read-modify-write of one owner's items and sends the roster push for every visible change, so that a
// roster set and a subscription stanza racing on the same item cannot lose each other's change.
//
// Items in the state "None + Pending In" that the user never edited (an inbound subscription request
// the user has not answered) are kept in storage, but hidden from roster results and pushes, as
// RFC 6121 §3.1.3 recommends: the contact's server should not push the item until the request is
// approved. See [Visible].
//
// To try it: bind a resource and send <iq type="get" id="r1"><query xmlns="jabber:iq:roster"
// ver=""/></iq>; the result carries ver="N", N being the roster version in the storage.
package roster

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NS is the roster namespace (RFC 6121 §2).
const NS = "jabber:iq:roster"

// Store is the part of the storage the roster uses.
type Store interface {
	Roster(ctx context.Context, owner string) (items []storage.RosterItem, ver int64, err error)
	RosterItem(ctx context.Context, owner, contact string) (storage.RosterItem, error)
	PutRosterItem(ctx context.Context, owner string, it storage.RosterItem) (ver int64, err error)
	DeleteRosterItem(ctx context.Context, owner, contact string) (ver int64, err error)
}

// Resources lists the bound resources of an account; the router implements it.
type Resources interface {
	Resources(bare string) []*router.Resource
}

// Options configure a Roster. Zero limits take the defaults.
type Options struct {
	Store  Store
	Router Resources
	Logger *slog.Logger
	// MaxNameBytes bounds an item's name (default 1023).
	MaxNameBytes int
	// MaxGroups bounds the groups of one item (default 64).
	MaxGroups int
	// MaxGroupBytes bounds one group name (default 1023).
	MaxGroupBytes int
	// MaxItems bounds the items a user may add with roster sets (default 5000).
	MaxItems int
}

// Default limits.
const (
	DefaultMaxNameBytes  = 1023
	DefaultMaxGroups     = 64
	DefaultMaxGroupBytes = 1023
	DefaultMaxItems      = 5000
)

// stripes is the number of owner locks; owners share a lock when their hashes collide, which only
// serialises them a little more.
const stripes = 64

// Roster owns the stored rosters of the local users.
type Roster struct {
	store  Store
	res    Resources
	log    *slog.Logger
	limits Options

	seed  maphash.Seed
	locks [stripes]sync.Mutex
	push  atomic.Uint64 // roster push id counter
}

// New returns a Roster.
func New(opts Options) (*Roster, error) {
	if opts.Store == nil || opts.Router == nil {
		return nil, errors.New("roster: Store and Router are required")
	}
	if opts.MaxNameBytes <= 0 {
		opts.MaxNameBytes = DefaultMaxNameBytes
	}
	if opts.MaxGroups <= 0 {
		opts.MaxGroups = DefaultMaxGroups
	}
	if opts.MaxGroupBytes <= 0 {
		opts.MaxGroupBytes = DefaultMaxGroupBytes
	}
	if opts.MaxItems <= 0 {
		opts.MaxItems = DefaultMaxItems
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Roster{store: opts.Store, res: opts.Router, log: log, limits: opts, seed: maphash.MakeSeed()}, nil
}

func (r *Roster) lock(owner string) *sync.Mutex {
	return &r.locks[maphash.String(r.seed, owner)%stripes]
}

// Visible reports whether an item belongs in roster results and pushes. The only invisible items
// are bare pending inbound requests: subscription none, pending in, nothing pending out, not
// pre-approved, and neither a name nor groups that the user would have set (RFC 6121 §3.1.3).
func Visible(it storage.RosterItem) bool {
	return !(it.Subscription == storage.SubNone && it.PendingIn && !it.PendingOut && !it.PreApproved &&
		it.Name == "" && len(it.Groups) == 0)
}

// Items returns the owner's stored items (visible or not) and the roster version.
func (r *Roster) Items(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	items, ver, err := r.store.Roster(ctx, owner)
	if err != nil {
		return nil, 0, fmt.Errorf("read roster of %s: %w", owner, err)
	}
	return items, ver, nil
}

// Item returns the owner's item for contact; ok is false if there is none.
func (r *Roster) Item(ctx context.Context, owner, contact string) (it storage.RosterItem, ok bool, err error) {
	it, err = r.store.RosterItem(ctx, owner, contact)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.RosterItem{}, false, nil
	}
	if err != nil {
		return storage.RosterItem{}, false, fmt.Errorf("read roster item %s of %s: %w", contact, owner, err)
	}
	return it, true, nil
}

// Op is what an update function decides to do with the item.
type Op int

// The operations of an update.
const (
	Keep   Op = iota // leave the stored item as it was
	Put              // store the item as changed by the function
	Delete           // delete the item
)

// Change describes an update that Update applied.
type Change struct {
	Before  storage.RosterItem // the item before the update (zero if it did not exist)
	Existed bool
	After   storage.RosterItem // the item after the update (the Before item for Keep and Delete)
	Op      Op
	Ver     int64 // the new roster version (0 for Keep)
}

// Update reads the owner's item for contact, lets fn change it, stores or deletes it as fn decides,
// and pushes the change to the owner's interested resources when it changes what they see: the item's
// attributes and groups (a change of pending-in alone is not pushed, RFC 6121 §3.1.3). fn gets a copy to modify (with Contact
// set, subscription none, for an item that does not exist) and must not call Update itself: the
// owner's lock is held while it runs.
func (r *Roster) Update(ctx context.Context, owner, contact string, fn func(it *storage.RosterItem, exists bool) Op) (Change, error) {
	mu := r.lock(owner)
	mu.Lock()
	defer mu.Unlock()
	before, exists, err := r.Item(ctx, owner, contact)
	if err != nil {
		return Change{}, err
	}
	it := before
	if !exists {
		it = storage.RosterItem{Contact: contact, Subscription: storage.SubNone}
	}
	it.Groups = append([]string(nil), it.Groups...)
	ch := Change{Before: before, Existed: exists, After: before, Op: fn(&it, exists)}
	switch ch.Op {
	case Keep:
		return ch, nil
	case Put:
		it.Contact = contact
		if ch.Ver, err = r.store.PutRosterItem(ctx, owner, it); err != nil {
			return Change{}, fmt.Errorf("store roster item %s of %s: %w", contact, owner, err)
		}
		ch.After = it
		if seen(before, exists) != seen(it, true) {
			r.Push(owner, it, false, ch.Ver)
		}
	case Delete:
		if !exists {
			return Change{}, fmt.Errorf("delete roster item %s of %s: %w", contact, owner, storage.ErrNotFound)
		}
		if ch.Ver, err = r.store.DeleteRosterItem(ctx, owner, contact); err != nil {
			return Change{}, fmt.Errorf("delete roster item %s of %s: %w", contact, owner, err)
		}
		if Visible(before) {
			r.Push(owner, before, true, ch.Ver)
		}
	default:
		return Change{}, fmt.Errorf("roster update of %s for %s: unknown op %d", contact, owner, ch.Op)
	}
	return ch, nil
}

// seen is what a client sees of an item: its <item/>, or nothing for an absent or invisible item.
func seen(it storage.RosterItem, exists bool) string {
	if !exists || !Visible(it) {
		return ""
	}
	return string(AppendItem(nil, it, false))
}

// Push sends a roster push for it (or its removal) with roster version ver to every interested
// resource of owner (RFC 6121 §2.1.6). The push has no 'from', which clients take as coming from
// their own account. It returns how many resources it was queued for.
func (r *Roster) Push(owner string, it storage.RosterItem, removed bool, ver int64) int {
	n := 0
	var payload []byte
	for _, res := range r.res.Resources(owner) {
		if !res.RosterRequested() {
			continue
		}
		if payload == nil {
			payload = appendQuery(nil, ver, true)
			payload = AppendItem(payload, it, removed)
			payload = append(payload, "</query>"...)
		}
		b := make([]byte, 0, len(payload)+96)
		b = append(b, "<iq type='set' id='push"...)
		b = strconv.AppendUint(b, r.push.Add(1), 10)
		b = append(b, "' to='"...)
		b = xml.EscapeAttr(b, string(res.Full()))
		b = append(b, "'>"...)
		b = append(b, payload...)
		b = append(b, "</iq>"...)
		if err := res.SendRaw(b); err != nil {
			r.log.Debug("roster push not queued", "to", string(res.Full()), "err", err)
			continue
		}
		n++
	}
	return n
}

// appendQuery appends the open <query/> tag, with ver if withVer.
func appendQuery(dst []byte, ver int64, withVer bool) []byte {
	dst = append(dst, "<query xmlns='"+NS+"'"...)
	if withVer {
		dst = append(dst, " ver='"...)
		dst = strconv.AppendInt(dst, ver, 10)
		dst = append(dst, '\'')
	}
	return append(dst, '>')
}

// AppendItem appends the <item/> of it as a roster result or push carries it (RFC 6121 §2.1.2):
// subscription='remove' if removed, ask='subscribe' while a request is pending out, and
// approved='true' for a pre-approval (§3.4).
func AppendItem(dst []byte, it storage.RosterItem, removed bool) []byte {
	dst = append(dst, "<item jid='"...)
	dst = xml.EscapeAttr(dst, it.Contact)
	dst = append(dst, '\'')
	if removed {
		return append(dst, " subscription='remove'/>"...)
	}
	if it.Name != "" {
		dst = append(dst, " name='"...)
		dst = xml.EscapeAttr(dst, it.Name)
		dst = append(dst, '\'')
	}
	sub := it.Subscription
	if sub == "" {
		sub = storage.SubNone
	}
	dst = append(dst, " subscription='"...)
	dst = append(dst, sub...)
	dst = append(dst, '\'')
	if it.PendingOut {
		dst = append(dst, " ask='subscribe'"...)
	}
	if it.PreApproved {
		dst = append(dst, " approved='true'"...)
	}
	if len(it.Groups) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	for _, g := range it.Groups {
		dst = append(dst, "<group>"...)
		dst = xml.EscapeText(dst, g)
		dst = append(dst, "</group>"...)
	}
	return append(dst, "</item>"...)
}
