package jid

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Part names one of the three parts of a JID. It is a string so that it
// reads well in logs and error messages.
type Part string

// The parts of a JID, named as RFC 7622 names them.
const (
	PartLocal    Part = "localpart"
	PartDomain   Part = "domainpart"
	PartResource Part = "resourcepart"
)

// Reasons a part is rejected that are not already errors of the PRECIS or
// IDNA packages. Test for them with errors.Is.
var (
	// ErrEmpty reports a part that is present but holds nothing, as in
	// "@example.com", "example.com/" or "".
	ErrEmpty = errors.New("is empty")
	// ErrTooLong reports a part longer than 1023 bytes after preparation
	// (or so long before preparation that it cannot shrink to that).
	ErrTooLong = errors.New("is longer than 1023 bytes")
	// ErrForbiddenChar reports one of " & ' / : < > @ in a localpart
	// (RFC 7622 §3.3.1).
	ErrForbiddenChar = errors.New("contains a forbidden character")
	// ErrInvalidUTF8 reports bytes that are not UTF-8.
	ErrInvalidUTF8 = errors.New("is not valid UTF-8")
	// ErrEmptyLabel reports a domainpart with an empty label, as in
	// "a..example" or ".example".
	ErrEmptyLabel = errors.New("has an empty label")
	// ErrIPLiteral reports a bracketed domainpart that is not an IPv6
	// address without zone.
	ErrIPLiteral = errors.New("is not a valid IPv6 literal")
)

// StanzaErrorCondition is the XMPP stanza error condition (RFC 6120
// §8.3.3.8) a server answers when an address does not parse.
const StanzaErrorCondition = "jid-malformed"

// maxErrorValue bounds how much of a rejected value an error message quotes,
// so that a hostile 3 KB address does not end up whole in every log line.
const maxErrorValue = 64

// Error is the error returned for a malformed JID. It names the part that
// was wrong; Err holds the reason (one of the Err* values of this package, or
// an error of the PRECIS or IDNA preparation).
type Error struct {
	Part  Part   // which part was rejected
	Value string // the part as given (before preparation), maybe truncated
	Err   error  // why
}

func newError(p Part, value string, err error) *Error {
	if len(value) > maxErrorValue {
		// Cut at a rune start so the quoted value stays readable.
		n := maxErrorValue
		for n > maxErrorValue-utf8.UTFMax && !utf8.RuneStart(value[n]) {
			n--
		}
		value = value[:n] + "…"
	}
	return &Error{Part: p, Value: value, Err: err}
}

// Error names the part, quotes the value and gives the reason.
func (e *Error) Error() string {
	return fmt.Sprintf("jid: invalid %s %q: %v", e.Part, e.Value, e.Err)
}

// Unwrap returns the reason, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Condition returns the stanza error condition for a malformed address,
// "jid-malformed", so that the stanza layer can map any error carrying a
// Condition method without knowing this package.
func (e *Error) Condition() string { return StanzaErrorCondition }
