package blocking

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// List is one account's blocklist: prepared JIDs in the order they were blocked. A List is never
// changed once published; a change makes a new one.
type List struct {
	jids []string
	set  map[string]struct{}
}

// empty is the list of every account that blocks nobody, shared.
var empty = &List{}

// newList makes a list of the prepared JIDs js, which hold no duplicates.
func newList(js []string) *List {
	if len(js) == 0 {
		return empty
	}
	l := &List{jids: js, set: make(map[string]struct{}, len(js))}
	for _, j := range js {
		l.set[j] = struct{}{}
	}
	return l
}

// Len is the number of blocked JIDs.
func (l *List) Len() int { return len(l.jids) }

// JIDs returns the blocked JIDs, prepared, in the order they were blocked.
func (l *List) JIDs() []string { return append([]string(nil), l.jids...) }

// Contains reports whether the exact JID j is on the list.
func (l *List) Contains(j string) bool {
	_, ok := l.set[j]
	return ok
}

// Blocks reports whether the list blocks contact, a prepared JID (full, bare or domain), by the JID
// matching rules of XEP-0016 §2.1 that XEP-0191 §6 adopts: an item matches the contact's full JID,
// its bare JID, its domain with its resource, or its domain. So a blocked bare JID blocks all of its
// resources, and a blocked domain everyone there. It allocates nothing: the map is looked up with
// string(b) conversions, which the compiler does not copy.
func (l *List) Blocks(contact []byte) bool {
	if len(l.set) == 0 || len(contact) == 0 {
		return false
	}
	if _, ok := l.set[string(contact)]; ok {
		return true
	}
	slash := bytes.IndexByte(contact, '/')
	bare := contact
	if slash >= 0 {
		bare = contact[:slash]
		if _, ok := l.set[string(bare)]; ok {
			return true
		}
	}
	at := bytes.IndexByte(bare, '@')
	if at < 0 {
		return false // a domain, or domain/resource: both checked above
	}
	if slash >= 0 {
		if _, ok := l.set[string(contact[at+1:])]; ok { // domain/resource
			return true
		}
	}
	_, ok := l.set[string(bare[at+1:])]
	return ok
}

// Encode returns the list as it is stored and as a get returns it: a <blocklist/> in the XEP's
// namespace with an <item jid=…/> per blocked JID.
func (l *List) Encode() []byte {
	return appendItems(make([]byte, 0, 48+32*len(l.jids)), "blocklist", l.jids)
}

// appendItems appends <name xmlns='urn:xmpp:blocking'> with an item per JID.
func appendItems(dst []byte, name string, jids []string) []byte {
	b := xml.NewBuilder(dst)
	b.Start(name, "xmlns", NS)
	for _, j := range jids {
		b.Start("item", "jid", j)
		b.End()
	}
	b.End()
	return b.Bytes()
}

// ParseList reads a stored blocklist (as Encode writes it). Every JID must be valid and appear
// once: the document is written only by this package, so anything else means it was
// damaged, and is reported rather than half-used.
func ParseList(doc []byte) (*List, error) {
	d := xml.NewDecoder(xml.DefaultLimits())
	defer d.Release()
	d.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"))
	d.Feed(doc)
	d.Feed([]byte("</stream:stream>"))
	if _, err := d.Next(); err != nil {
		return nil, fmt.Errorf("blocklist document: %w", err)
	}
	tok, err := d.Next()
	if err != nil {
		return nil, fmt.Errorf("blocklist document: %w", err)
	}
	if tok.Kind != xml.ElementKind || !tok.Elem.Is(NS, "blocklist") {
		return nil, errors.New("blocklist document: not a <blocklist/> in " + NS)
	}
	js, err := items(tok.Elem)
	if err != nil {
		return nil, fmt.Errorf("blocklist document: %w", err)
	}
	if end, err := d.Next(); err != nil || end.Kind != xml.StreamEnd {
		return nil, errors.New("blocklist document: trailing content after </blocklist>")
	}
	seen := make(map[string]struct{}, len(js))
	for _, j := range js {
		if _, dup := seen[j]; dup {
			return nil, fmt.Errorf("blocklist document: %s listed twice", j)
		}
		seen[j] = struct{}{}
	}
	return newList(js), nil
}

// itemError is a bad <item/> in a request, reported as jid-malformed (XEP-0191 §3.3).
type itemError struct{ err error }

func (e *itemError) Error() string { return e.err.Error() }
func (e *itemError) Unwrap() error { return e.err }

// items reads the <item jid=…/> children of e, prepared (RFC 7622). Other children are ignored, as
// XMPP asks of unknown extensions; an item without a JID or with an invalid one is an *itemError.
func items(e *xml.Element) ([]string, error) {
	var out []string
	for c := e.FirstChild(); c != nil; c = c.NextSibling() {
		if !c.Is(NS, "item") {
			continue
		}
		raw := c.Attr("jid")
		if len(raw) == 0 {
			return nil, &itemError{errors.New("an <item/> needs a 'jid'")}
		}
		j, err := jid.ParseBytes(raw)
		if err != nil {
			return nil, &itemError{fmt.Errorf("item %q: %w", raw, err)}
		}
		out = append(out, j.String())
	}
	return out, nil
}
