package sasl

import (
	"errors"
	"strings"
)

// SASL failure conditions (RFC 6120 §6.5), the names of the child element of
// <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>.
const (
	Aborted              = "aborted"
	AccountDisabled      = "account-disabled"
	CredentialsExpired   = "credentials-expired"
	EncryptionRequired   = "encryption-required"
	IncorrectEncoding    = "incorrect-encoding"
	InvalidAuthzid       = "invalid-authzid"
	InvalidMechanism     = "invalid-mechanism"
	MalformedRequest     = "malformed-request"
	MechanismTooWeak     = "mechanism-too-weak"
	NotAuthorized        = "not-authorized"
	TemporaryAuthFailure = "temporary-auth-failure"
)

// Errors a [Lookup] returns (wrapped or not) to tell the server why it has no
// usable credentials. Any other error becomes temporary-auth-failure.
var (
	// ErrUnknownUser: no such user, or no credentials for the requested hash.
	// The server then fails exactly as for a wrong password.
	ErrUnknownUser = errors.New("sasl: unknown user")
	// ErrAccountDisabled: the account is disabled. Lookup must still return
	// the credentials: the server reports account-disabled only to a client
	// that proved the password, and not-authorized to anyone else, so the
	// condition does not reveal which accounts exist.
	ErrAccountDisabled = errors.New("sasl: account disabled")
	// ErrCredentialsExpired: the password has expired. As for
	// ErrAccountDisabled, Lookup must still return the credentials.
	ErrCredentialsExpired = errors.New("sasl: credentials expired")
	// ErrMechanismTooWeak: policy forbids this hash (or a mechanism without
	// channel binding) for this user. Reported at once as mechanism-too-weak.
	ErrMechanismTooWeak = errors.New("sasl: mechanism too weak")
)

// Failure is a SASL authentication failure: an RFC 6120 §6.5 condition and
// an optional human-readable text, both meant to be sent to the client. The
// cause, if any, stays on the server side (see Unwrap).
type Failure struct {
	Condition string // one of the condition constants, e.g. [NotAuthorized]
	Text      string // optional description for the client; may be empty
	cause     error
}

// newFailure returns a Failure with the given condition and text.
func newFailure(cond, text string) *Failure {
	return &Failure{Condition: cond, Text: text}
}

// Error returns the condition, the text and the server-side cause.
func (f *Failure) Error() string {
	var b strings.Builder
	b.WriteString("sasl: ")
	b.WriteString(f.Condition)
	if f.Text != "" {
		b.WriteString(": ")
		b.WriteString(f.Text)
	}
	if f.cause != nil {
		b.WriteString(": ")
		b.WriteString(f.cause.Error())
	}
	return b.String()
}

// Unwrap returns the server-side cause (for example a storage error behind
// temporary-auth-failure); it is for logs, never for the client.
func (f *Failure) Unwrap() error { return f.cause }

// AppendXML appends the <failure/> element for f to b:
//
//	<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text xml:lang='en'>…</text></failure>
//
// An empty or unknown condition is written as not-authorized, so a
// programming error never produces an invalid stream.
func (f *Failure) AppendXML(b []byte) []byte {
	cond := f.Condition
	if !knownCondition(cond) {
		cond = NotAuthorized
	}
	b = append(b, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><"...)
	b = append(b, cond...)
	b = append(b, "/>"...)
	if f.Text != "" {
		b = append(b, "<text xml:lang='en'>"...)
		b = appendEscaped(b, f.Text)
		b = append(b, "</text>"...)
	}
	return append(b, "</failure>"...)
}

// knownCondition reports whether cond is an RFC 6120 §6.5 condition.
func knownCondition(cond string) bool {
	switch cond {
	case Aborted, AccountDisabled, CredentialsExpired, EncryptionRequired,
		IncorrectEncoding, InvalidAuthzid, InvalidMechanism, MalformedRequest,
		MechanismTooWeak, NotAuthorized, TemporaryAuthFailure:
		return true
	}
	return false
}

// appendEscaped appends s with the XML special characters escaped.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '\'':
			b = append(b, "&apos;"...)
		case '"':
			b = append(b, "&quot;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}
