// Package private serves Private XML Storage (XEP-0049, jabber:iq:private): a client keeps arbitrary
// XML on the server under its own account (bookmarks of XEP-0048, client preferences) and reads it back
// later, from any of its resources.
//
// Each child of the <query/> is stored apart, keyed by its namespace and local name ("{ns}name", see
// Key), as the bytes the client sent: a get returns them unchanged, or an empty element of the same
// name and namespace when nothing is stored. Several children with the same name and namespace in one
// set are stored together and returned together (the XEP allows a set and a result to carry several).
//
// Only the account itself reads and writes its data: a request to any other address, another user's
// bare JID or the server's domain, gets forbidden (XEP-0049 §2.3 and its security considerations).
// A request without a child, or with a child in the namespace of the stream (jabber:client,
// jabber:server), of jabber:iq:private itself or in no namespace gets not-acceptable: such a child is
// not "scoped by its own namespace". What one account may store is bounded by the storage (64 KiB per
// element name and namespace, 128 of them); going over gets not-acceptable with a text saying which.
//
// Try it: <iq type='set' id='p1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'
// theme='dark'/></query></iq>, then <iq type='get' id='p2'><query xmlns='jabber:iq:private'><prefs
// xmlns='urn:example:prefs'/></query></iq>.
package private

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NS is the XEP-0049 namespace.
const NS = "jabber:iq:private"

// MaxGetChildren bounds the elements one get asks for. The XEP has a client ask for one namespace per
// get; a few are served for clients that batch, but each costs a database read, so not many.
const MaxGetChildren = 16

// Store is the storage the handler needs: the account's documents of kind storage.KindPrivate.
type Store interface {
	Document(ctx context.Context, owner, kind, key string) ([]byte, error)
	PutDocument(ctx context.Context, owner, kind, key string, xml []byte) error
}

// Options configure a Handler.
type Options struct {
	Store  Store // required
	Logger *slog.Logger
}

// Handler serves jabber:iq:private requests.
type Handler struct {
	store Store
	log   *slog.Logger
}

// New returns a Handler on opts.Store. It panics if the store is nil: that is a wiring mistake,
// not a condition to run with.
func New(opts Options) *Handler {
	if opts.Store == nil {
		panic("private: Options.Store is nil")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: opts.Store, log: log}
}

// Register makes r serve private XML storage on opts.Store; the namespace then shows in the server's
// service discovery.
func Register(r *router.Router, opts Options) { r.HandleIQ(NS, New(opts)) }

// Key returns the storage key of an element with local name local in namespace ns: "{ns}local",
// which cannot be confused between two (namespace, name) pairs because a namespace URI inside the
// braces may hold '}' but a local name (an XML NCName) never does, and the key ends with the name.
func Key(ns, local string) string { return "{" + ns + "}" + local }

// reserved reports whether a stored element may not be in namespace ns: the stream's own, or none, or
// the <query/>'s, in which a child inherits its namespace instead of declaring its own.
func reserved(ns string) bool {
	switch ns {
	case "", "jabber:client", "jabber:server", NS:
		return true
	}
	return false
}

// HandleIQ implements router.IQHandler.
func (h *Handler) HandleIQ(ctx context.Context, q *router.IQ) error {
	if !q.Payload.Is(NS, "query") {
		return stanza.New(stanza.BadRequest, "jabber:iq:private requests carry a <query/>")
	}
	if !q.ToOwnAccount() {
		return stanza.New(stanza.Forbidden, "private XML belongs to its account alone")
	}
	first := q.Payload.FirstChild()
	if first == nil {
		return stanza.New(stanza.NotAcceptable, "the query needs a child element in a namespace of its own")
	}
	for c := first; c != nil; c = c.NextSibling() {
		if reserved(string(c.Space())) {
			return stanza.New(stanza.NotAcceptable, fmt.Sprintf("<%s/> is in namespace %q, which private XML storage cannot hold", c.Name(), c.Space()))
		}
	}
	owner := q.From.Bare()
	if q.Type == "get" {
		return h.get(ctx, q, owner, first)
	}
	return h.set(ctx, q, owner, first)
}

// get answers with the stored elements asked for, or empty ones in their place.
func (h *Handler) get(ctx context.Context, q *router.IQ, owner string, first *xml.Element) error {
	var keys []string
	for c := first; c != nil; c = c.NextSibling() {
		k := Key(string(c.Space()), string(c.Name()))
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
		if len(keys) > MaxGetChildren {
			return stanza.New(stanza.NotAcceptable, fmt.Sprintf("a get may ask for at most %d elements", MaxGetChildren))
		}
	}
	b := xml.NewBuilder(make([]byte, 0, 256))
	b.Start("query", "xmlns", NS)
	for c := first; c != nil; c = c.NextSibling() {
		k := Key(string(c.Space()), string(c.Name()))
		i := slices.Index(keys, k)
		if i < 0 {
			continue // already answered
		}
		keys[i] = "" // answered; an empty key is never a Key
		doc, err := h.store.Document(ctx, owner, storage.KindPrivate, k)
		switch {
		case err == nil:
			b.Raw(doc)
		case errors.Is(err, storage.ErrNotFound):
			b.Start(string(c.Name()), "xmlns", string(c.Space()))
			b.End()
		default:
			return fmt.Errorf("read private XML %s of %s: %w", k, owner, err)
		}
	}
	b.End()
	return q.Result(b.Bytes())
}

// set stores the children, those with one name and namespace together, after checking all of them.
func (h *Handler) set(ctx context.Context, q *router.IQ, owner string, first *xml.Element) error {
	type doc struct {
		key string
		xml []byte
	}
	var docs []doc
	for c := first; c != nil; c = c.NextSibling() {
		k := Key(string(c.Space()), string(c.Name()))
		if err := storage.CheckDocumentKey(storage.KindPrivate, k); err != nil {
			return stanza.New(stanza.NotAcceptable, fmt.Sprintf("the namespace and name of <%s/> are longer than %d bytes", c.Name(), storage.MaxDocumentKeyBytes))
		}
		i := 0
		for i < len(docs) && docs[i].key != k {
			i++
		}
		if i == len(docs) {
			docs = append(docs, doc{key: k})
		}
		// AppendTo adds the namespace declarations that the element takes from the <query/> or the
		// stanza, so that the stored bytes mean the same on their own.
		docs[i].xml = c.AppendTo(docs[i].xml)
		if len(docs[i].xml) > storage.MaxDocumentBytes {
			return stanza.New(stanza.NotAcceptable, fmt.Sprintf("<%s xmlns='%s'/> is larger than %d bytes", c.Name(), c.Space(), storage.MaxDocumentBytes))
		}
	}
	for _, d := range docs {
		err := h.store.PutDocument(ctx, owner, storage.KindPrivate, d.key, d.xml)
		switch {
		case err == nil:
		case errors.Is(err, storage.ErrQuotaExceeded):
			return stanza.New(stanza.NotAcceptable, fmt.Sprintf("an account may keep at most %d private XML elements", storage.MaxDocumentsPerKind))
		case errors.Is(err, storage.ErrTooLarge):
			return stanza.New(stanza.NotAcceptable, fmt.Sprintf("%s is larger than %d bytes", d.key, storage.MaxDocumentBytes))
		case errors.Is(err, storage.ErrNotFound):
			// The account was deleted while this session was still open.
			return stanza.New(stanza.ItemNotFound, "the account no longer exists")
		default:
			return fmt.Errorf("store private XML %s of %s: %w", d.key, owner, err)
		}
	}
	h.log.Debug("private XML stored", "owner", owner, "elements", len(docs))
	return q.Result(nil)
}
