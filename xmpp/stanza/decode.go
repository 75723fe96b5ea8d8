package stanza

import "github.com/starling-xmpp/starling/xmpp/xml"

// clientStream is the stream a stored or queued jabber:client stanza is read in.
const clientStream = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

// Inspect decodes one pre-serialised jabber:client stanza (an offline message, a queued copy) and calls
// f with it; the element is valid only during f. It reports false, without calling f, when raw is not
// exactly one well-formed element.
func Inspect(raw []byte, f func(e *xml.Element)) bool {
	d := xml.NewDecoder(xml.DefaultLimits())
	defer d.Release()
	d.Feed([]byte(clientStream))
	d.Feed(raw)
	if _, err := d.Next(); err != nil {
		return false
	}
	tok, err := d.Next()
	if err != nil || tok.Kind != xml.ElementKind {
		return false
	}
	if _, err := d.Next(); err != xml.ErrNeedMore {
		return false // more than one element
	}
	f(tok.Elem)
	return true
}
