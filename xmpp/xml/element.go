package xml

import "unsafe"

// span locates bytes in a doc: in src (the element's raw bytes) or, when aux
// is set, in the aux scratch (decoded values, copied namespace URIs). Offsets
// rather than slices keep spans valid while aux grows, and let Clone rebase them.
type span struct {
	off, n int32
	aux    bool
}

// doc is the backing store shared by all elements of one token.
type doc struct {
	src   []byte
	aux   []byte
	nodes []Element
	attrs []attrRec
}

// bytes returns the bytes s points at; nil for an empty span that was never set.
func (d *doc) bytes(s span) []byte {
	if s.aux {
		return d.aux[s.off : s.off+s.n : s.off+s.n]
	}
	if s.n == 0 && s.off < 0 {
		return nil
	}
	return d.src[s.off : s.off+s.n : s.off+s.n]
}

// noSpan is the span of something absent.
var noSpan = span{off: -1}

// attrRec is one attribute as parsed.
type attrRec struct {
	prefix, name span // raw qualified name parts (src)
	value        span // decoded value
	space        span // resolved namespace (noSpan if unprefixed)
	rawStart     int32
	rawEnd       int32 // src[rawStart:rawEnd] is `name='value'`
	decl         bool  // a namespace declaration; name holds the declared prefix
}

// Attr is one attribute of an element. Space is the resolved namespace URI
// (empty for unprefixed attributes); Value is the decoded value.
// Namespace declarations (xmlns, xmlns:p) are not reported as attributes.
type Attr struct {
	Space, Prefix, Name, Value []byte
}

// Element is a read-only view of one parsed element: its name, namespace,
// attributes, children and character data, and its exact raw bytes. An
// element handed out by a Decoder is valid until the next call to Next,
// Feed, ReadFrom, Reset or Release on that decoder; Clone makes an owned copy.
type Element struct {
	d *doc

	start, end       int32 // src[start:end] is the whole element
	tagEnd, innerEnd int32 // src[tagEnd:innerEnd] is the content; tagEnd == end if self-closed
	selfClosed       bool

	prefix, name, space span
	text                span

	attr0, nattr, ndecl int32 // attrs[attr0:attr0+nattr] regular, then ndecl declarations

	self, parent, first, next, last int32 // node indices; last is one past the subtree

	depth     int32 // 1 for a depth-1 element (0 for the stream header)
	bindDepth int32 // depth of the default-namespace binding used by an unprefixed name (-1: none)
	minDecl   int32 // smallest depth of a binding used in the subtree (for SelfContained)
}

const (
	nodeSize = int(unsafe.Sizeof(Element{}))
	attrSize = int(unsafe.Sizeof(attrRec{}))
)

// Name returns the local name.
func (e *Element) Name() []byte { return e.d.bytes(e.name) }

// Prefix returns the namespace prefix as written (empty if none).
func (e *Element) Prefix() []byte { return e.d.bytes(e.prefix) }

// Space returns the resolved namespace URI, inherited default namespace included.
func (e *Element) Space() []byte { return e.d.bytes(e.space) }

// Is reports whether the element has local name local in namespace space.
func (e *Element) Is(space, local string) bool {
	return string(e.d.bytes(e.name)) == local && string(e.d.bytes(e.space)) == space
}

// Raw returns the exact bytes of the element, start tag to end tag. For the
// stream header it is the start tag.
func (e *Element) Raw() []byte { return e.d.src[e.start:e.end:e.end] }

// Inner returns the raw bytes between the start and the end tag; nil if the
// element is self-closed or is a stream header.
func (e *Element) Inner() []byte {
	if e.selfClosed || e.innerEnd < 0 {
		return nil
	}
	return e.d.src[e.tagEnd:e.innerEnd:e.innerEnd]
}

// Text returns the decoded character data directly inside e (CDATA included),
// concatenated across child elements; nil if there is none.
func (e *Element) Text() []byte {
	if e.text.n == 0 {
		return nil
	}
	return e.d.bytes(e.text)
}

// String returns Raw as a string, for logs and tests.
func (e *Element) String() string { return string(e.Raw()) }

// Attr returns the decoded value of the un-prefixed attribute local, or nil
// if e has none (an empty value is a non-nil empty slice).
func (e *Element) Attr(local string) []byte {
	as := e.d.attrs[e.attr0 : e.attr0+e.nattr]
	for i := range as {
		a := &as[i]
		if a.prefix.n == 0 && string(e.d.bytes(a.name)) == local {
			return e.d.bytes(a.value)
		}
	}
	return nil
}

// HasAttr reports whether e has the un-prefixed attribute local.
func (e *Element) HasAttr(local string) bool { return e.Attr(local) != nil }

// AttrNS returns the decoded value of the attribute local in namespace space
// ("" for un-prefixed attributes), or nil.
// Example: AttrNS("http://www.w3.org/XML/1998/namespace", "lang").
func (e *Element) AttrNS(space, local string) []byte {
	as := e.d.attrs[e.attr0 : e.attr0+e.nattr]
	for i := range as {
		a := &as[i]
		if string(e.d.bytes(a.name)) == local && string(e.d.bytes(a.space)) == space {
			return e.d.bytes(a.value)
		}
	}
	return nil
}

// NumAttrs returns the number of attributes, namespace declarations excluded.
func (e *Element) NumAttrs() int { return int(e.nattr) }

// AttrAt returns attribute i (0 <= i < NumAttrs()), in document order.
func (e *Element) AttrAt(i int) Attr {
	if i < 0 || i >= int(e.nattr) {
		panic("xml: AttrAt index out of range")
	}
	a := &e.d.attrs[e.attr0+int32(i)]
	return Attr{Space: e.d.bytes(a.space), Prefix: e.d.bytes(a.prefix), Name: e.d.bytes(a.name), Value: e.d.bytes(a.value)}
}

// NamespaceDecl returns the namespace URI that e itself declares for prefix
// ("" for the default namespace, xmlns='…'). ok is false if e has no such
// declaration. Stream code uses it to read the stream header's content namespace.
func (e *Element) NamespaceDecl(prefix string) (uri []byte, ok bool) {
	ds := e.d.attrs[e.attr0+e.nattr : e.attr0+e.nattr+e.ndecl]
	for i := range ds {
		if string(e.d.bytes(ds[i].name)) == prefix {
			return e.d.bytes(ds[i].value), true
		}
	}
	return nil, false
}

// FirstChild returns the first child element, or nil.
func (e *Element) FirstChild() *Element {
	if e.first < 0 {
		return nil
	}
	return &e.d.nodes[e.first]
}

// NextSibling returns the next sibling element, or nil.
func (e *Element) NextSibling() *Element {
	if e.next < 0 {
		return nil
	}
	return &e.d.nodes[e.next]
}

// Child returns the first child element with local name local in namespace
// space (any namespace if space is ""), or nil.
func (e *Element) Child(space, local string) *Element {
	for c := e.FirstChild(); c != nil; c = c.NextSibling() {
		if string(c.Name()) == local && (space == "" || string(c.Space()) == space) {
			return c
		}
	}
	return nil
}

// SelfContained reports whether Raw can be copied verbatim into another
// stream with the same default namespace: no prefix it uses is declared
// outside it, and an unprefixed name in it does not take its namespace from
// an xmlns declared on an enclosing element below the stream header.
func (e *Element) SelfContained() bool { return e.minDecl >= e.depth }

// Clone returns an owned deep copy of e (and its subtree) that does not
// depend on the decoder and has the same methods. A clone is never modified,
// so goroutines may read it concurrently (offline storage, fan-out).
func (e *Element) Clone() *Element {
	d := e.d
	root := e.self
	nn := e.last - root
	a0 := e.attr0
	lastNode := &d.nodes[e.last-1]
	a1 := lastNode.attr0 + lastNode.nattr + lastNode.ndecl
	shift := e.start

	srcLen := int(e.end - e.start)
	src := make([]byte, srcLen)
	copy(src, d.src[e.start:e.end])
	nd := &doc{src: src, aux: append(make([]byte, 0, len(d.aux)+64), d.aux...)}
	nd.nodes = make([]Element, nn)
	nd.attrs = make([]attrRec, a1-a0)

	// Spans inside e move with it; spans outside it (namespace URIs declared
	// on ancestors) are copied into the new aux.
	rebase := func(s span) span {
		if s.aux || s.off < 0 {
			return s
		}
		if s.off >= e.start && s.off+s.n <= e.end {
			s.off -= shift
			return s
		}
		off := int32(len(nd.aux))
		nd.aux = append(nd.aux, d.src[s.off:s.off+s.n]...)
		return span{off: off, n: s.n, aux: true}
	}
	idx := func(i int32) int32 {
		if i < 0 {
			return i
		}
		return i - root
	}
	for i := range nd.nodes {
		n := d.nodes[root+int32(i)]
		n.d = nd
		n.start -= shift
		n.end -= shift
		n.tagEnd -= shift
		if n.innerEnd >= 0 {
			n.innerEnd -= shift
		}
		n.prefix, n.name, n.space, n.text = rebase(n.prefix), rebase(n.name), rebase(n.space), rebase(n.text)
		n.attr0 -= a0
		n.self, n.parent, n.first, n.next, n.last = idx(n.self), idx(n.parent), idx(n.first), idx(n.next), idx(n.last)
		if i == 0 {
			n.parent, n.next = -1, -1
		}
		nd.nodes[i] = n
	}
	for i := range nd.attrs {
		a := d.attrs[a0+int32(i)]
		a.prefix, a.name, a.value, a.space = rebase(a.prefix), rebase(a.name), rebase(a.value), rebase(a.space)
		a.rawStart -= shift
		a.rawEnd -= shift
		nd.attrs[i] = a
	}
	return &nd.nodes[0]
}
