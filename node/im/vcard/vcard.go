// Package vcard serves vcard-temp (XEP-0054): each account publishes one vCard, which the server keeps
// and hands to anyone who asks. Clients carry profile data in it, and the avatar whose hash they
// announce in presence (XEP-0153); the server stores the <vCard/> exactly as the client sent it, so
// that the photo's bytes, and the hash computed over them, survive the round trip.
//
// The rules, from XEP-0054 §3:
//   - get with no 'to', or to one's own bare JID: the stored vCard, or an empty <vCard/> when there is
//     none.
//   - get to another account's bare JID: the server answers on that account's behalf, never its
//     resources (§3.3): the stored vCard, an empty one for an account without, and
//     service-unavailable for an address with no account (the answer RFC 6121 §8.5.2 gives for an
//     IQ to an unknown account, so a vCard request reveals no more than any other IQ would).
//   - get to the server's domain: item-not-found; the server publishes no vCard of its own.
//   - set: only to one's own account; anything else is forbidden (§3.2). A set replaces the whole
//     vCard; an empty <vCard/> deletes it. A vCard larger than the storage bound (64 KiB) gets
//     not-acceptable.
//
// Try it: <iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>, then from
// another account <iq type='get' id='v2' to='alice@example.com'><vCard xmlns='vcard-temp'/></iq>.
package vcard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NS is the XEP-0054 namespace, also its disco feature.
const NS = "vcard-temp"

// empty is the answer for an account without a vCard.
var empty = []byte("<vCard xmlns='" + NS + "'/>")

// Store is the storage the handler needs: vCards (documents of kind storage.KindVCard) and whether an
// account exists.
type Store interface {
	Document(ctx context.Context, owner, kind, key string) ([]byte, error)
	PutDocument(ctx context.Context, owner, kind, key string, xml []byte) error
	DeleteDocument(ctx context.Context, owner, kind, key string) error
	UserExists(ctx context.Context, user string) (bool, error)
}

// Options configure a Handler.
type Options struct {
	Store  Store // required
	Logger *slog.Logger
	// MaxBytes bounds a stored vCard; 0, or anything above storage.MaxDocumentBytes, means
	// storage.MaxDocumentBytes.
	MaxBytes int
}

// Handler serves vcard-temp requests.
type Handler struct {
	store Store
	log   *slog.Logger
	max   int
}

// New returns a Handler on opts.Store. It panics if the store is nil: that is a wiring mistake,
// not a condition to run with.
func New(opts Options) *Handler {
	if opts.Store == nil {
		panic("vcard: Options.Store is nil")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limit := opts.MaxBytes
	if limit <= 0 || limit > storage.MaxDocumentBytes {
		limit = storage.MaxDocumentBytes
	}
	return &Handler{store: opts.Store, log: log, max: limit}
}

// Register makes r serve vCards on opts.Store; the namespace then shows in the server's service
// discovery, which is how XEP-0054 §4 says support is announced.
func Register(r *router.Router, opts Options) { r.HandleIQ(NS, New(opts)) }

// HandleIQ implements router.IQHandler.
func (h *Handler) HandleIQ(ctx context.Context, q *router.IQ) error {
	if !q.Payload.Is(NS, "vCard") {
		// RFC 6120 §8.3.3.3: the namespace is understood, the element name is not.
		return stanza.New(stanza.FeatureNotImplemented, "vcard-temp requests carry a <vCard/>")
	}
	if q.Type == "set" {
		if !q.ToOwnAccount() {
			return stanza.New(stanza.Forbidden, "a vCard can only be set by its own account")
		}
		return h.set(ctx, q, q.From.Bare())
	}
	switch {
	case q.ToOwnAccount():
		return h.get(ctx, q, q.From.Bare(), true)
	case q.ToServer():
		return stanza.New(stanza.ItemNotFound, "this server publishes no vCard")
	default:
		return h.get(ctx, q, q.To.String(), false)
	}
}

// get answers with owner's vCard. own says the requester is the owner, whose account exists.
func (h *Handler) get(ctx context.Context, q *router.IQ, owner string, own bool) error {
	doc, err := h.store.Document(ctx, owner, storage.KindVCard, "")
	if err == nil {
		return q.Result(doc)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("read vCard of %s: %w", owner, err)
	}
	if !own {
		exists, err := h.store.UserExists(ctx, owner)
		if err != nil {
			return fmt.Errorf("read vCard of %s: %w", owner, err)
		}
		if !exists {
			return stanza.New(stanza.ServiceUnavailable, "")
		}
	}
	return q.Result(empty)
}

// set replaces the owner's vCard with the payload, or deletes it if the payload is empty.
func (h *Handler) set(ctx context.Context, q *router.IQ, owner string) error {
	v := q.Payload
	if isEmpty(v) {
		if err := h.store.DeleteDocument(ctx, owner, storage.KindVCard, ""); err != nil {
			return fmt.Errorf("delete vCard of %s: %w", owner, err)
		}
		return q.Result(nil)
	}
	// AppendTo copies the element's bytes as received, adding only the namespace declarations it
	// takes from the stanza (a vCard with a prefixed child), so the stored vCard stands on its own.
	doc := v.AppendTo(nil)
	if len(doc) > h.max {
		return stanza.New(stanza.NotAcceptable, fmt.Sprintf("the vCard is %d bytes, the limit is %d: use a smaller photo", len(doc), h.max))
	}
	err := h.store.PutDocument(ctx, owner, storage.KindVCard, "", doc)
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrTooLarge):
		return stanza.New(stanza.NotAcceptable, fmt.Sprintf("the vCard is larger than %d bytes", storage.MaxDocumentBytes))
	case errors.Is(err, storage.ErrNotFound):
		// The account was deleted while this session was still open.
		return stanza.New(stanza.ItemNotFound, "the account no longer exists")
	default:
		return fmt.Errorf("store vCard of %s: %w", owner, err)
	}
	h.log.Debug("vCard stored", "owner", owner, "bytes", len(doc))
	return q.Result(nil)
}

// isEmpty reports whether v carries nothing: no attributes, no child elements, no text but
// whitespace. Storing it would answer later gets exactly as having no vCard does.
func isEmpty(v *xml.Element) bool {
	return v.NumAttrs() == 0 && v.FirstChild() == nil && len(bytes.TrimSpace(v.Text())) == 0
}
