package xml

import "unicode/utf8"

// Builder writes XML that the server originates (replies, errors, pushes).
// Text and attribute values are escaped; names are trusted to be valid. The
// zero value is ready to use. Misuse (End with nothing open, an odd number of
// attribute strings) is a programming error and panics.
type Builder struct {
	buf     []byte
	stack   []string
	openTag bool // the innermost start tag still lacks its '>'
}

// NewBuilder returns a Builder that appends to dst.
func NewBuilder(dst []byte) *Builder { return &Builder{buf: dst} }

// Start opens element name with attributes given as key, value pairs.
// "xmlns" and "xmlns:p" work like any other attribute.
func (b *Builder) Start(name string, attrs ...string) {
	if len(attrs)%2 != 0 {
		panic("xml: Builder.Start needs key, value pairs")
	}
	b.closeTag()
	b.buf = append(b.buf, '<')
	b.buf = append(b.buf, name...)
	for i := 0; i < len(attrs); i += 2 {
		b.buf = append(b.buf, ' ')
		b.buf = append(b.buf, attrs[i]...)
		b.buf = append(b.buf, '=', '\'')
		b.buf = EscapeAttr(b.buf, attrs[i+1])
		b.buf = append(b.buf, '\'')
	}
	b.stack = append(b.stack, name)
	b.openTag = true
}

// Text writes escaped character data into the innermost open element.
func (b *Builder) Text(s string) {
	b.closeTag()
	b.buf = EscapeText(b.buf, s)
}

// Raw writes pre-serialised, trusted XML as is.
func (b *Builder) Raw(p []byte) {
	b.closeTag()
	b.buf = append(b.buf, p...)
}

// End closes the innermost open element, self-closing it if it is empty.
func (b *Builder) End() {
	if len(b.stack) == 0 {
		panic("xml: Builder.End with no open element")
	}
	name := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	if b.openTag {
		b.openTag = false
		b.buf = append(b.buf, '/', '>')
		return
	}
	b.buf = append(b.buf, '<', '/')
	b.buf = append(b.buf, name...)
	b.buf = append(b.buf, '>')
}

// Open returns the number of elements started and not yet ended.
func (b *Builder) Open() int { return len(b.stack) }

// Bytes returns what has been written so far.
func (b *Builder) Bytes() []byte { return b.buf }

// Reset empties the builder, keeping its memory.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.stack = b.stack[:0]
	b.openTag = false
}

// closeTag finishes a pending start tag before content is written.
func (b *Builder) closeTag() {
	if b.openTag {
		b.buf = append(b.buf, '>')
		b.openTag = false
	}
}

// EscapeText appends s to dst escaped for character data: & < > and CR
// become references; characters XML cannot carry (controls, invalid UTF-8,
// U+FFFE, U+FFFF) become U+FFFD so the output is always well-formed.
func EscapeText(dst []byte, s string) []byte { return appendEscaped(dst, s, false) }

// EscapeAttr appends s to dst escaped for an attribute value in either kind
// of quotes: also " ' and TAB, LF, CR (which attribute parsing would
// otherwise normalise) become references.
func EscapeAttr(dst []byte, s string) []byte { return appendEscaped(dst, s, true) }

// appendEscaped is the escaper behind EscapeText, EscapeAttr and AppendTo.
func appendEscaped[T string | []byte](dst []byte, s T, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var rep string
		size := 1
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				rep = "&amp;"
			case c == '<':
				rep = "&lt;"
			case c == '>':
				rep = "&gt;"
			case c == '\r':
				rep = "&#xD;"
			case attr && c == '"':
				rep = "&quot;"
			case attr && c == '\'':
				rep = "&apos;"
			case attr && c == '\n':
				rep = "&#xA;"
			case attr && c == '\t':
				rep = "&#x9;"
			case c < 0x20 && c != '\n' && c != '\t':
				rep = "\uFFFD"
			default:
				i++
				continue
			}
		} else {
			var r rune
			r, size = decodeRune(s, i)
			if r != utf8.RuneError && r != 0xFFFE && r != 0xFFFF {
				i += size
				continue
			}
			if size == 3 && r == utf8.RuneError {
				// A literal U+FFFD in the input is fine as it is.
				i += size
				continue
			}
			rep = "\uFFFD"
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, rep...)
		i += size
		last = i
	}
	return append(dst, s[last:]...)
}

// decodeRune decodes the UTF-8 sequence at s[i] like utf8.DecodeRune, for
// both strings and byte slices without converting.
func decodeRune[T string | []byte](s T, i int) (rune, int) {
	n := len(s) - i
	c0 := s[i]
	cont := func(k int) bool { return k < n && s[i+k]&0xC0 == 0x80 }
	switch {
	case c0 < 0xC2:
		return utf8.RuneError, 1
	case c0 < 0xE0:
		if !cont(1) {
			return utf8.RuneError, 1
		}
		return rune(c0&0x1F)<<6 | rune(s[i+1]&0x3F), 2
	case c0 < 0xF0:
		if !cont(1) || !cont(2) {
			return utf8.RuneError, 1
		}
		r := rune(c0&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
		if r < 0x800 || (r >= 0xD800 && r <= 0xDFFF) {
			return utf8.RuneError, 1
		}
		return r, 3
	case c0 < 0xF5:
		if !cont(1) || !cont(2) || !cont(3) {
			return utf8.RuneError, 1
		}
		r := rune(c0&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F)
		if r < 0x10000 || r > utf8.MaxRune {
			return utf8.RuneError, 1
		}
		return r, 4
	}
	return utf8.RuneError, 1
}
