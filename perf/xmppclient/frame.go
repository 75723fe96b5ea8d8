package xmppclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// FrameKind says what a Frame holds.
type FrameKind int

const (
	// FrameElement is a complete top-level element (a stanza or a negotiation element).
	FrameElement FrameKind = iota + 1
	// FrameHeader is the server's <stream:stream ...> opening tag.
	FrameHeader
	// FrameStreamEnd is the server's </stream:stream>.
	FrameStreamEnd
)

// Frame is one top-level item of the server's stream. Raw aliases the
// client's read buffer and is valid only until the next call to Next.
type Frame struct {
	Kind FrameKind
	Raw  []byte
}

// errTooLarge is returned when one element exceeds the framer's size limit.
var errTooLarge = errors.New("element exceeds size limit")

// framer cuts a byte stream into top-level XMPP frames. It only tracks tag
// depth and quoting: the generator needs element boundaries and a few
// attributes, not a full XML parser. It is the thin layer to switch over to
// the project's xmpp/xml decoder once that lands.
type framer struct {
	r          io.Reader
	buf        []byte
	start, end int
	max        int
}

func newFramer(r io.Reader, size, max int) *framer {
	return &framer{r: r, buf: make([]byte, size), max: max}
}

// reset discards buffered data and reads from r from now on (after STARTTLS).
func (f *framer) reset(r io.Reader) {
	f.r = r
	f.start, f.end = 0, 0
}

// Buffered reports how many unread bytes the framer holds.
func (f *framer) Buffered() int { return f.end - f.start }

// Next returns the next frame, reading as needed.
func (f *framer) Next() (Frame, error) {
	for {
		fr, n, err := scanFrame(f.buf[f.start:f.end])
		if err != nil {
			return Frame{}, err
		}
		if n > 0 {
			f.start += n
			if fr.Kind != 0 {
				return fr, nil
			}
			continue // skipped whitespace, a declaration or a comment
		}
		if err := f.fill(); err != nil {
			return Frame{}, err
		}
	}
}

// fill reads more data, compacting or growing the buffer first.
func (f *framer) fill() error {
	if f.start > 0 && f.start == f.end {
		f.start, f.end = 0, 0
	}
	if f.end == len(f.buf) {
		if f.start > 0 {
			copy(f.buf, f.buf[f.start:f.end])
			f.end -= f.start
			f.start = 0
		} else {
			if len(f.buf) >= f.max {
				return errTooLarge
			}
			nb := make([]byte, min(2*len(f.buf), f.max))
			copy(nb, f.buf[:f.end])
			f.buf = nb
		}
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// scanFrame looks for one frame at the start of b. It returns the number of
// bytes consumed; 0 means more data is needed. A consumed run with a zero
// Kind is skippable text (whitespace keepalives, declarations, comments).
func scanFrame(b []byte) (Frame, int, error) {
	i := 0
	for i < len(b) && b[i] != '<' {
		i++
	}
	if i > 0 {
		return Frame{}, i, nil
	}
	if len(b) < 2 {
		return Frame{}, 0, nil
	}
	switch b[1] {
	case '?':
		e := bytes.Index(b, []byte("?>"))
		if e < 0 {
			return Frame{}, 0, nil
		}
		return Frame{}, e + 2, nil
	case '!':
		if len(b) < 4 {
			return Frame{}, 0, nil
		}
		if !bytes.HasPrefix(b, []byte("<!--")) {
			return Frame{}, 0, fmt.Errorf("unexpected %q at top level", b[:4])
		}
		e := bytes.Index(b[4:], []byte("-->"))
		if e < 0 {
			return Frame{}, 0, nil
		}
		return Frame{}, e + 7, nil
	case '/':
		e := bytes.IndexByte(b, '>')
		if e < 0 {
			return Frame{}, 0, nil
		}
		return Frame{Kind: FrameStreamEnd, Raw: b[:e+1]}, e + 1, nil
	}
	// An opening tag: the stream header stays open, anything else is an element.
	end, selfClosing, ok, err := scanTag(b, 0)
	if err != nil || !ok {
		return Frame{}, 0, err
	}
	name := tagName(b)
	if bytes.Equal(name, []byte("stream:stream")) || bytes.Equal(name, []byte("stream")) {
		return Frame{Kind: FrameHeader, Raw: b[:end]}, end, nil
	}
	if selfClosing {
		return Frame{Kind: FrameElement, Raw: b[:end]}, end, nil
	}
	depth := 1
	p := end
	for p < len(b) {
		lt := bytes.IndexByte(b[p:], '<')
		if lt < 0 {
			return Frame{}, 0, nil
		}
		p += lt
		if p+1 >= len(b) {
			return Frame{}, 0, nil
		}
		switch b[p+1] {
		case '/':
			gt := bytes.IndexByte(b[p:], '>')
			if gt < 0 {
				return Frame{}, 0, nil
			}
			p += gt + 1
			depth--
			if depth == 0 {
				return Frame{Kind: FrameElement, Raw: b[:p]}, p, nil
			}
		case '!':
			if bytes.HasPrefix(b[p:], []byte("<![CDATA[")) {
				e := bytes.Index(b[p:], []byte("]]>"))
				if e < 0 {
					return Frame{}, 0, nil
				}
				p += e + 3
			} else if bytes.HasPrefix(b[p:], []byte("<!--")) {
				e := bytes.Index(b[p:], []byte("-->"))
				if e < 0 {
					return Frame{}, 0, nil
				}
				p += e + 3
			} else if len(b)-p < 9 {
				return Frame{}, 0, nil
			} else {
				return Frame{}, 0, fmt.Errorf("unexpected %q inside element", b[p:p+4])
			}
		default:
			e, sc, ok, err := scanTag(b, p)
			if err != nil || !ok {
				return Frame{}, 0, err
			}
			p = e
			if !sc {
				depth++
			}
		}
	}
	return Frame{}, 0, nil
}

// scanTag finds the end of the tag starting at b[p] == '<', honouring quoted
// attribute values. ok is false when the tag is not complete yet.
func scanTag(b []byte, p int) (end int, selfClosing, ok bool, err error) {
	var quote byte
	for i := p + 1; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '<':
			return 0, false, false, fmt.Errorf("'<' inside a tag at offset %d", i)
		case c == '>':
			return i + 1, b[i-1] == '/', true, nil
		}
	}
	return 0, false, false, nil
}

// tagName returns the qualified name of the tag that starts raw.
func tagName(raw []byte) []byte {
	if len(raw) < 2 || raw[0] != '<' {
		return nil
	}
	i := 1
	for i < len(raw) {
		switch raw[i] {
		case ' ', '\t', '\r', '\n', '/', '>':
			return raw[1:i]
		}
		i++
	}
	return raw[1:i]
}

// Name returns the qualified element name of the frame ("message", "stream:features").
func (f Frame) Name() []byte { return tagName(f.Raw) }

// Attr returns the value of the named attribute of the frame's outermost
// tag, without unescaping, and whether it was present. It does not allocate.
func (f Frame) Attr(name string) ([]byte, bool) { return attr(f.Raw, name) }

func attr(raw []byte, name string) ([]byte, bool) {
	i := 1
	// Skip the element name.
	for i < len(raw) && !isSpace(raw[i]) && raw[i] != '>' && raw[i] != '/' {
		i++
	}
	for i < len(raw) {
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i >= len(raw) || raw[i] == '>' || raw[i] == '/' {
			return nil, false
		}
		ns := i
		for i < len(raw) && raw[i] != '=' && !isSpace(raw[i]) && raw[i] != '>' {
			i++
		}
		an := raw[ns:i]
		for i < len(raw) && (isSpace(raw[i]) || raw[i] == '=') {
			i++
		}
		if i >= len(raw) || (raw[i] != '\'' && raw[i] != '"') {
			return nil, false
		}
		q := raw[i]
		i++
		vs := i
		for i < len(raw) && raw[i] != q {
			i++
		}
		if i >= len(raw) {
			return nil, false
		}
		if string(an) == name {
			return raw[vs:i], true
		}
		i++
	}
	return nil, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// childText returns the text between <name ...> and </name> of the first
// child called name (qualified name as written), and whether it was found.
func childText(raw []byte, name string) ([]byte, bool) {
	p := 0
	for {
		i := bytes.Index(raw[p:], []byte("<"+name))
		if i < 0 {
			return nil, false
		}
		i += p
		j := i + 1 + len(name)
		if j < len(raw) && (raw[j] == '>' || raw[j] == '/' || isSpace(raw[j])) {
			gt := bytes.IndexByte(raw[j:], '>')
			if gt < 0 {
				return nil, false
			}
			if raw[j+gt-1] == '/' {
				return nil, true
			}
			s := j + gt + 1
			e := bytes.Index(raw[s:], []byte("</"+name))
			if e < 0 {
				return nil, false
			}
			return raw[s : s+e], true
		}
		p = j
	}
}

// innerText returns the content between the outermost start and end tags.
func innerText(raw []byte) []byte {
	gt := bytes.IndexByte(raw, '>')
	if gt < 0 || raw[gt-1] == '/' {
		return nil
	}
	lt := bytes.LastIndex(raw, []byte("</"))
	if lt < gt {
		return nil
	}
	return raw[gt+1 : lt]
}

// Reader cuts a server's or a client's byte stream into frames; test
// servers use it to speak to the generator.
type Reader struct{ f *framer }

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader { return &Reader{f: newFramer(r, 4096, maxElement)} }

// Next returns the next frame; Raw is valid until the following call.
func (r *Reader) Next() (Frame, error) { return r.f.Next() }

// ChildText returns the text of the first child element called name.
func ChildText(raw []byte, name string) ([]byte, bool) { return childText(raw, name) }
