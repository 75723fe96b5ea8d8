package roster

import (
	"context"
	"fmt"
	"strconv"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Remover learns that a user removed a contact from the roster, so that the subscriptions between
// them are cancelled (RFC 6121 §2.5.2); the presence handler implements it.
type Remover interface {
	// RosterItemRemoved is called after the item was deleted and the removal pushed.
	RosterItemRemoved(ctx context.Context, owner string, removed storage.RosterItem)
}

// Handler serves jabber:iq:roster requests; register it with router.HandleIQ(NS, h).
type Handler struct {
	roster  *Roster
	remover Remover
}

// NewHandler returns the IQ handler over r. remover may be nil, in which case removing an item does
// not cancel subscriptions (only useful in tests of the roster alone).
func NewHandler(r *Roster, remover Remover) *Handler {
	return &Handler{roster: r, remover: remover}
}

// HandleIQ implements router.IQHandler.
func (h *Handler) HandleIQ(ctx context.Context, q *router.IQ) error {
	if !q.Payload.Is(NS, "query") {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if !q.ToOwnAccount() {
		// RFC 6121 §2.3.3: only the account's own resources may read or change its roster.
		return stanza.New(stanza.Forbidden, "a roster belongs to its own account")
	}
	if q.Type == "get" {
		return h.get(ctx, q)
	}
	return h.set(ctx, q)
}

// get answers a roster get (RFC 6121 §2.2) with versioning (§2.6.3): a client that sends the current
// version gets an empty result, others the whole roster with the version.
func (h *Handler) get(ctx context.Context, q *router.IQ) error {
	owner := q.From.Bare()
	clientVer := q.Payload.Attr("ver")
	versioned := clientVer != nil
	want := string(clientVer)
	// Holding the owner's lock from marking the resource interested until the result is queued
	// means every change is either in the result or pushed after it.
	mu := h.roster.lock(owner)
	mu.Lock()
	defer mu.Unlock()
	q.From.SetRosterRequested()
	items, ver, err := h.roster.Items(ctx, owner)
	if err != nil {
		return err
	}
	if versioned && want != "" && want == strconv.FormatInt(ver, 10) {
		return q.Result(nil)
	}
	b := appendQuery(make([]byte, 0, 64+64*len(items)), ver, versioned)
	for _, it := range items {
		if Visible(it) {
			b = AppendItem(b, it, false)
		}
	}
	b = append(b, "</query>"...)
	return q.Result(b)
}

// setRequest is a validated roster set.
type setRequest struct {
	contact string
	name    string
	groups  []string
	remove  bool
}

// parseSet validates a roster set's <query/> (RFC 6121 §2.3.3, §2.1.2): exactly one item with a
// valid bare JID, a bounded name, non-empty, unique and bounded groups. Values of 'subscription'
// other than "remove" are ignored as §2.1.2.5 requires (the subscription state changes only through
// presence), and so is 'ask' (§2.1.2.2: clients use presence stanzas to ask).
func (h *Handler) parseSet(query *xml.Element) (setRequest, error) {
	var req setRequest
	item := query.FirstChild()
	if item == nil {
		return req, stanza.New(stanza.BadRequest, "a roster set carries one <item/>")
	}
	if item.NextSibling() != nil {
		return req, stanza.New(stanza.BadRequest, "a roster set carries exactly one <item/>")
	}
	if !item.Is(NS, "item") {
		return req, stanza.New(stanza.BadRequest, "a roster set carries an <item/> in "+NS)
	}
	raw := item.Attr("jid")
	if len(raw) == 0 {
		return req, stanza.New(stanza.BadRequest, "the item has no jid")
	}
	j, err := jid.ParseBytes(raw)
	if err != nil {
		return req, stanza.New(stanza.JIDMalformed, err.Error())
	}
	if !j.IsBare() {
		return req, stanza.New(stanza.BadRequest, "roster items are bare JIDs, without a resource")
	}
	req.contact = j.String()
	switch sub := string(item.Attr("subscription")); sub {
	case "remove":
		req.remove = true
		return req, nil
	case "", storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth:
	default:
		return req, stanza.New(stanza.BadRequest, "unknown subscription "+strconv.Quote(sub))
	}
	if name := item.Attr("name"); len(name) > h.roster.limits.MaxNameBytes {
		return req, stanza.New(stanza.NotAcceptable, fmt.Sprintf("the name is longer than %d bytes", h.roster.limits.MaxNameBytes))
	} else {
		req.name = string(name)
	}
	for g := item.FirstChild(); g != nil; g = g.NextSibling() {
		if !g.Is(NS, "group") {
			continue // unknown extension children are not part of the roster item
		}
		name := g.Text()
		switch {
		case len(name) == 0:
			return req, stanza.New(stanza.NotAcceptable, "a group name is empty")
		case len(name) > h.roster.limits.MaxGroupBytes:
			return req, stanza.New(stanza.NotAcceptable, fmt.Sprintf("a group name is longer than %d bytes", h.roster.limits.MaxGroupBytes))
		case len(req.groups) == h.roster.limits.MaxGroups:
			return req, stanza.New(stanza.NotAcceptable, fmt.Sprintf("an item is in at most %d groups", h.roster.limits.MaxGroups))
		}
		for _, seen := range req.groups {
			if seen == string(name) {
				return req, stanza.New(stanza.BadRequest, "the group "+strconv.Quote(seen)+" appears twice")
			}
		}
		req.groups = append(req.groups, string(name))
	}
	return req, nil
}

// set handles a roster set: add or update (RFC 6121 §2.3, §2.4) or remove (§2.5).
func (h *Handler) set(ctx context.Context, q *router.IQ) error {
	req, err := h.parseSet(q.Payload)
	if err != nil {
		return err
	}
	owner := q.From.Bare()
	if req.remove {
		return h.remove(ctx, q, owner, req.contact)
	}
	var tooMany bool
	var countErr error
	_, err = h.roster.Update(ctx, owner, req.contact, func(it *storage.RosterItem, exists bool) Op {
		if !exists {
			items, _, err := h.roster.store.Roster(ctx, owner)
			if err != nil {
				countErr = err
				return Keep
			}
			if len(items) >= h.roster.limits.MaxItems {
				tooMany = true
				return Keep
			}
		}
		it.Name = req.name
		it.Groups = req.groups
		return Put
	})
	if countErr != nil {
		return fmt.Errorf("roster set by %s: count items: %w", owner, countErr)
	}
	if tooMany {
		return stanza.New(stanza.NotAcceptable, fmt.Sprintf("a roster holds at most %d items", h.roster.limits.MaxItems))
	}
	if err != nil {
		return fmt.Errorf("roster set by %s: %w", owner, err)
	}
	return q.Result(nil)
}

// remove deletes the item, then lets the presence side cancel the subscriptions (RFC 6121 §2.5.2).
func (h *Handler) remove(ctx context.Context, q *router.IQ, owner, contact string) error {
	ch, err := h.roster.Update(ctx, owner, contact, func(_ *storage.RosterItem, exists bool) Op {
		if !exists {
			return Keep
		}
		return Delete
	})
	if err != nil {
		return fmt.Errorf("roster remove by %s: %w", owner, err)
	}
	if !ch.Existed {
		return stanza.New(stanza.ItemNotFound, "no such roster item") // §2.5.3
	}
	// The result goes first (§2.5.2 step 3). If it cannot be queued the session is ending, and the
	// cancellations must happen all the same.
	_ = q.Result(nil)
	if h.remover != nil {
		h.remover.RosterItemRemoved(ctx, owner, ch.Before)
	}
	return nil
}

var _ router.IQHandler = (*Handler)(nil)
