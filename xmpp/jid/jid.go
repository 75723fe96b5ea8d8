// Package jid holds XMPP addresses (JIDs) as defined by RFC 7622:
// localpart@domainpart/resourcepart, each part prepared with PRECIS
// (UsernameCaseMapped for the localpart, OpaqueString for the resourcepart)
// and IDNA2008 (the domainpart, kept as lowercase U-labels).
//
// A JID is a small comparable value: one string in canonical form plus two
// offsets, so it can be a map key and == means the same address. Parsing
// is on the path of every stanza, so the common case (an address whose
// parts are ASCII and already prepared) is checked byte by byte without
// running PRECIS and, for Parse, without any allocation: the JID then
// shares the input string. ASCII with uppercase letters costs one
// lowercased copy. Anything else goes through full preparation.
//
// Errors are of type *Error and name the part that was wrong; a server
// answers them with the stanza error condition "jid-malformed".
package jid

import "strings"

// maxPart is the largest size in bytes of each part after preparation
// (RFC 7622 §3.2, §3.3, §3.4).
const maxPart = 1023

// JID is an XMPP address. The zero value is the empty JID (IsZero reports
// true); every other value holds a valid, prepared address. JIDs are
// comparable: two JIDs are == exactly when they are the same address.
type JID struct {
	// s is the canonical form "local@domain/resource" (local@ and /resource
	// only when present). Because neither a localpart nor a domainpart may
	// contain '@' or '/', s alone fixes the offsets, so comparing JIDs with
	// == compares addresses.
	s string
	// dom is the index in s where the domainpart starts (0 when there is no
	// localpart), res the index of the '/' before the resourcepart, or
	// len(s). Three parts of at most 1023 bytes fit in uint16.
	dom, res uint16
}

// Local returns the localpart, or "" if there is none.
func (j JID) Local() string {
	if j.dom == 0 {
		return ""
	}
	return j.s[:j.dom-1]
}

// Domain returns the domainpart ("" only for the zero JID).
func (j JID) Domain() string { return j.s[j.dom:j.res] }

// Resource returns the resourcepart, or "" if there is none.
func (j JID) Resource() string {
	if int(j.res) >= len(j.s) {
		return ""
	}
	return j.s[j.res+1:]
}

// Bare returns j without its resourcepart. The result shares memory with j.
func (j JID) Bare() JID { return JID{s: j.s[:j.res], dom: j.dom, res: j.res} }

// DomainJID returns the JID made of j's domainpart alone, the address of
// the server that hosts j.
func (j JID) DomainJID() JID {
	return JID{s: j.s[j.dom:j.res], dom: 0, res: j.res - j.dom}
}

// IsZero reports whether j is the zero (empty) JID.
func (j JID) IsZero() bool { return j.s == "" }

// IsBare reports whether j is a non-empty JID without a resourcepart.
func (j JID) IsBare() bool { return j.s != "" && int(j.res) == len(j.s) }

// IsDomain reports whether j is a non-empty JID with neither a localpart
// nor a resourcepart (a server or component address).
func (j JID) IsDomain() bool { return j.IsBare() && j.dom == 0 }

// WithResource returns j's bare JID with resourcepart r, prepared with
// OpaqueString. An empty r gives the bare JID. It fails for the zero JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, newError(PartDomain, "", ErrEmpty)
	}
	if r == "" {
		return j.Bare(), nil
	}
	pr, err := prepareResource(r, false)
	if err != nil {
		return JID{}, err
	}
	var b strings.Builder
	b.Grow(int(j.res) + 1 + len(pr))
	b.WriteString(j.s[:j.res])
	b.WriteByte('/')
	b.WriteString(pr)
	return JID{s: b.String(), dom: j.dom, res: j.res}, nil
}

// String returns the canonical form, "" for the zero JID.
func (j JID) String() string { return j.s }

// AppendTo appends the canonical form to dst, for writers that build
// stanzas in a buffer.
func (j JID) AppendTo(dst []byte) []byte { return append(dst, j.s...) }

// Equal reports whether j and o are the same address (the same as ==).
func (j JID) Equal(o JID) bool { return j == o }

// Compare orders JIDs by their canonical form; it returns -1, 0 or +1.
func (j JID) Compare(o JID) int { return strings.Compare(j.s, o.s) }

// MarshalText returns the canonical form; the zero JID gives empty text.
func (j JID) MarshalText() ([]byte, error) { return []byte(j.s), nil }

// UnmarshalText parses text with ParseBytes. Empty text gives the zero
// JID, so that MarshalText and UnmarshalText round-trip every value.
func (j *JID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*j = JID{}
		return nil
	}
	v, err := ParseBytes(text)
	if err != nil {
		return err
	}
	*j = v
	return nil
}
