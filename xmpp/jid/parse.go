package jid

import "strings"

// maxJID is the longest canonical JID: three full parts and two separators.
const maxJID = 3*maxPart + 2

// Parse parses and prepares an address in the form
// [localpart@]domainpart[/resourcepart] (RFC 7622 §3.1: the resourcepart
// starts at the first '/', the localpart ends at the first '@' before it).
//
// When s is already canonical the JID shares s instead of copying it; if s
// is a small slice of a much larger string that should be freed, pass
// strings.Clone(s).
func Parse(s string) (JID, error) {
	dom, res, upper, ok := scanASCII(s)
	switch {
	case !ok:
		return parse(s, false)
	case upper:
		return JID{s: lowerASCII(s, res), dom: uint16(dom), res: uint16(res)}, nil
	}
	return JID{s: s, dom: uint16(dom), res: uint16(res)}, nil
}

// ParseBytes is Parse for bytes straight from the XML decoder. The JID
// never refers to b; in the common case its one allocation is the JID's
// own string.
func ParseBytes(b []byte) (JID, error) {
	dom, res, upper, ok := scanASCII(b)
	switch {
	case !ok:
		return parse(string(b), false)
	case upper:
		return JID{s: lowerASCII(b, res), dom: uint16(dom), res: uint16(res)}, nil
	}
	return JID{s: string(b), dom: uint16(dom), res: uint16(res)}, nil
}

// MustParse is Parse for tests and constants: it panics if s is not a
// valid JID.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// New builds a JID from its parts, preparing each. An empty local or
// resource means the JID has no such part; the domain is required.
func New(local, domain, resource string) (JID, error) {
	return build(local, domain, resource, local != "", resource != "", false, "")
}

// scanASCII reports whether s is a JID whose parts are ASCII and in
// prepared form except perhaps for uppercase letters in the localpart and
// domainpart, which the caller then maps to lowercase. It also returns
// where the domainpart starts and where the resourcepart's '/' is (len(s)
// if none). It never reports an error: anything it does not accept goes to
// full preparation, which gives the same answer (tested) and the error if
// there is one.
func scanASCII[T string | []byte](s T) (dom, res int, upper, ok bool) {
	n := len(s)
	if n == 0 || n > maxJID {
		return 0, 0, false, false
	}
	// The localpart alphabet includes the domain one, so scan it first:
	// the first byte outside it decides whether there is a localpart.
	var seen uint8
	i := 0
	for ; i < n; i++ {
		k := classes[s[i]]
		if k&(classLocal|classUpper) == 0 {
			break
		}
		seen |= k
	}
	switch {
	case i < n && s[i] == '@':
		if i == 0 || i > maxPart {
			return 0, 0, false, false
		}
		dom = i + 1
	case i == n || s[i] == '/':
		// No localpart: what was scanned is the domainpart, checked below.
		dom, seen = 0, 0
	default:
		return 0, 0, false, false
	}
	res = n
	for j := dom; j < n; j++ {
		if s[j] == '/' {
			res = j
			break
		}
	}
	domUpper, ok := ldhLabels(s[dom:res])
	if !ok {
		return 0, 0, false, false
	}
	if res < n {
		r := s[res+1:]
		if len(r) == 0 || len(r) > maxPart {
			return 0, 0, false, false
		}
		for k := 0; k < len(r); k++ {
			if classes[r[k]]&classResource == 0 {
				return 0, 0, false, false
			}
		}
	}
	return dom, res, domUpper || seen&classUpper != 0, true
}

// lowerASCII copies s, mapping A-Z to a-z before index end (the localpart
// and domainpart; the resourcepart keeps its case).
func lowerASCII[T string | []byte](s T, end int) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i < end && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// parse splits s as RFC 7622 §3.1 says and prepares each part. With full
// set every part goes through PRECIS and IDNA, which tests use as the
// reference for the fast checks.
func parse(s string, full bool) (JID, error) {
	rest, resource, hasResource := strings.Cut(s, "/")
	local, domain, hasLocal := strings.Cut(rest, "@")
	if !hasLocal {
		local, domain = "", rest
	}
	return build(local, domain, resource, hasLocal, hasResource, full, s)
}

// build prepares the parts and joins them. If the result is orig, the JID
// shares orig rather than allocating a copy.
func build(local, domain, resource string, hasLocal, hasResource, full bool, orig string) (JID, error) {
	var err error
	if hasLocal {
		if local, err = prepareLocal(local, full); err != nil {
			return JID{}, err
		}
	}
	if domain, err = prepareDomain(domain, full); err != nil {
		return JID{}, err
	}
	if hasResource {
		if resource, err = prepareResource(resource, full); err != nil {
			return JID{}, err
		}
	}
	var j JID
	n := len(domain)
	if hasLocal {
		j.dom = uint16(len(local) + 1)
		n += len(local) + 1
	}
	j.res = uint16(n)
	if hasResource {
		n += 1 + len(resource)
	}
	if n == len(orig) && matches(orig, local, domain, resource, hasLocal, hasResource) {
		j.s = orig
		return j, nil
	}
	var b strings.Builder
	b.Grow(n)
	if hasLocal {
		b.WriteString(local)
		b.WriteByte('@')
	}
	b.WriteString(domain)
	if hasResource {
		b.WriteByte('/')
		b.WriteString(resource)
	}
	j.s = b.String()
	return j, nil
}

// matches reports whether orig is exactly the joined parts.
func matches(orig, local, domain, resource string, hasLocal, hasResource bool) bool {
	if hasLocal {
		if len(orig) <= len(local) || orig[:len(local)] != local || orig[len(local)] != '@' {
			return false
		}
		orig = orig[len(local)+1:]
	}
	if !strings.HasPrefix(orig, domain) {
		return false
	}
	orig = orig[len(domain):]
	if hasResource {
		return len(orig) > 0 && orig[0] == '/' && orig[1:] == resource
	}
	return orig == ""
}
