package xml

import (
	"bytes"
	stdxml "encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdNode is an element as encoding/xml sees it.
type stdNode struct {
	space, local string
	attrs        []stdxml.Attr
	text         strings.Builder
	children     []*stdNode
}

func (n *stdNode) render(sb *strings.Builder) {
	fmt.Fprintf(sb, "<{%s}%s", n.space, n.local)
	for _, a := range n.attrs {
		fmt.Fprintf(sb, " {%s}%s=%q", a.Name.Space, a.Name.Local, a.Value)
	}
	sb.WriteString(">")
	if n.text.Len() > 0 {
		fmt.Fprintf(sb, "%q", n.text.String())
	}
	for _, c := range n.children {
		c.render(sb)
	}
	sb.WriteString("</>")
}

// stdElements decodes a stream with encoding/xml (the oracle) and renders
// its depth-1 elements like dumpElem. It stops at the end of the root.
func stdElements(in []byte) ([]string, error) {
	d := stdxml.NewDecoder(bytes.NewReader(in))
	d.Strict = true
	var stack []*stdNode
	var out []string
	rootSeen := false
	for {
		tok, err := d.Token()
		if err != nil {
			return out, err
		}
		switch t := tok.(type) {
		case stdxml.StartElement:
			n := &stdNode{space: t.Name.Space, local: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				n.attrs = append(n.attrs, a)
			}
			if len(stack) > 0 {
				stack[len(stack)-1].children = append(stack[len(stack)-1].children, n)
			}
			stack = append(stack, n)
			rootSeen = true
		case stdxml.EndElement:
			if len(stack) == 2 {
				var sb strings.Builder
				stack[1].render(&sb)
				out = append(out, sb.String())
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 && rootSeen {
				return out, nil
			}
		case stdxml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
}

// ourElements decodes in (fed in chunks of size chunk) and returns the
// rendered depth-1 elements, their AppendTo output, and whether the stream
// ended cleanly.
func ourElements(in []byte, chunk int) (elems, appended []string, ended bool, err error) {
	return decodeForFuzz(in, chunk, false)
}

// decodeForFuzz is ourElements; with noTo the renderings omit the top 'to'.
func decodeForFuzz(in []byte, chunk int, noTo bool) (elems, appended []string, ended bool, err error) {
	elems, appended, _, ended, err = decodeForFuzzNS(in, chunk, noTo)
	return elems, appended, ended, err
}

// decodeForFuzzNS is decodeForFuzz that also returns each element's
// AppendToNS output for a stream whose default namespace is urn:other.
func decodeForFuzzNS(in []byte, chunk int, noTo bool) (elems, appended, nsOut []string, ended bool, err error) {
	d := NewDecoder(Limits{})
	for len(in) > 0 || chunk == 0 {
		n := min(chunk, len(in))
		if chunk == 0 {
			n = len(in)
			chunk = -1
		}
		d.Feed(in[:n])
		in = in[n:]
		for {
			tok, err := d.Next()
			if errors.Is(err, ErrNeedMore) {
				break
			}
			if err == io.EOF {
				return elems, appended, nsOut, true, nil
			}
			if err != nil {
				return elems, appended, nsOut, false, err
			}
			if tok.Kind == ElementKind {
				nsOut = append(nsOut, string(tok.Elem.AppendToNS(nil, "urn:other")))
				if noTo {
					elems = append(elems, stripTo(tok.Elem))
				} else {
					elems = append(elems, dumpString(tok.Elem))
				}
				appended = append(appended, string(tok.Elem.AppendTo(nil, Attr{Name: []byte("to"), Value: []byte("x")})))
			}
		}
	}
	_, err = d.Next()
	return elems, appended, nsOut, err == io.EOF, nil
}

var knownConditions = map[string]bool{
	CondNotWellFormed: true, CondRestrictedXML: true, CondBadNamespacePrefix: true, CondInvalidNamespace: true,
	CondUnsupportedEncoding: true, CondPolicyViolation: true, CondBadFormat: true,
}

// FuzzDecoder wraps the input as the content of a stream and checks that
// (1) splitting the input does not change the outcome, (2) errors carry a
// known condition, (3) whatever the decoder accepts, encoding/xml accepts
// with the same names, namespaces, attributes and text, and (4) AppendTo's
// output decodes to the same element with 'to' rewritten.
func FuzzDecoder(f *testing.F) {
	for _, tc := range validCases {
		f.Add([]byte(strings.TrimSuffix(strings.TrimPrefix(tc.in, streamHdr), trailer)))
	}
	for _, tc := range invalidCases {
		f.Add([]byte(strings.TrimPrefix(tc.in, streamHdr)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append(append([]byte(streamHdr), data...), trailer...)
		elems, appended, ended, err := ourElements(in, 0)
		elems2, _, ended2, err2 := ourElements(in, 1+len(data)%17)
		if errString(err) != errString(err2) || ended != ended2 || strings.Join(elems, "\n") != strings.Join(elems2, "\n") {
			t.Fatalf("split changed the result: %v / %v", err, err2)
		}
		// Tight limits derived from the input: splitting must not change
		// which limit trips, or where.
		tight := Limits{MaxStanzaBytes: 40 + len(data)%97, MaxDepth: 1 + len(data)%4, MaxAttrs: 1 + len(data)%3, MaxNameBytes: 14 + len(data)%5, MaxNSDecls: 1 + len(data)%3, MaxElements: 1 + len(data)%7}
		t1 := decodeChunks(tight, in)
		t2 := decodeChunks(tight, in[:len(in)/3], in[len(in)/3:])
		if errString(t1.err) != errString(t2.err) || strings.Join(t1.toks, "\n") != strings.Join(t2.toks, "\n") {
			t.Fatalf("split changed the result under %+v: %v / %v", tight, t1.err, t2.err)
		}
		if err != nil {
			var xe *Error
			if !errors.As(err, &xe) || !knownConditions[xe.Condition] {
				t.Fatalf("error %v has no known condition", err)
			}
			if xe.Offset < 0 || xe.Offset > int64(len(in)) {
				t.Fatalf("error offset %d outside input of %d bytes", xe.Offset, len(in))
			}
			return
		}
		if !ended {
			return // an element left open swallowed the trailer
		}
		std, serr := stdElements(in)
		if serr != nil {
			if nonASCIIName(data) {
				return // encoding/xml uses the older XML 1.0 name tables
			}
			t.Fatalf("we accepted what encoding/xml rejects: %v", serr)
		}
		if len(std) != len(elems) {
			t.Fatalf("got %d elements, encoding/xml %d", len(elems), len(std))
		}
		for i := range std {
			if std[i] != elems[i] {
				t.Fatalf("element %d:\n ours %s\n  std %s", i, elems[i], std[i])
			}
		}
		// AppendTo output decodes to the same element, with to='x'.
		// AppendToNS output means the same in a stream with another default namespace.
		_, _, nsOut, _, _ := decodeForFuzzNS(in, 0, false)
		otherHdr := `<stream:stream xmlns='urn:other' xmlns:stream='http://etherx.jabber.org/streams'>`
		for i, a := range nsOut {
			re, _, _, err := ourElements([]byte(otherHdr+a+trailer), 0)
			if err != nil || len(re) != 1 || re[0] != elems[i] {
				t.Fatalf("AppendToNS output %q decodes to %v (%v), want %s", a, re, err, elems[i])
			}
		}
		noTo, _, _, _ := decodeForFuzz(in, 0, true)
		for i, a := range appended {
			re, _, _, err := decodeForFuzz([]byte(streamHdr+a+trailer), 0, true)
			if err != nil || len(re) != 1 {
				t.Fatalf("AppendTo output %q does not decode: %v", a, err)
			}
			if re[0] != noTo[i] {
				t.Fatalf("AppendTo changed the element:\n got %s\nwant %s", re[0], noTo[i])
			}
		}
	})
}

// stripTo renders e like dumpElem without the top element's un-prefixed
// 'to' attribute, so that elements can be compared across a rewrite.
func stripTo(e *Element) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "<{%s}%s", e.Space(), e.Name())
	for i := 0; i < e.NumAttrs(); i++ {
		if a := e.AttrAt(i); len(a.Prefix) > 0 || string(a.Name) != "to" {
			fmt.Fprintf(&sb, " {%s}%s=%q", a.Space, a.Name, a.Value)
		}
	}
	sb.WriteString(">")
	if t := e.Text(); t != nil {
		fmt.Fprintf(&sb, "%q", t)
	}
	for c := e.FirstChild(); c != nil; c = c.NextSibling() {
		dumpElem(&sb, c)
	}
	sb.WriteString("</>")
	return sb.String()
}

// nonASCIIName reports whether data has a non-ASCII byte right after markup
// characters, roughly where a name could use one.
func nonASCIIName(data []byte) bool {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r >= 0x80 {
			return true
		}
		i += n
	}
	return false
}
