// Package presence implements presence for local users, RFC 6121 §3 and §4: the subscription state
// machine (the tables of Appendix A, with pending-in and pending-out, pre-approval of §3.4, and
// subscription requests stored and delivered again at login as §3.1.3 asks), roster pushes on every
// state change, initial presence with probes (§4.2, §4.3), presence broadcast (§4.4), unavailable
// presence, explicit or when a session ends (§4.5), and directed presence (§4.6).
//
// The [Handler] is the router's presence handler (router.PresenceHandler) and the roster's
// [roster.Remover]. It reaches other users only through the router (Resources, SendToBare,
// SendToFull), so that the cluster can later put remote users behind the same calls. There is no
// server-to-server link: presence for another domain is answered with remote-server-not-found when it
// is a subscription stanza and dropped otherwise.
//
// A contact's subscription state is read from the user's own roster: probes are answered from the
// contacts the user has a 'to' subscription with, broadcasts go to those with 'from'. Both sides of a
// local subscription are kept consistent by running the outbound table on the sender's roster and the
// inbound table on the receiver's, one after the other, each under its owner's roster lock.
//
// After an available presence with a non-negative priority that makes a resource available (or lifts
// it from a negative priority), the handler calls the configured [Deliverer], which the node wires to
// offline message delivery (XEP-0160).
//
// With a [Blocker] (the Blocking Command, XEP-0191), presence does not pass between an account and the
// entities it blocks: broadcasts, unavailable presence, probe answers, directed presence and
// subscription requests are dropped in either direction, and a user's own directed presence or
// subscription stanza to someone it blocks gets not-acceptable. [Handler.Hide] and [Handler.Show] send
// the presence that blocking and unblocking imply.
//
// To try it: log in two accounts, send <presence type="subscribe" to="b@example.com"/> from a, answer
// <presence type="subscribed" to="a@example.com"/> from b, and watch the roster pushes and the
// presence that a now receives from b. The tests in this package replay every row of Appendix A.
package presence

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/starling-xmpp/starling/node/im/roster"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Router is the part of the router presence uses to reach users.
type Router interface {
	Resources(bare string) []*router.Resource
	SendToBare(ctx context.Context, bare string, raw []byte, onlyAvailable bool) int
	SendToFull(ctx context.Context, full jid.JID, raw []byte) bool
	IsLocalDomain(d string) bool
	UserExists(ctx context.Context, bare string) (bool, error)
}

// Rosters reads and changes rosters; *roster.Roster implements it.
type Rosters interface {
	Items(ctx context.Context, owner string) ([]storage.RosterItem, int64, error)
	Item(ctx context.Context, owner, contact string) (storage.RosterItem, bool, error)
	Update(ctx context.Context, owner, contact string, fn func(it *storage.RosterItem, exists bool) roster.Op) (roster.Change, error)
}

// Deliverer is called when a resource becomes available with a non-negative priority, to hand it
// what was kept for the account while it was away (offline messages, XEP-0160). more reports that it
// stopped at a budget with more waiting: it is then called again at the resource's next available
// presence.
type Deliverer interface {
	Deliver(ctx context.Context, res *router.Resource) (more bool, err error)
}

// Blocker tells whether the account owner (a bare JID) blocks contact (a full, bare or domain JID),
// both prepared: the Blocking Command (XEP-0191); *blocking.Handler implements it.
type Blocker interface {
	Blocks(ctx context.Context, owner, contact []byte) bool
}

// Options configure a Handler.
type Options struct {
	Router Router
	Roster Rosters
	// Offline, if set, is called after initial presence (see Deliverer).
	Offline Deliverer
	// Blocker, if set, keeps presence from passing between an account and the entities it blocks
	// (XEP-0191 §3.3): broadcasts, directed presence, probe answers and subscription requests.
	Blocker Blocker
	Logger  *slog.Logger
}

// Handler is the presence handler of a node.
type Handler struct {
	r       Router
	roster  Rosters
	offline Deliverer
	blocker Blocker
	log     *slog.Logger

	// morePending holds the resources (*router.Resource) whose last offline delivery stopped with
	// more waiting.
	morePending sync.Map
}

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Router == nil || opts.Roster == nil {
		return nil, errors.New("presence: Router and Roster are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{r: opts.Router, roster: opts.Roster, offline: opts.Offline, blocker: opts.Blocker, log: log}, nil
}

var (
	_ router.PresenceHandler = (*Handler)(nil)
	_ roster.Remover         = (*Handler)(nil)
)

var (
	attrFrom = []byte("from")
	attrTo   = []byte("to")
)

// HandlePresence implements router.PresenceHandler for a presence stanza sent by a client.
func (h *Handler) HandlePresence(ctx context.Context, from *router.Resource, e *xml.Element) {
	typ := string(e.Attr("type"))
	to := e.Attr("to")
	switch typ {
	case "", "unavailable":
		available := typ == ""
		prio := 0
		if available {
			var err error
			if prio, err = priority(e); err != nil {
				h.replyError(from, e, stanza.New(stanza.BadRequest, err.Error()))
				return
			}
		}
		if len(to) == 0 {
			h.broadcast(ctx, from, e, available, prio)
		} else {
			h.directed(ctx, from, e, to, available)
		}
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		t, _ := ParseType(typ)
		h.subscription(ctx, from, e, to, t)
	case "probe":
		// RFC 6121 §4.3: probes are the servers' business; one from a client is ignored.
	case "error":
		h.presenceError(ctx, from, e, to)
	default:
		h.replyError(from, e, stanza.New(stanza.BadRequest, "unknown presence type "+strconv.Quote(typ)))
	}
}

// priority reads the <priority/> of an available presence (RFC 6121 §4.7.2.3): an integer from -128
// to 127, 0 when absent.
func priority(e *xml.Element) (int, error) {
	c := e.Child("", "priority")
	if c == nil {
		return 0, nil
	}
	p, err := strconv.Atoi(string(c.Text()))
	if err != nil || p < -128 || p > 127 {
		return 0, errors.New("priority must be an integer from -128 to 127")
	}
	return p, nil
}

// replyError answers a presence stanza with a stanza error (never an error with an error).
func (h *Handler) replyError(from *router.Resource, e *xml.Element, serr *stanza.Error) {
	if string(e.Attr("type")) == "error" {
		return
	}
	b := serr.AppendReply(nil, "presence", string(e.Attr("id")), string(e.Attr("to")), string(from.Full()), nil)
	_ = from.SendRaw(b)
}

// isSubscriber reports whether the contact receives the user's presence broadcasts.
func isSubscriber(it storage.RosterItem) bool { return hasFrom(it.Subscription) }

// broadcast handles presence without 'to': initial, subsequent or unavailable presence.
func (h *Handler) broadcast(ctx context.Context, from *router.Resource, e *xml.Element, available bool, prio int) {
	owner := from.Bare()
	wasAvailable := from.Available()
	oldPrio := from.Priority()
	raw := e.AppendTo(nil, xml.Attr{Name: attrFrom, Value: from.Full()}, xml.Attr{Name: attrTo})
	if available {
		from.SetPresence(true, prio, raw)
	} else {
		from.SetPresence(false, 0, nil)
	}
	var items []storage.RosterItem
	if available || wasAvailable { // an unavailable resource going unavailable tells only directed recipients
		var err error
		if items, _, err = h.roster.Items(ctx, owner); err != nil {
			// Without the roster no contact can be told; the resource's own state is already recorded.
			h.log.Error("presence broadcast: roster unavailable", "from", string(from.Full()), "err", err)
		}
	}
	stamp := func(dst []byte, to string) []byte {
		return e.AppendTo(dst, xml.Attr{Name: attrFrom, Value: from.Full()}, xml.Attr{Name: attrTo, Value: []byte(to)})
	}
	if !available {
		h.sendUnavailable(ctx, from, items, wasAvailable, stamp)
		return
	}
	initial := !wasAvailable
	if initial {
		h.probe(ctx, from, items) // §4.2.2: probes first, so answers arrive with the broadcast
	}
	var buf []byte
	for _, it := range items {
		if isSubscriber(it) && !h.cut(ctx, string(from.Full()), it.Contact) {
			buf = stamp(buf[:0], it.Contact)
			h.r.SendToBare(ctx, it.Contact, buf, true)
		}
	}
	// §4.2.2, §4.4.2: the user's own available resources, the sender included.
	buf = stamp(buf[:0], owner)
	h.r.SendToBare(ctx, owner, buf, true)
	if initial {
		for _, other := range h.r.Resources(owner) {
			if other == from {
				continue
			}
			if p := other.LastPresence(); p != nil {
				_ = from.SendRaw(withTo(p, string(from.Full())))
			}
		}
		h.redeliverRequests(ctx, from, items)
	}
	if h.offline != nil && prio >= 0 {
		_, more := h.morePending.Load(from)
		if initial || oldPrio < 0 || more {
			h.deliverOffline(ctx, from)
		}
	}
}

// deliverOffline calls the Deliverer and remembers whether it left messages waiting.
func (h *Handler) deliverOffline(ctx context.Context, res *router.Resource) {
	more, err := h.offline.Deliver(ctx, res)
	if err != nil {
		h.log.Warn("offline delivery failed", "to", string(res.Full()), "err", err)
	}
	if more {
		h.morePending.Store(res, struct{}{})
	} else {
		h.morePending.Delete(res)
	}
}

// sendUnavailable tells everyone who saw the resource available that it is gone (§4.5.2): its
// subscribers, the account's other available resources, and the entities it sent directed presence
// to (§4.6.3).
func (h *Handler) sendUnavailable(ctx context.Context, from *router.Resource, items []storage.RosterItem, wasAvailable bool, stamp func(dst []byte, to string) []byte) {
	owner := from.Bare()
	var buf []byte
	told := make(map[string]bool)
	if wasAvailable {
		for _, it := range items {
			if isSubscriber(it) {
				told[it.Contact] = true
				if h.cut(ctx, string(from.Full()), it.Contact) {
					continue // it saw the resource go unavailable when the block began
				}
				buf = stamp(buf[:0], it.Contact)
				h.r.SendToBare(ctx, it.Contact, buf, true)
			}
		}
		buf = stamp(buf[:0], owner)
		for _, other := range h.r.Resources(owner) {
			if other != from && other.Available() {
				_ = other.SendRaw(buf)
			}
		}
	}
	for _, to := range from.TakeDirected() {
		if told[to] || h.cut(ctx, string(from.Full()), to) {
			continue
		}
		buf = stamp(buf[:0], to)
		h.deliver(ctx, to, buf)
	}
}

// deliver sends raw to a local address: a full JID's resource, or a bare JID's available resources.
func (h *Handler) deliver(ctx context.Context, to string, raw []byte) {
	j, err := jid.Parse(to)
	if err != nil || !h.r.IsLocalDomain(j.Domain()) {
		return
	}
	if j.Resource() != "" {
		h.r.SendToFull(ctx, j, raw)
		return
	}
	h.r.SendToBare(ctx, to, raw, true)
}

// probe answers, on the contacts' behalf, the probes that initial presence implies (§4.3): the last
// presence of every available resource of each contact the user is subscribed to goes to the new
// resource. Contacts of other domains cannot be reached yet.
func (h *Handler) probe(ctx context.Context, from *router.Resource, items []storage.RosterItem) {
	to := string(from.Full())
	for _, it := range items {
		if !hasTo(it.Subscription) {
			continue
		}
		for _, res := range h.r.Resources(it.Contact) {
			if p := res.LastPresence(); p != nil && !h.cut(ctx, string(res.Full()), to) {
				_ = from.SendRaw(withTo(p, to))
			}
		}
	}
}

// redeliverRequests hands a newly available resource the subscription requests still waiting for an
// answer (§3.1.3).
func (h *Handler) redeliverRequests(ctx context.Context, to *router.Resource, items []storage.RosterItem) {
	for _, it := range items {
		if it.PendingIn && len(it.PendingInStanza) > 0 && !h.blocks(ctx, to.Bare(), it.Contact) {
			_ = to.SendRaw(it.PendingInStanza)
		}
	}
}

// directed handles presence with a 'to' (§4.6).
func (h *Handler) directed(ctx context.Context, from *router.Resource, e *xml.Element, toRaw []byte, available bool) {
	to, err := jid.ParseBytes(toRaw)
	if err != nil {
		h.replyError(from, e, stanza.New(stanza.JIDMalformed, err.Error()))
		return
	}
	if !h.r.IsLocalDomain(to.Domain()) || to.Local() == "" {
		return // no server-to-server yet, and the server itself keeps no presence: dropped
	}
	target := to.String()
	if h.blocks(ctx, from.Bare(), target) {
		h.replyBlocked(from, e)
		return
	}
	if h.blocks(ctx, target, string(from.Full())) {
		return // inbound presence from a blocked entity is dropped without an answer (XEP-0191 §3.3)
	}
	raw := e.AppendTo(nil, xml.Attr{Name: attrFrom, Value: from.Full()}, xml.Attr{Name: attrTo, Value: []byte(target)})
	h.deliver(ctx, target, raw)
	if !available {
		from.RemoveDirected(target)
		return
	}
	// Remember the recipient so that it learns when the resource goes away, unless it is a
	// subscriber, who learns it from the broadcast anyway (§4.6.2).
	if !from.Available() {
		return
	}
	it, ok, err := h.roster.Item(ctx, from.Bare(), to.Bare().String())
	if err != nil {
		h.log.Warn("directed presence: roster unavailable", "from", string(from.Full()), "err", err)
	}
	if !ok || !isSubscriber(it) {
		from.AddDirected(target)
	}
}

// presenceError routes a presence error a client sends (for example in answer to a directed presence)
// to its local addressee.
func (h *Handler) presenceError(ctx context.Context, from *router.Resource, e *xml.Element, toRaw []byte) {
	to, err := jid.ParseBytes(toRaw)
	if len(toRaw) == 0 || err != nil || !h.r.IsLocalDomain(to.Domain()) || to.Local() == "" {
		return
	}
	if h.cut(ctx, string(from.Full()), to.String()) {
		return
	}
	raw := e.AppendTo(nil, xml.Attr{Name: attrFrom, Value: from.Full()}, xml.Attr{Name: attrTo, Value: []byte(to.String())})
	h.deliver(ctx, to.String(), raw)
}

// withTo returns a copy of the presence raw (with no 'to') with to='to' added to its start tag.
func withTo(raw []byte, to string) []byte {
	i := 1
	for i < len(raw) {
		c := raw[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '/' || c == '>' {
			break
		}
		i++
	}
	out := make([]byte, 0, len(raw)+len(to)+8)
	out = append(out, raw[:i]...)
	out = append(out, " to='"...)
	out = xml.EscapeAttr(out, to)
	out = append(out, '\'')
	return append(out, raw[i:]...)
}

// ResourceGone implements router.PresenceHandler: a session ended, maybe without unavailable
// presence (§4.5.2 asks the server to send it on the resource's behalf).
func (h *Handler) ResourceGone(ctx context.Context, res *router.Resource) {
	h.morePending.Delete(res)
	wasAvailable := res.Available()
	res.SetPresence(false, 0, nil)
	var items []storage.RosterItem
	if wasAvailable {
		var err error
		if items, _, err = h.roster.Items(ctx, res.Bare()); err != nil {
			h.log.Error("unavailable presence: roster unavailable", "from", string(res.Full()), "err", err)
		}
	}
	stamp := func(dst []byte, to string) []byte {
		dst = append(dst, "<presence type='unavailable' from='"...)
		dst = xml.EscapeAttr(dst, string(res.Full()))
		dst = append(dst, "' to='"...)
		dst = xml.EscapeAttr(dst, to)
		return append(dst, "'/>"...)
	}
	h.sendUnavailable(ctx, res, items, wasAvailable, stamp)
}
