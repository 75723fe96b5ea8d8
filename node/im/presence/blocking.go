package presence

import (
	"context"
	"strings"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// blockedApp is XEP-0191's application condition for a stanza addressed to an entity the sender blocks.
const blockedApp = "<blocked xmlns='urn:xmpp:blocking:errors'/>"

// bareOf returns the bare JID of a prepared JID string.
func bareOf(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

// blocks reports whether the account of the JID owner (full or bare) blocks contact. Only accounts
// (JIDs with a local part) have lists; a domain is never asked, so that it is not looked up in storage.
func (h *Handler) blocks(ctx context.Context, owner, contact string) bool {
	if h.blocker == nil {
		return false
	}
	owner = bareOf(owner)
	if !strings.Contains(owner, "@") || owner == bareOf(contact) {
		return false // an account never blocks itself from its own presence
	}
	return h.blocker.Blocks(ctx, []byte(owner), []byte(contact))
}

// cut reports whether presence from the JID from to the JID to must not pass because either side's
// account blocks the other (XEP-0191 §3.3): the sender's own list stops outbound presence, the
// recipient's stops inbound presence.
func (h *Handler) cut(ctx context.Context, from, to string) bool {
	return h.blocks(ctx, from, to) || h.blocks(ctx, to, from)
}

// replyBlocked answers a presence stanza addressed to an entity the sender blocks with not-acceptable
// and <blocked/> (XEP-0191 §3.3).
func (h *Handler) replyBlocked(from *router.Resource, e *xml.Element) {
	h.replyError(from, e, &stanza.Error{Condition: stanza.NotAcceptable, Type: "cancel", App: []byte(blockedApp)})
}

// Hide sends unavailable presence from each available resource of owner to the entities that could see
// it and for which match reports true: subscribers (a 'from' subscription), and those that got directed
// presence, which are then forgotten as directed recipients. The blocking command calls it when owner
// blocks them (XEP-0191 §3.3 asks for exactly this, so that the blocked contact sees the user offline).
// It is not itself subject to blocking: the list already holds the contacts when it is called.
func (h *Handler) Hide(ctx context.Context, owner string, match func(contact string) bool) {
	items, _, err := h.roster.Items(ctx, owner)
	if err != nil {
		h.log.Error("blocking: roster unavailable, no unavailable presence sent", "owner", owner, "err", err)
	}
	var b []byte
	for _, res := range h.r.Resources(owner) {
		if !res.Available() {
			continue
		}
		send := func(to string) {
			b = appendUnavailable(b[:0], string(res.Full()), to)
			h.deliver(ctx, to, b)
		}
		told := make(map[string]bool)
		for _, it := range items {
			if isSubscriber(it) && match(it.Contact) {
				send(it.Contact)
				told[it.Contact] = true
			}
		}
		for _, to := range res.TakeDirected() {
			if !match(to) {
				res.AddDirected(to)
				continue
			}
			if !told[to] {
				send(to)
			}
		}
	}
}

// Show sends the current presence of each available resource of owner to the subscribers for which
// match reports true, unless they block owner themselves. The blocking command calls it when owner
// unblocks them (XEP-0191 §3.4: presence goes again where the subscription allows it).
func (h *Handler) Show(ctx context.Context, owner string, match func(contact string) bool) {
	items, _, err := h.roster.Items(ctx, owner)
	if err != nil {
		h.log.Error("unblocking: roster unavailable, no presence sent", "owner", owner, "err", err)
		return
	}
	var subs []storage.RosterItem
	for _, it := range items {
		if isSubscriber(it) && match(it.Contact) {
			subs = append(subs, it)
		}
	}
	if len(subs) == 0 {
		return
	}
	for _, res := range h.r.Resources(owner) {
		p := res.LastPresence()
		if p == nil {
			continue
		}
		for _, it := range subs {
			if !h.blocks(ctx, it.Contact, string(res.Full())) {
				h.r.SendToBare(ctx, it.Contact, withTo(p, it.Contact), true)
			}
		}
	}
}

// appendUnavailable appends <presence type='unavailable'/> from from to to.
func appendUnavailable(dst []byte, from, to string) []byte {
	dst = append(dst, "<presence type='unavailable' from='"...)
	dst = xml.EscapeAttr(dst, from)
	dst = append(dst, "' to='"...)
	dst = xml.EscapeAttr(dst, to)
	return append(dst, "'/>"...)
}
