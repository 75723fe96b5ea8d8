package presence

import (
	"context"

	"github.com/starling-xmpp/starling/node/im/roster"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// subscription handles a subscription stanza a client sent (§3).
func (h *Handler) subscription(ctx context.Context, from *router.Resource, e *xml.Element, toRaw []byte, t Type) {
	if len(toRaw) == 0 {
		h.replyError(from, e, stanza.New(stanza.BadRequest, "a "+t.String()+" presence needs a 'to'"))
		return
	}
	to, err := jid.ParseBytes(toRaw)
	if err != nil {
		h.replyError(from, e, stanza.New(stanza.JIDMalformed, err.Error()))
		return
	}
	if !h.r.IsLocalDomain(to.Domain()) {
		h.replyError(from, e, stanza.New(stanza.RemoteServerNotFound, "no route to "+to.Domain()))
		return
	}
	if to.Local() == "" {
		h.replyError(from, e, stanza.New(stanza.ServiceUnavailable, "the server has no presence to subscribe to"))
		return
	}
	owner, contact := from.Bare(), to.Bare().String()
	if owner == contact {
		return // an account always sees its own presence; there is nothing to subscribe to
	}
	if h.blocks(ctx, owner, contact) {
		h.replyBlocked(from, e)
		return
	}
	if (t == Subscribe || t == Subscribed) && h.blocks(ctx, contact, owner) {
		// A request or an approval to someone who blocks the user is dropped unanswered (XEP-0191
		// §3.3). Cancellations go on: they keep both rosters true, and Inbound does not show them.
		return
	}
	// §3.1.2: the subscription stanza travels with the bare JIDs of both sides; its payload (status,
	// nickname) is kept.
	raw := e.AppendTo(nil, xml.Attr{Name: attrFrom, Value: []byte(owner)}, xml.Attr{Name: attrTo, Value: []byte(contact)})
	if err := h.Outbound(ctx, owner, contact, t, raw); err != nil {
		h.log.Error("subscription failed", "from", owner, "to", contact, "type", t.String(), "err", err)
		h.replyError(from, e, stanza.New(stanza.InternalServerError, ""))
	}
}

// update runs a state transition under the owner's roster lock. Items that were never visible and
// end up empty are deleted rather than stored.
func (h *Handler) update(ctx context.Context, owner, contact string, next func(it storage.RosterItem) storage.RosterItem) (roster.Change, error) {
	return h.roster.Update(ctx, owner, contact, func(it *storage.RosterItem, exists bool) roster.Op {
		n := next(*it)
		if sameState(*it, n) {
			return roster.Keep
		}
		if empty(n) && (!exists || !roster.Visible(*it)) {
			if exists {
				return roster.Delete
			}
			return roster.Keep
		}
		*it = n
		return roster.Put
	})
}

// Outbound processes a subscription stanza of type t from the local user owner to contact (both bare
// JIDs, contact in a local domain): the owner's side of the state machine (RFC 6121 Appendix A.2),
// then, when the table says it is routed, the contact's side (Inbound). raw is the stanza to deliver,
// with 'from' and 'to' set to the bare JIDs.
func (h *Handler) Outbound(ctx context.Context, owner, contact string, t Type, raw []byte) error {
	var route bool
	ch, err := h.update(ctx, owner, contact, func(it storage.RosterItem) storage.RosterItem {
		next, r := Outbound(it, t)
		route = r
		return next
	})
	if err != nil {
		return err
	}
	if !route {
		return nil
	}
	if err := h.Inbound(ctx, contact, owner, t, raw); err != nil {
		return err
	}
	switch {
	case t == Subscribed && hasFrom(ch.After.Subscription) && !hasFrom(ch.Before.Subscription):
		// §3.1.5: the new subscriber gets the user's current presence at once.
		h.sendPresenceOf(ctx, owner, contact)
	case t == Unsubscribed && hasFrom(ch.Before.Subscription) && !hasFrom(ch.After.Subscription):
		// §3.2.2: a cancelled subscriber learns that the user's resources are, for it, unavailable.
		h.sendUnavailableOf(ctx, owner, contact)
	}
	return nil
}

// Inbound processes a subscription stanza of type t from contact to the local user owner: the owner's
// side of the state machine (RFC 6121 Appendix A.3), delivery to the owner's available resources,
// and the answers the server gives on the owner's behalf.
func (h *Handler) Inbound(ctx context.Context, owner, contact string, t Type, raw []byte) error {
	exists, err := h.r.UserExists(ctx, owner)
	if err != nil {
		return err
	}
	if !exists {
		// RFC 6121 §8.5.1: a request to no account is refused with unsubscribed; anything else is
		// ignored.
		if t == Subscribe {
			return h.Inbound(ctx, contact, owner, Unsubscribed, synth(Unsubscribed, owner, contact))
		}
		return nil
	}
	var res InboundResult
	ch, err := h.update(ctx, owner, contact, func(it storage.RosterItem) storage.RosterItem {
		var next storage.RosterItem
		next, res = Inbound(it, t)
		if t == Subscribe && res.Deliver {
			// Kept until answered, and delivered again to each resource that becomes available.
			next.PendingInStanza = append([]byte(nil), raw...)
		}
		return next
	})
	if err != nil {
		return err
	}
	if res.Deliver && !h.blocks(ctx, owner, contact) {
		h.r.SendToBare(ctx, owner, raw, true)
	}
	if res.AutoSubscribed {
		if err := h.Inbound(ctx, contact, owner, Subscribed, synth(Subscribed, owner, contact)); err != nil {
			return err
		}
		if !hasFrom(ch.Before.Subscription) && hasFrom(ch.After.Subscription) {
			h.sendPresenceOf(ctx, owner, contact) // a pre-approved subscriber, as in §3.1.5
		}
	}
	if t == Unsubscribe && hasFrom(ch.Before.Subscription) && !hasFrom(ch.After.Subscription) {
		// §3.3.3: the former subscriber gets unavailable presence from the owner's resources.
		h.sendUnavailableOf(ctx, owner, contact)
	}
	return nil
}

// RosterItemRemoved implements roster.Remover: removing a contact cancels the subscriptions in both
// directions (RFC 6121 §2.5.2), as if the user had sent unsubscribe and unsubscribed, and the contact
// gets unavailable presence from the user's resources.
func (h *Handler) RosterItemRemoved(ctx context.Context, owner string, it storage.RosterItem) {
	j, err := jid.Parse(it.Contact)
	if err != nil || !h.r.IsLocalDomain(j.Domain()) || j.Local() == "" {
		return // nobody this server can tell
	}
	contact := j.String()
	if hasTo(it.Subscription) || it.PendingOut {
		if err := h.Inbound(ctx, contact, owner, Unsubscribe, synth(Unsubscribe, owner, contact)); err != nil {
			h.log.Error("roster remove: unsubscribe failed", "owner", owner, "contact", contact, "err", err)
		}
	}
	if hasFrom(it.Subscription) || it.PendingIn {
		if err := h.Inbound(ctx, contact, owner, Unsubscribed, synth(Unsubscribed, owner, contact)); err != nil {
			h.log.Error("roster remove: unsubscribed failed", "owner", owner, "contact", contact, "err", err)
		}
	}
	if hasFrom(it.Subscription) {
		h.sendUnavailableOf(ctx, owner, contact)
	}
}

// synth builds a subscription stanza the server sends on a user's behalf.
func synth(t Type, from, to string) []byte {
	b := make([]byte, 0, 48+len(from)+len(to))
	b = append(b, "<presence type='"...)
	b = append(b, t.String()...)
	b = append(b, "' from='"...)
	b = xml.EscapeAttr(b, from)
	b = append(b, "' to='"...)
	b = xml.EscapeAttr(b, to)
	return append(b, "'/>"...)
}

// sendPresenceOf sends the last presence of each available resource of owner to contact.
func (h *Handler) sendPresenceOf(ctx context.Context, owner, contact string) {
	for _, res := range h.r.Resources(owner) {
		if p := res.LastPresence(); p != nil && !h.cut(ctx, string(res.Full()), contact) {
			h.r.SendToBare(ctx, contact, withTo(p, contact), true)
		}
	}
}

// sendUnavailableOf sends unavailable presence from each available resource of owner to contact.
func (h *Handler) sendUnavailableOf(ctx context.Context, owner, contact string) {
	var b []byte
	for _, res := range h.r.Resources(owner) {
		if !res.Available() || h.cut(ctx, string(res.Full()), contact) {
			continue
		}
		b = appendUnavailable(b[:0], string(res.Full()), contact)
		h.r.SendToBare(ctx, contact, b, true)
	}
}
