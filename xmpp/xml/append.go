package xml

// AppendTo appends e to dst and returns the extended slice. Attributes of
// e's start tag named in set (un-prefixed, by Name) are replaced in place
// when the set value is non-nil and removed when it is nil; set entries e
// does not have are added when their value is non-nil. Values are escaped.
// Everything else is copied raw. If e is not SelfContained, the namespace
// declarations it needs from enclosing elements are added to its start tag,
// so the result means the same in any stream with the same default
// namespace. Only Name and Value of the set entries are used. With enough
// capacity in dst it does not allocate.
func (e *Element) AppendTo(dst []byte, set ...Attr) []byte {
	return e.appendTo(dst, "", false, set)
}

// AppendToNS is AppendTo for a destination stream whose default namespace
// is streamNS, which may differ from the source stream's: if e (or a
// descendant) takes its namespace from the source stream's default (or has
// none), and that is not streamNS, an xmlns declaration is added to e's
// start tag. A cluster link uses it to forward a jabber:client stanza into a
// stream with another default namespace.
func (e *Element) AppendToNS(dst []byte, streamNS string, set ...Attr) []byte {
	return e.appendTo(dst, streamNS, true, set)
}

// appendTo implements AppendTo and AppendToNS.
func (e *Element) appendTo(dst []byte, streamNS string, checkStream bool, set []Attr) []byte {
	d := e.d
	src := d.src
	dst = append(dst, src[e.start:e.start+1+e.qnameLen()]...)

	regs := d.attrs[e.attr0 : e.attr0+e.nattr]
	decls := d.attrs[e.attr0+e.nattr : e.attr0+e.nattr+e.ndecl]
	// Merge regular attributes and declarations back into document order.
	ri, di := 0, 0
	for ri < len(regs) || di < len(decls) {
		var a *attrRec
		if di >= len(decls) || (ri < len(regs) && regs[ri].rawStart < decls[di].rawStart) {
			a = &regs[ri]
			ri++
			if a.prefix.n == 0 {
				if s, ok := findSet(set, d.bytes(a.name)); ok {
					if s.Value != nil {
						dst = appendAttr(dst, s.Name, s.Value)
					}
					continue
				}
			}
		} else {
			a = &decls[di]
			di++
		}
		dst = append(dst, ' ')
		dst = append(dst, src[a.rawStart:a.rawEnd]...)
	}
	for i := range set {
		s := &set[i]
		if s.Value != nil && e.Attr(string(s.Name)) == nil && !dupBefore(set, i) {
			dst = appendAttr(dst, s.Name, s.Value)
		}
	}
	if !e.SelfContained() || checkStream {
		dst = e.appendOuterDecls(dst, streamNS, checkStream)
	}
	if e.selfClosed {
		return append(dst, '/', '>')
	}
	dst = append(dst, '>')
	return append(dst, src[e.tagEnd:e.end]...)
}

// qnameLen returns the length of e's qualified name as written.
func (e *Element) qnameLen() int32 {
	if e.prefix.n > 0 {
		return e.prefix.n + 1 + e.name.n
	}
	return e.name.n
}

// findSet returns the first set entry named name.
func findSet(set []Attr, name []byte) (Attr, bool) {
	for _, s := range set {
		if string(s.Name) == string(name) {
			return s, true
		}
	}
	return Attr{}, false
}

// dupBefore reports whether set[i]'s name already appears earlier in set.
func dupBefore(set []Attr, i int) bool {
	for j := 0; j < i; j++ {
		if string(set[j].Name) == string(set[i].Name) {
			return true
		}
	}
	return false
}

// appendAttr appends ` name='value'` with value escaped.
func appendAttr(dst, name, value []byte) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '\'')
	dst = appendEscaped(dst, value, true)
	return append(dst, '\'')
}

// appendOuterDecls appends declarations for every prefix (and the default
// namespace, if declared below the stream header, or if checkStream and the
// stream's default is not streamNS) that e's subtree uses but that is
// declared outside e.
func (e *Element) appendOuterDecls(dst []byte, streamNS string, checkStream bool) []byte {
	d := e.d
	var seenArr [8][]byte
	seen := seenArr[:0]
	need := func(node *Element, prefix []byte, space span, isDefault bool) {
		for n := node; ; n = &d.nodes[n.parent] {
			if _, ok := n.NamespaceDecl(string(prefix)); ok {
				return // declared inside e
			}
			if n == e || n.parent < 0 {
				break
			}
		}
		for _, s := range seen {
			if string(s) == string(prefix) {
				return
			}
		}
		seen = append(seen, prefix)
		if isDefault {
			dst = append(dst, " xmlns='"...)
		} else {
			dst = append(dst, " xmlns:"...)
			dst = append(dst, prefix...)
			dst = append(dst, '=', '\'')
		}
		dst = appendEscaped(dst, d.bytes(space), true)
		dst = append(dst, '\'')
	}
	for i := e.self; i < e.last; i++ {
		n := &d.nodes[i]
		switch {
		case n.prefix.n > 0:
			if n.bindDepth >= 0 {
				need(n, d.bytes(n.prefix), n.space, false)
			}
		case n.bindDepth >= 1:
			need(n, []byte{}, n.space, true)
		case checkStream && string(d.bytes(n.space)) != streamNS:
			need(n, []byte{}, n.space, true)
		}
		as := d.attrs[n.attr0 : n.attr0+n.nattr]
		for j := range as {
			if as[j].prefix.n > 0 && string(d.bytes(as[j].prefix)) != "xml" {
				need(n, d.bytes(as[j].prefix), as[j].space, false)
			}
		}
	}
	return dst
}
