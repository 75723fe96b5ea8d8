package xml

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	streamNS  = `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'`
	streamHdr = `<stream:stream ` + streamNS + ` to='example.com' version='1.0'>`
	trailer   = `</stream:stream>`
)

// dumpElem renders an element tree canonically: names, namespaces,
// attributes, text and children, as the decoder resolved them.
func dumpElem(sb *strings.Builder, e *Element) {
	fmt.Fprintf(sb, "<{%s}%s", e.Space(), e.Name())
	for i := 0; i < e.NumAttrs(); i++ {
		a := e.AttrAt(i)
		fmt.Fprintf(sb, " {%s}%s=%q", a.Space, a.Name, a.Value)
	}
	sb.WriteString(">")
	if t := e.Text(); t != nil {
		fmt.Fprintf(sb, "%q", t)
	}
	for c := e.FirstChild(); c != nil; c = c.NextSibling() {
		dumpElem(sb, c)
	}
	sb.WriteString("</>")
}

// dumpToken renders a token canonically, raw bytes included.
func dumpToken(t Token) string {
	var sb strings.Builder
	sb.WriteString(t.Kind.String())
	if t.Elem != nil {
		sb.WriteString(" ")
		dumpElem(&sb, t.Elem)
		fmt.Fprintf(&sb, " raw=%q", t.Elem.Raw())
	}
	return sb.String()
}

// result is everything a decoder produced for one input.
type result struct {
	toks []string
	err  error
}

// errString renders an error with condition and offset for comparison.
func errString(err error) string {
	var xe *Error
	if errors.As(err, &xe) {
		return fmt.Sprintf("%s@%d: %s", xe.Condition, xe.Offset, xe.Text)
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// drain takes tokens until the decoder needs more input, ends or fails.
// It reports whether the decoder is finished (EOF or error).
func drain(d *Decoder, r *result) bool {
	for {
		t, err := d.Next()
		switch {
		case errors.Is(err, ErrNeedMore):
			return false
		case err == io.EOF:
			return true
		case err != nil:
			r.err = err
			return true
		}
		r.toks = append(r.toks, dumpToken(t))
	}
}

// decodeChunks feeds the chunks one by one, draining after each.
func decodeChunks(l Limits, chunks ...[]byte) result {
	d := NewDecoder(l)
	var r result
	for _, c := range chunks {
		d.Feed(c)
		if drain(d, &r) {
			return r
		}
	}
	return r
}

// condition returns the condition of err, "" for nil and "?" for non-*Error.
func condition(err error) string {
	if err == nil {
		return ""
	}
	var xe *Error
	if errors.As(err, &xe) {
		return xe.Condition
	}
	return "?" + err.Error()
}
