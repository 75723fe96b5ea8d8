// Package carbons implements XEP-0280 Message Carbons: a resource that enables carbons receives a copy
// of every one-to-one chat its account sends or receives on its other resources, so that a
// conversation stays whole on every device. The router finds who gets a copy (router.Copier); this
// package decides which messages qualify, builds the copies and serves the enable/disable requests.
package carbons

import (
	"context"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Namespaces of XEP-0280, XEP-0297 (forwarding) and XEP-0334 (hints).
const (
	NS        = "urn:xmpp:carbons:2"
	NSForward = "urn:xmpp:forward:0"
	NSHints   = "urn:xmpp:hints"
)

// Service is the carbons module.
type Service struct{}

// Register wires the service into r: the IQ handler and the copier.
func Register(r *router.Router) *Service {
	s := &Service{}
	r.HandleIQ(NS, s)
	r.HandleCarbons(s)
	return s
}

// HandleIQ enables or disables carbons for the requesting resource (XEP-0280 §4, §5).
func (s *Service) HandleIQ(ctx context.Context, q *router.IQ) error {
	if !q.ToOwnAccount() {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if q.Type != "set" {
		return stanza.New(stanza.BadRequest, "carbons are enabled or disabled with an iq set")
	}
	switch string(q.Payload.Name()) {
	case "enable":
		q.From.SetCarbons(true)
	case "disable":
		q.From.SetCarbons(false)
	default:
		return stanza.New(stanza.BadRequest, "expected <enable/> or <disable/>")
	}
	return q.Result(nil)
}

// Eligible implements router.Copier (XEP-0280 §6.1): chat messages, and normal ones with a body, unless
// marked private or no-copy, and never a carbon itself.
func (s *Service) Eligible(e *xml.Element) bool {
	switch string(e.Attr("type")) {
	case "chat":
	case "", "normal":
		if e.Child("", "body") == nil {
			return false
		}
	default:
		return false
	}
	for c := e.FirstChild(); c != nil; c = c.NextSibling() {
		switch space, name := string(c.Space()), string(c.Name()); {
		case space == NS && (name == "private" || name == "sent" || name == "received"):
			return false
		case space == NSHints && name == "no-copy":
			return false
		}
	}
	return true
}

// Copy implements router.Copier.
func (s *Service) Copy(kind, owner string, res *router.Resource, e *xml.Element, set []xml.Attr) {
	b := make([]byte, 0, 256+len(e.Raw()))
	b = append(b, "<message from='"...)
	b = xml.EscapeAttr(b, owner)
	b = append(b, "' to='"...)
	b = append(b, res.Full()...)
	b = append(b, "' type='"...)
	t := string(e.Attr("type"))
	if t == "" {
		t = "normal"
	}
	b = xml.EscapeAttr(b, t)
	b = append(b, "'><"...)
	b = append(b, kind...)
	b = append(b, " xmlns='"+NS+"'><forwarded xmlns='"+NSForward+"'>"...)
	// Inside <forwarded/> the default namespace is urn:xmpp:forward:0: the copy declares its own.
	b = e.AppendToNS(b, NSForward, set...)
	b = append(b, "</forwarded></"...)
	b = append(b, kind...)
	b = append(b, "></message>"...)
	res.SendRaw(b)
}
