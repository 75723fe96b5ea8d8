// Package stanza holds what the server needs to answer stanzas: the RFC 6120 §8.3 stanza error conditions
// with their default types, and builders for error replies.
package stanza

import (
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NSStanzas is the namespace of stanza error conditions.
const NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// Condition is a stanza error condition (RFC 6120 §8.3.3).
type Condition string

// The stanza error conditions of RFC 6120 §8.3.3.
const (
	BadRequest            Condition = "bad-request"
	Conflict              Condition = "conflict"
	FeatureNotImplemented Condition = "feature-not-implemented"
	Forbidden             Condition = "forbidden"
	Gone                  Condition = "gone"
	InternalServerError   Condition = "internal-server-error"
	ItemNotFound          Condition = "item-not-found"
	JIDMalformed          Condition = "jid-malformed"
	NotAcceptable         Condition = "not-acceptable"
	NotAllowed            Condition = "not-allowed"
	NotAuthorized         Condition = "not-authorized"
	PolicyViolation       Condition = "policy-violation"
	RecipientUnavailable  Condition = "recipient-unavailable"
	Redirect              Condition = "redirect"
	RegistrationRequired  Condition = "registration-required"
	RemoteServerNotFound  Condition = "remote-server-not-found"
	RemoteServerTimeout   Condition = "remote-server-timeout"
	ResourceConstraint    Condition = "resource-constraint"
	ServiceUnavailable    Condition = "service-unavailable"
	SubscriptionRequired  Condition = "subscription-required"
	UndefinedCondition    Condition = "undefined-condition"
	UnexpectedRequest     Condition = "unexpected-request"
)

// DefaultType is the error type RFC 6120 §8.3.3 gives each condition.
func (c Condition) DefaultType() string {
	switch c {
	case BadRequest, JIDMalformed, NotAcceptable, PolicyViolation, Redirect:
		return "modify"
	case Forbidden, NotAuthorized, RegistrationRequired, SubscriptionRequired:
		return "auth"
	case RecipientUnavailable, RemoteServerTimeout, ResourceConstraint, UnexpectedRequest:
		return "wait"
	}
	return "cancel"
}

// Error is a stanza error to send back.
type Error struct {
	Condition Condition
	Type      string // "" means Condition.DefaultType()
	Text      string
	By        string // the 'by' attribute: the entity that found the error (RFC 6120 §8.3.2)
	// App is an application-specific condition element (RFC 6120 §8.3.4), pre-serialised, such as
	// XEP-0050's <bad-sessionid xmlns='http://jabber.org/protocol/commands'/>.
	App []byte
}

// New returns an Error with the condition's default type.
func New(c Condition, text string) *Error { return &Error{Condition: c, Text: text} }

func (e *Error) Error() string {
	if e.Text != "" {
		return string(e.Condition) + ": " + e.Text
	}
	return string(e.Condition)
}

// AppendElement appends the <error/> child.
func (e *Error) AppendElement(dst []byte) []byte {
	t := e.Type
	if t == "" {
		t = e.Condition.DefaultType()
	}
	dst = append(dst, "<error type='"...)
	dst = xml.EscapeAttr(dst, t)
	dst = append(dst, '\'')
	if e.By != "" {
		dst = append(dst, " by='"...)
		dst = xml.EscapeAttr(dst, e.By)
		dst = append(dst, '\'')
	}
	dst = append(dst, "><"...)
	dst = append(dst, e.Condition...)
	dst = append(dst, " xmlns='"+NSStanzas+"'/>"...)
	if e.Text != "" {
		dst = append(dst, "<text xmlns='"+NSStanzas+"' xml:lang='en'>"...)
		dst = xml.EscapeText(dst, e.Text)
		dst = append(dst, "</text>"...)
	}
	dst = append(dst, e.App...)
	return append(dst, "</error>"...)
}

// AppendReply appends the error reply to a stanza named name (message, presence or iq) with the given
// id, addressed back to from, from to (RFC 6120 §8.2: the error goes to the sender, from the addressee).
// payload, if not nil, is the original stanza's content, included as §8.3.1 allows.
func (e *Error) AppendReply(dst []byte, name, id, from, to string, payload []byte) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, " type='error'"...)
	if id != "" {
		dst = append(dst, " id='"...)
		dst = xml.EscapeAttr(dst, id)
		dst = append(dst, '\'')
	}
	if from != "" {
		dst = append(dst, " from='"...)
		dst = xml.EscapeAttr(dst, from)
		dst = append(dst, '\'')
	}
	if to != "" {
		dst = append(dst, " to='"...)
		dst = xml.EscapeAttr(dst, to)
		dst = append(dst, '\'')
	}
	dst = append(dst, '>')
	dst = append(dst, payload...)
	dst = e.AppendElement(dst)
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, '>')
}
