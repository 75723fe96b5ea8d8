package xml

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// Namespace names fixed by "Namespaces in XML 1.0" and RFC 6120.
const (
	// NSXML is the namespace bound to the predefined prefix "xml" (xml:lang).
	NSXML = "http://www.w3.org/XML/1998/namespace"
	// NSStream is the namespace of the stream element and of stream: nonzas.
	NSStream = "http://etherx.jabber.org/streams"
	nsXMLNS  = "http://www.w3.org/2000/xmlns/"
)

// binding is one in-scope namespace declaration. depth is the depth of the
// declaring element (0 for the stream header, -1 for the predefined xml prefix).
type binding struct {
	prefix, uri span
	depth       int32
}

// openElem is an element whose end tag has not been reached yet.
type openElem struct {
	node      int32
	lastChild int32
	scopeMark int32
	firstRun  int32
	lastRun   int32
	nruns     int32
	decode    bool // some run needs entity or newline decoding
}

// textRun is one stretch of character data (or a CDATA section) in src.
type textRun struct {
	off, n int32
	next   int32
	cdata  bool
	decode bool
}

// work is the reusable parse workspace of a decoder: the doc that backs the
// current token's elements plus the parser's stacks. It is pooled.
type work struct {
	doc   doc
	stack []openElem
	scope []binding
	runs  []textRun
	tmp   []attrRec
	open  []nameRef // the framer's open elements, outermost first; see framer
	check []byte    // scratch for validating references in character data

	lim   Limits
	base  int64 // stream offset of doc.src[0]
	outer int   // bindings in scope from the stream header
}

// errAt builds an error at offset i of src.
func (p *work) errAt(cond string, i int, format string, args ...any) error {
	return newError(cond, p.base+int64(i), format, args...)
}

// begin prepares the workspace to parse src, with the namespace bindings of hdr in scope.
func (p *work) begin(src []byte, base int64, lim Limits, hdr *header) {
	p.trim() // a huge previous token must not pin its arenas
	p.doc.src = src
	p.doc.aux = append(p.doc.aux[:0], hdr.buf...)
	p.doc.nodes = p.doc.nodes[:0]
	p.doc.attrs = p.doc.attrs[:0]
	p.stack = p.stack[:0]
	p.scope = append(p.scope[:0], hdr.binds...)
	p.outer = len(p.scope)
	p.runs = p.runs[:0]
	p.lim = lim
	p.base = base
}

// lookup returns the index in scope of the innermost binding of prefix, or -1.
func (p *work) lookup(prefix []byte) int {
	for i := len(p.scope) - 1; i >= 0; i-- {
		if int(p.scope[i].prefix.n) == len(prefix) && bytes.Equal(p.doc.bytes(p.scope[i].prefix), prefix) {
			return i
		}
	}
	return -1
}

// parseElement parses src, which the framer found to hold exactly one
// complete element, into p.doc with the element at nodes[0].
func (p *work) parseElement() error {
	src := p.doc.src
	if bad := validChars(src); bad >= 0 {
		return p.errAt(CondNotWellFormed, bad, "invalid UTF-8 or character not allowed in XML")
	}
	i, _, err := p.startTag(0, 1)
	if err != nil {
		return err
	}
	for len(p.stack) > 0 {
		j := bytes.IndexByte(src[i:], '<')
		if j < 0 {
			return p.errAt(CondNotWellFormed, len(src), "unexpected end of element")
		}
		if j > 0 {
			if err := p.addRun(i, j, false); err != nil {
				return err
			}
		}
		i += j
		if i+1 >= len(src) {
			return p.errAt(CondNotWellFormed, i, "unexpected end of element")
		}
		switch src[i+1] {
		case '/':
			if i, err = p.endTag(i); err != nil {
				return err
			}
		case '!':
			const open = "<![CDATA["
			if !bytes.HasPrefix(src[i:], []byte(open)) {
				return p.errAt(CondRestrictedXML, i, "comments and DTDs are not allowed")
			}
			k := bytes.Index(src[i+len(open):], []byte("]]>"))
			if k < 0 {
				return p.errAt(CondNotWellFormed, i, "unterminated CDATA section")
			}
			if k > 0 {
				if err := p.addRun(i+len(open), k, true); err != nil {
					return err
				}
			}
			i += len(open) + k + 3
		case '?':
			return p.errAt(CondRestrictedXML, i, "processing instructions are not allowed")
		default:
			if i, _, err = p.startTag(i, int32(len(p.stack))+1); err != nil {
				return err
			}
		}
	}
	if i != len(src) {
		return p.errAt(CondNotWellFormed, i, "unexpected data after element")
	}
	return nil
}

// addRun records character data src[off:off+n] for the innermost open element.
func (p *work) addRun(off, n int, cdata bool) error {
	raw := p.doc.src[off : off+n]
	dec := bytes.IndexByte(raw, '\r') >= 0
	if !cdata {
		if bytes.IndexByte(raw, '&') >= 0 {
			dec = true
			// Check the references now, so that the parse pass reports its
			// errors in document order; the text is decoded when the
			// element closes.
			var err error
			if p.check, err = p.decode(p.check[:0], off, off+n, false); err != nil {
				return err
			}
		}
		if k := bytes.IndexByte(raw, ']'); k >= 0 {
			if m := bytes.Index(raw[k:], []byte("]]>")); m >= 0 {
				return p.errAt(CondNotWellFormed, off+k+m, "']]>' in character data")
			}
		}
	}
	top := &p.stack[len(p.stack)-1]
	ri := int32(len(p.runs))
	p.runs = append(p.runs, textRun{off: int32(off), n: int32(n), next: -1, cdata: cdata, decode: dec})
	if top.nruns == 0 {
		top.firstRun = ri
	} else {
		p.runs[top.lastRun].next = ri
	}
	top.lastRun = ri
	top.nruns++
	top.decode = top.decode || dec
	return nil
}

// skipSpace returns the first offset >= i that is not whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// startTag parses the start tag at src[i] ('<') for an element at the given
// depth, adds the node and resolves its namespaces. It returns the offset
// after the tag and the node index.
func (p *work) startTag(i int, depth int32) (int, int32, error) {
	src := p.doc.src
	lim := &p.lim
	j := i + 1
	end, colon, ok := scanName(src, j)
	if !ok {
		return 0, 0, p.errAt(CondNotWellFormed, end, "invalid element name")
	}
	if end-j > lim.MaxNameBytes {
		return 0, 0, p.errAt(CondPolicyViolation, j, "element name longer than %d bytes", lim.MaxNameBytes)
	}
	idx := int32(len(p.doc.nodes))
	n := Element{
		d: &p.doc, start: int32(i), innerEnd: -1,
		prefix: noSpan, space: noSpan, text: noSpan,
		self: idx, parent: -1, first: -1, next: -1,
		depth: depth, bindDepth: -1, minDecl: math.MaxInt32,
	}
	if colon >= 0 {
		n.prefix = span{off: int32(j), n: int32(colon - j)}
		n.name = span{off: int32(colon + 1), n: int32(end - colon - 1)}
	} else {
		n.name = span{off: int32(j), n: int32(end - j)}
	}

	// Attributes.
	a0 := len(p.doc.attrs)
	ndecl := 0
	k := end
	for {
		ws := k
		k = skipSpace(src, k)
		if k >= len(src) {
			return 0, 0, p.errAt(CondNotWellFormed, k, "unexpected end of start tag")
		}
		c := src[k]
		if c == '>' {
			k++
			break
		}
		if c == '/' {
			if k+1 < len(src) && src[k+1] == '>' {
				k += 2
				n.selfClosed = true
				break
			}
			return 0, 0, p.errAt(CondNotWellFormed, k, "expected '>' after '/' in start tag")
		}
		if k == ws {
			return 0, 0, p.errAt(CondNotWellFormed, k, "missing whitespace before attribute")
		}
		ne, nc, ok := scanName(src, k)
		if !ok {
			return 0, 0, p.errAt(CondNotWellFormed, ne, "invalid attribute name")
		}
		if ne-k > lim.MaxNameBytes {
			return 0, 0, p.errAt(CondPolicyViolation, k, "attribute name longer than %d bytes", lim.MaxNameBytes)
		}
		if len(p.doc.attrs)-a0 >= lim.MaxAttrs {
			return 0, 0, p.errAt(CondPolicyViolation, k, "more than %d attributes", lim.MaxAttrs)
		}
		m := skipSpace(src, ne)
		if m >= len(src) || src[m] != '=' {
			return 0, 0, p.errAt(CondNotWellFormed, m, "expected '=' after attribute name")
		}
		m = skipSpace(src, m+1)
		if m >= len(src) || (src[m] != '"' && src[m] != '\'') {
			return 0, 0, p.errAt(CondNotWellFormed, m, "attribute value must be quoted")
		}
		vs := m + 1
		ve := bytes.IndexByte(src[vs:], src[m])
		if ve < 0 {
			return 0, 0, p.errAt(CondNotWellFormed, m, "unterminated attribute value")
		}
		ve += vs
		val := src[vs:ve]
		if lt := bytes.IndexByte(val, '<'); lt >= 0 {
			return 0, 0, p.errAt(CondNotWellFormed, vs+lt, "'<' in attribute value")
		}
		rec := attrRec{prefix: noSpan, space: noSpan, rawStart: int32(k), rawEnd: int32(ve + 1)}
		if bytes.IndexByte(val, '&') >= 0 || bytes.IndexByte(val, '\r') >= 0 {
			s := len(p.doc.aux)
			var err error
			if p.doc.aux, err = p.decode(p.doc.aux, vs, ve, false); err != nil {
				return 0, 0, err
			}
			rec.value = span{off: int32(s), n: int32(len(p.doc.aux) - s), aux: true}
		} else {
			rec.value = span{off: int32(vs), n: int32(ve - vs)}
		}
		if nc >= 0 {
			rec.prefix = span{off: int32(k), n: int32(nc - k)}
			rec.name = span{off: int32(nc + 1), n: int32(ne - nc - 1)}
		} else {
			rec.name = span{off: int32(k), n: int32(ne - k)}
		}
		qn := src[k:ne]
		switch {
		case string(qn) == "xmlns":
			rec.decl = true
			rec.name = span{off: int32(k), n: 0}
			if uri := p.doc.bytes(rec.value); string(uri) == NSXML || string(uri) == nsXMLNS {
				return 0, 0, p.errAt(CondBadNamespacePrefix, k, "%s cannot be the default namespace", uri)
			}
		case nc >= 0 && string(src[k:nc]) == "xmlns":
			rec.decl = true
			if err := p.checkDecl(k, p.doc.bytes(rec.name), p.doc.bytes(rec.value)); err != nil {
				return 0, 0, err
			}
		}
		if rec.decl {
			ndecl++
		}
		p.doc.attrs = append(p.doc.attrs, rec)
		k = ve + 1
	}

	// Put regular attributes first and declarations after, each in document order.
	as := p.doc.attrs[a0:]
	if ndecl > 0 {
		p.tmp = p.tmp[:0]
		w := 0
		for _, a := range as {
			if a.decl {
				p.tmp = append(p.tmp, a)
			} else {
				as[w] = a
				w++
			}
		}
		copy(as[w:], p.tmp)
	}
	n.attr0 = int32(a0)
	n.nattr = int32(len(as) - ndecl)
	n.ndecl = int32(ndecl)
	regs, decls := as[:n.nattr], as[n.nattr:]

	// Duplicates: declarations by prefix, attributes by expanded name (below).
	for x := range decls {
		for y := x + 1; y < len(decls); y++ {
			if decls[x].name.n == decls[y].name.n && bytes.Equal(p.doc.bytes(decls[x].name), p.doc.bytes(decls[y].name)) {
				return 0, 0, p.errAt(CondNotWellFormed, int(decls[y].rawStart), "duplicate namespace declaration")
			}
		}
	}

	scopeMark := int32(len(p.scope))
	if len(decls) > 0 && depth > 0 && len(p.scope)-p.outer+len(decls) > lim.MaxNSDecls {
		return 0, 0, p.errAt(CondPolicyViolation, int(decls[0].rawStart), "more than %d namespace declarations in scope", lim.MaxNSDecls)
	}
	for _, dcl := range decls {
		p.scope = append(p.scope, binding{prefix: dcl.name, uri: dcl.value, depth: depth})
	}

	// Resolve the element name.
	if colon >= 0 {
		b := p.lookup(p.doc.bytes(n.prefix))
		if b < 0 {
			return 0, 0, p.errAt(CondBadNamespacePrefix, j, "undeclared namespace prefix %q", p.doc.bytes(n.prefix))
		}
		n.space = p.scope[b].uri
		n.bindDepth = p.scope[b].depth
		if d := p.scope[b].depth; d >= 0 && d < n.minDecl {
			n.minDecl = d
		}
	} else if b := p.lookup(nil); b >= 0 {
		if p.scope[b].uri.n > 0 {
			n.space = p.scope[b].uri
		}
		n.bindDepth = p.scope[b].depth
		if d := p.scope[b].depth; d >= 1 && d < n.minDecl {
			n.minDecl = d
		}
	}

	// Resolve attribute names and reject duplicate expanded names.
	for x := range regs {
		a := &regs[x]
		if a.prefix.n == 0 {
			continue
		}
		pfx := p.doc.bytes(a.prefix)
		b := p.lookup(pfx)
		if b < 0 {
			return 0, 0, p.errAt(CondBadNamespacePrefix, int(a.rawStart), "undeclared namespace prefix %q", pfx)
		}
		a.space = p.scope[b].uri
		if d := p.scope[b].depth; d >= 0 && d < n.minDecl {
			n.minDecl = d
		}
	}
	for x := range regs {
		for y := x + 1; y < len(regs); y++ {
			if regs[x].name.n == regs[y].name.n &&
				bytes.Equal(p.doc.bytes(regs[x].name), p.doc.bytes(regs[y].name)) &&
				bytes.Equal(p.doc.bytes(regs[x].space), p.doc.bytes(regs[y].space)) {
				return 0, 0, p.errAt(CondNotWellFormed, int(regs[y].rawStart), "duplicate attribute %q", p.doc.bytes(regs[y].name))
			}
		}
	}

	n.tagEnd = int32(k)
	if len(p.stack) > 0 {
		top := &p.stack[len(p.stack)-1]
		n.parent = top.node
		if top.lastChild < 0 {
			p.doc.nodes[top.node].first = idx
		} else {
			p.doc.nodes[top.lastChild].next = idx
		}
		top.lastChild = idx
	}
	if n.selfClosed {
		n.end = int32(k)
		n.innerEnd = int32(k)
		n.last = idx + 1
		p.scope = p.scope[:scopeMark]
		p.doc.nodes = append(p.doc.nodes, n)
		p.propagate(idx)
		return k, idx, nil
	}
	p.doc.nodes = append(p.doc.nodes, n)
	p.stack = append(p.stack, openElem{node: idx, lastChild: -1, scopeMark: scopeMark, firstRun: -1, lastRun: -1})
	return k, idx, nil
}

// checkDecl applies the "Namespaces in XML" rules to xmlns:pfx='uri' at src[k].
func (p *work) checkDecl(k int, pfx, uri []byte) error {
	switch {
	case string(pfx) == "xmlns":
		return p.errAt(CondBadNamespacePrefix, k, "the xmlns prefix cannot be declared")
	case string(pfx) == "xml" && string(uri) != NSXML, string(pfx) != "xml" && string(uri) == NSXML:
		return p.errAt(CondBadNamespacePrefix, k, "the xml prefix is bound only to %s", NSXML)
	case len(uri) == 0:
		return p.errAt(CondBadNamespacePrefix, k, "prefix %q cannot be undeclared", pfx)
	case string(uri) == nsXMLNS:
		return p.errAt(CondBadNamespacePrefix, k, "%s cannot be bound to a prefix", nsXMLNS)
	}
	return nil
}

// propagate folds a finished node's namespace use into its parent.
func (p *work) propagate(idx int32) {
	n := &p.doc.nodes[idx]
	if n.parent >= 0 {
		par := &p.doc.nodes[n.parent]
		if n.minDecl < par.minDecl {
			par.minDecl = n.minDecl
		}
	}
}

// endTag parses the end tag at src[i] ("</") and closes the innermost element.
func (p *work) endTag(i int) (int, error) {
	src := p.doc.src
	end, _, ok := scanName(src, i+2)
	if !ok {
		return 0, p.errAt(CondNotWellFormed, end, "invalid end tag name")
	}
	top := p.stack[len(p.stack)-1]
	n := &p.doc.nodes[top.node]
	qs := n.name.off
	if n.prefix.off >= 0 {
		qs = n.prefix.off
	}
	if !bytes.Equal(src[i+2:end], src[qs:n.name.off+n.name.n]) {
		return 0, p.errAt(CondNotWellFormed, i, "end tag </%s> does not match <%s>", src[i+2:end], src[qs:n.name.off+n.name.n])
	}
	k := skipSpace(src, end)
	if k >= len(src) || src[k] != '>' {
		return 0, p.errAt(CondNotWellFormed, k, "expected '>' in end tag")
	}
	k++
	n.end = int32(k)
	n.innerEnd = int32(i)
	n.last = int32(len(p.doc.nodes))
	switch {
	case top.nruns == 1 && !top.decode:
		r := p.runs[top.firstRun]
		n.text = span{off: r.off, n: r.n}
	case top.nruns > 0:
		s := len(p.doc.aux)
		for ri := top.firstRun; ri >= 0; ri = p.runs[ri].next {
			r := p.runs[ri]
			var err error
			if p.doc.aux, err = p.decode(p.doc.aux, int(r.off), int(r.off+r.n), r.cdata); err != nil {
				return 0, err
			}
		}
		n.text = span{off: int32(s), n: int32(len(p.doc.aux) - s), aux: true}
	}
	p.scope = p.scope[:top.scopeMark]
	p.stack = p.stack[:len(p.stack)-1]
	p.propagate(top.node)
	return k, nil
}

// decode appends the decoded form of src[from:to] to dst: line ends
// normalised to '\n' and, unless cdata, the predefined entities and
// character references replaced. Other entity references are restricted-xml.
func (p *work) decode(dst []byte, from, to int, cdata bool) ([]byte, error) {
	src := p.doc.src
	i := from
	for i < to {
		c := src[i]
		switch {
		case c == '\r':
			dst = append(dst, '\n')
			i++
			if i < to && src[i] == '\n' {
				i++
			}
		case c == '&' && !cdata:
			semi := bytes.IndexByte(src[i+1:to], ';')
			if semi < 0 {
				return dst, p.errAt(CondNotWellFormed, i, "'&' not starting an entity or character reference")
			}
			ent := src[i+1 : i+1+semi]
			switch string(ent) {
			case "amp":
				dst = append(dst, '&')
			case "lt":
				dst = append(dst, '<')
			case "gt":
				dst = append(dst, '>')
			case "quot":
				dst = append(dst, '"')
			case "apos":
				dst = append(dst, '\'')
			default:
				if len(ent) > 0 && ent[0] == '#' {
					r, ok := charRef(ent[1:])
					if !ok {
						return dst, p.errAt(CondNotWellFormed, i, "invalid character reference &%s;", ent)
					}
					dst = utf8.AppendRune(dst, r)
				} else if e, _, ok := scanName(ent, 0); ok && e == len(ent) {
					return dst, p.errAt(CondRestrictedXML, i, "entity reference &%s; is not allowed", ent)
				} else {
					return dst, p.errAt(CondNotWellFormed, i, "malformed entity reference")
				}
			}
			i += semi + 2
		default:
			k := i + 1
			for k < to && src[k] != '\r' && (cdata || src[k] != '&') {
				k++
			}
			dst = append(dst, src[i:k]...)
			i = k
		}
	}
	return dst, nil
}

// charRef parses the digits of a character reference (after "&#") and
// reports whether they name a legal XML character.
func charRef(b []byte) (rune, bool) {
	base := rune(10)
	if len(b) > 0 && b[0] == 'x' {
		base = 16
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var r rune
	for _, c := range b {
		var v rune
		switch {
		case c >= '0' && c <= '9':
			v = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			v = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			v = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + v
		if r > utf8.MaxRune {
			return 0, false
		}
	}
	return r, isXMLChar(r)
}
