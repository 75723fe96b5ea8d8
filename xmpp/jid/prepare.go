package jid

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// maxRawPart bounds the size of a part before preparation, so that hostile
// input cannot cost a PRECIS or IDNA run over kilobytes. Width mapping and
// normalisation shrink text by at most a factor of three (a fullwidth
// letter, three bytes, becomes one), so a part this long could not prepare
// to maxPart bytes; only code points that IDNA ignores (U+00AD and the
// like, which no one writes in a domain name) shrink more, and a name
// padded with kilobytes of them is refused.
const maxRawPart = 4 * maxPart

// domainProfile is the IDNA2008 (UTS #46 non-transitional) lookup
// processing RFC 7622 §3.2 asks for: map case and width, allow only
// NR-LDH labels, A-labels and U-labels, check hyphens, joiners and the bidi
// rule. It is immutable, so sharing it is not global state.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
)

// labelClass checks the code points of U-labels. The IDNA package
// implements UTS #46, which lets through symbols such as U+265A that
// IDNA2008 (RFC 5892) disallows. After UTS #46 mapping a label holds no
// uppercase or compatibility characters, and for the rest IDNA2008 PVALID
// and the PRECIS IdentifierClass (RFC 8264, built on the same derived
// properties) agree: letters and digits, with the same contextual rules.
var labelClass = precis.NewIdentifier()

// Byte classes for the fast checks of ASCII parts in prepared form.
const (
	classLocal    = 1 << iota // allowed as is in a prepared localpart
	classResource             // allowed as is in a prepared resourcepart
	classLDH                  // lowercase letter or digit (domain labels)
	classUpper                // A-Z: allowed once mapped to lowercase
)

// classes is indexed by byte; non-ASCII bytes have no class.
var classes = func() (t [256]uint8) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] |= classResource
	}
	// IdentifierClass allows every printable ASCII character but space
	// (RFC 8264 §9.11); RFC 7622 §3.3.1 then forbids " & ' / : < > @.
	for c := 0x21; c < 0x7f; c++ {
		if !strings.ContainsRune(`"&'/:<>@`, rune(c)) {
			t[c] |= classLocal
		}
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= classLDH
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= classLDH
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= classUpper
		t[c] &^= classLocal // prepared form is lowercase
	}
	return t
}()

// prepareLocal applies RFC 7622 §3.3 to a localpart. Unless full is set,
// ASCII input is checked and case-mapped directly, which gives the same
// result as UsernameCaseMapped for ASCII (tested).
func prepareLocal(s string, full bool) (string, error) {
	switch {
	case s == "":
		return "", newError(PartLocal, s, ErrEmpty)
	case len(s) > maxRawPart:
		return "", newError(PartLocal, s, ErrTooLong)
	}
	if !full {
		if out, ok := asciiLocal(s); ok {
			return out, nil
		}
	}
	if !utf8.ValidString(s) {
		return "", newError(PartLocal, s, ErrInvalidUTF8)
	}
	out, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", newError(PartLocal, s, err)
	}
	if len(out) > maxPart {
		return "", newError(PartLocal, s, ErrTooLong)
	}
	// Checked after preparation: width mapping turns U+FF20 into '@'.
	if strings.ContainsAny(out, `"&'/:<>@`) {
		return "", newError(PartLocal, s, ErrForbiddenChar)
	}
	return out, nil
}

// asciiLocal returns the prepared form of an ASCII localpart, or false if
// s needs full preparation (or is invalid, which full preparation reports).
func asciiLocal(s string) (string, bool) {
	upper := false
	for i := 0; i < len(s); i++ {
		c := classes[s[i]]
		if c&classLocal == 0 {
			if c&classUpper == 0 {
				return "", false
			}
			upper = true
		}
	}
	if len(s) > maxPart {
		return "", false
	}
	if upper {
		return strings.ToLower(s), true
	}
	return s, true
}

// prepareResource applies RFC 7622 §3.4 (OpaqueString) to a resourcepart.
// Unless full is set, printable ASCII, which OpaqueString leaves as it is,
// is accepted without running PRECIS.
func prepareResource(s string, full bool) (string, error) {
	switch {
	case s == "":
		return "", newError(PartResource, s, ErrEmpty)
	case len(s) > maxRawPart:
		return "", newError(PartResource, s, ErrTooLong)
	}
	if !full && len(s) <= maxPart && isASCIIResource(s) {
		return s, nil
	}
	if !utf8.ValidString(s) {
		return "", newError(PartResource, s, ErrInvalidUTF8)
	}
	out, err := precis.OpaqueString.String(s)
	if err != nil {
		return "", newError(PartResource, s, err)
	}
	if len(out) > maxPart {
		return "", newError(PartResource, s, ErrTooLong)
	}
	return out, nil
}

func isASCIIResource(s string) bool {
	for i := 0; i < len(s); i++ {
		if classes[s[i]]&classResource == 0 {
			return false
		}
	}
	return true
}

// prepareDomain applies RFC 7622 §3.2 to a domainpart: strip one trailing
// dot, then accept a bracketed IPv6 literal (in its canonical text form) or
// convert the name to lowercase U-labels with IDNA2008. IPv4 literals are
// NR-LDH labels and come through the name path unchanged. Unless full is
// set, ASCII names of NR-LDH labels are checked and lowercased directly,
// which gives the same result as the IDNA profile (tested).
func prepareDomain(s string, full bool) (string, error) {
	orig := s
	// RFC 7622 §3.2: a final label separator is stripped before any other
	// canonicalisation step.
	s = strings.TrimSuffix(s, ".")
	switch {
	case s == "":
		return "", newError(PartDomain, orig, ErrEmpty)
	case len(s) > maxRawPart:
		return "", newError(PartDomain, orig, ErrTooLong)
	case s[0] == '[':
		return prepareIPv6(s, orig)
	}
	if !full {
		if out, ok := asciiDomain(s); ok {
			return out, nil
		}
	}
	if !utf8.ValidString(s) {
		return "", newError(PartDomain, orig, ErrInvalidUTF8)
	}
	out, err := domainProfile.ToUnicode(s)
	if err != nil {
		return "", newError(PartDomain, orig, err)
	}
	// The IDNA package lets empty labels through unless asked for DNS
	// length checks, which would also cap the name at 253 bytes where RFC
	// 7622 allows 1023. Mapping may also turn U+3002 into a trailing '.'.
	if out == "" {
		return "", newError(PartDomain, orig, ErrEmpty)
	}
	if out[0] == '.' || out[len(out)-1] == '.' || strings.Contains(out, "..") {
		return "", newError(PartDomain, orig, ErrEmptyLabel)
	}
	if len(out) > maxPart {
		return "", newError(PartDomain, orig, ErrTooLong)
	}
	if !isASCII(out) {
		// The IDNA package decides whether the bidi rule applies from the
		// input, before mapping, so "aℵ" passes and becomes "aא", which
		// fails the rule. Running the profile again on the U-labels checks
		// them as what they are, and keeps Parse(j.String()) == j.
		if again, err := domainProfile.ToUnicode(out); err != nil || again != out {
			if err == nil {
				err = errNotIDNA2008
			}
			return "", newError(PartDomain, orig, err)
		}
	}
	for label := range strings.SplitSeq(out, ".") {
		if isASCII(label) {
			continue // STD3 rules already held it to NR-LDH
		}
		if checked, err := labelClass.String(label); err != nil || checked != label {
			if err == nil {
				err = errNotIDNA2008
			}
			return "", newError(PartDomain, orig, fmt.Errorf("label %q: %w", label, err))
		}
	}
	return out, nil
}

// errNotIDNA2008 reports a domainpart that preparing again would change;
// it would not be in canonical form.
var errNotIDNA2008 = errors.New("not an IDNA2008 U-label")

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// prepareIPv6 checks a bracketed IPv6 literal and returns it in canonical
// text form (RFC 5952), so that equal addresses compare equal.
func prepareIPv6(s, orig string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return "", newError(PartDomain, orig, ErrIPLiteral)
	}
	addr, err := netip.ParseAddr(s[1 : len(s)-1])
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return "", newError(PartDomain, orig, ErrIPLiteral)
	}
	var buf [64]byte
	b := append(buf[:0], '[')
	b = addr.AppendTo(b)
	b = append(b, ']')
	if string(b) == s {
		return s, nil
	}
	return string(b), nil
}

// asciiDomain returns the prepared form of a domain name made only of
// NR-LDH labels (letters, digits, inner hyphens, no "--" in the third and
// fourth place, so no A-labels), or false if s needs the IDNA profile.
func asciiDomain(s string) (string, bool) {
	upper, ok := ldhLabels(s)
	switch {
	case !ok:
		return "", false
	case upper:
		return strings.ToLower(s), true
	}
	return s, true
}

// ldhLabels reports whether s is one or more dot-separated NR-LDH labels,
// at most maxPart bytes in all, and whether it has uppercase letters.
func ldhLabels[T string | []byte](s T) (upper, ok bool) {
	if len(s) == 0 || len(s) > maxPart {
		return false, false
	}
	var seen uint8
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if k := classes[c]; k&(classLDH|classUpper) != 0 {
				seen |= k
				continue
			}
			if c == '-' {
				continue
			}
			if c != '.' {
				return false, false
			}
		}
		if !ldhLabel(s[start:i]) {
			return false, false
		}
		start = i + 1
	}
	return seen&classUpper != 0, true
}

// ldhLabel reports whether a label of letters, digits and hyphens passes
// the hyphen rules of IDNA (UTS #46 V2, V3) and is not an A-label.
func ldhLabel[T string | []byte](l T) bool {
	n := len(l)
	if n == 0 || l[0] == '-' || l[n-1] == '-' {
		return false
	}
	return n < 4 || l[2] != '-' || l[3] != '-'
}
