package xml

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// Kind says what a Token is.
type Kind uint8

// Token kinds.
const (
	// StreamStart is the stream header <stream:stream …>; Token.Elem is the
	// header element (attributes, declarations; no children).
	StreamStart Kind = iota + 1
	// StreamEnd is </stream:stream>; Token.Elem is nil.
	StreamEnd
	// ElementKind is a complete depth-1 element (stanza or nonza).
	ElementKind
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case StreamStart:
		return "StreamStart"
	case StreamEnd:
		return "StreamEnd"
	case ElementKind:
		return "Element"
	}
	return "Kind(invalid)"
}

// Token is one unit of an XMPP stream. Elem follows the lifetime rule of the
// package: it is valid until the next call on the decoder.
type Token struct {
	Kind Kind
	Elem *Element
}

// header holds what must outlive the stream header's bytes: the namespaces
// it declares (in scope for every later element) and its qualified name
// (to match </stream:stream>). buf always starts with the predefined xml binding.
type header struct {
	buf   []byte
	binds []binding
	qname span // in buf
	// Room for a client's usual header (the xml, default and stream bindings, about 100 bytes) inside
	// the decoder: one object per connection instead of two slices grown step by step at every stream
	// (re)start. A longer header spills to the heap as before.
	bufArr  [112]byte
	bindArr [3]binding
}

// reset forgets the stream element, keeping only the predefined xml prefix.
func (h *header) reset() {
	if h.buf == nil {
		h.buf, h.binds = h.bufArr[:0], h.bindArr[:0]
	}
	h.buf = append(append(h.buf[:0], "xml"...), NSXML...)
	h.binds = append(h.binds[:0], binding{
		prefix: span{off: 0, n: 3, aux: true},
		uri:    span{off: 3, n: int32(len(NSXML)), aux: true},
		depth:  -1,
	})
	h.qname = span{aux: true}
}

// add appends b to buf and returns its span.
func (h *header) add(b []byte) span {
	s := span{off: int32(len(h.buf)), n: int32(len(b)), aux: true}
	h.buf = append(h.buf, b...)
	return s
}

type streamState uint8

const (
	stBefore streamState = iota // waiting for the stream header
	stOpen                      // inside the stream element
	stEnded                     // </stream:stream> seen
)

// Framer states: where in the current top-level token the scan stopped.
const (
	fsIdle      uint8 = iota // between tokens
	fsLT                     // after '<'
	fsStartName              // in a start tag's name
	fsStartTag               // in a start tag after its name, outside quotes
	fsQuote                  // in a quoted attribute value
	fsEndTag                 // in an end tag
	fsText                   // in character data
	fsBang                   // after "<!", matching "[CDATA["
	fsCDATA                  // in a CDATA section
	fsPI                     // in a top-level processing instruction
)

// Kinds of top-level token the framer can be scanning.
const (
	topStart uint8 = iota + 1 // a start tag (stream header or depth-1 element)
	topEnd                    // the stream's end tag
	topPI                     // a processing instruction (the XML declaration)
)

// framer finds where the next top-level token ends. It is a resumable state
// machine over the buffer, so a token arriving in many reads is scanned once;
// the full parse runs only on a complete token. Positions are relative to the
// token start, which survives compaction.
//
// Besides counting depth, the framer matches every end tag against the name
// of the start tag it closes, so a peer sending <a><b></a> is refused as soon
// as </a> has arrived: counting alone would take </a> for </b> and wait for
// more input until the size limit or an idle timeout. The names of the open
// elements stay in the buffer (a token's bytes are kept until it is
// complete), so the stack holds only their offsets: work.open.
type framer struct {
	state  uint8
	top    uint8
	quote  byte
	k      uint8 // bytes of "[CDATA[" matched
	header bool  // stop after the first start tag (stream header)
	pos    int
	depth  int
	elems  int   // start tags seen in this token, for Limits.MaxElements
	tag    int32 // offset of the '<' of the tag being scanned
	name   int32 // length of the current start tag's qualified name
}

// nameRef locates an open element's qualified name in the current token.
type nameRef struct{ off, n int32 }

// nameByte marks the bytes that continue a qualified name as far as the
// framer is concerned: the ASCII name characters and every byte of a
// multi-byte UTF-8 sequence. The parse validates names properly; the framer
// only needs where a name ends.
var nameByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= utf8.RuneSelf || nameTab[c]&ntChar != 0
	}
	return t
}()

const cdataOpen = "[CDATA["

// tagStop marks the bytes that end a run inside a start tag.
var tagStop = func() (t [256]bool) {
	for _, c := range []byte(`"'<>`) {
		t[c] = true
	}
	return t
}()

// Decoder tokenizes one XMPP stream. It is not safe for concurrent use: one
// connection's reader owns it.
type Decoder struct {
	lim  Limits
	bufp *[]byte // pooled read buffer; nil while released
	buf  []byte
	r, w int   // buf[r:w] is unconsumed input
	off  int64 // stream offset of buf[0]

	growNext bool // the last read filled the buffer: grow before the next
	fr       framer
	ws       *work // pooled parse workspace; nil while released
	hdr      header

	st         streamState
	declOK     bool // an XML declaration may still come
	pendingEnd bool // a self-closed stream header: StreamEnd comes next
	err        error
}

// NewDecoder returns a decoder enforcing l (zero fields take defaults). It
// holds no buffer until bytes arrive.
func NewDecoder(l Limits) *Decoder {
	d := &Decoder{lim: l.withDefaults(), declOK: true}
	d.hdr.reset()
	return d
}

// Limits returns the limits the decoder enforces.
func (d *Decoder) Limits() Limits { return d.lim }

// ReadFrom performs exactly one r.Read into the buffer's free space, first
// compacting or growing the buffer if it is nearly full, and returns what
// Read returned. (It has io.ReaderFrom's signature, which go vet requires of
// the name, but not its read-to-EOF semantics.) Call Next until ErrNeedMore
// between reads: a buffer that is full of complete tokens cannot grow and
// ReadFrom returns an error. A failed decoder returns its error without
// reading.
//
// The buffer is taken before Read blocks, so a reader parked in ReadFrom
// holds one (4 KiB unless a stanza needed more). A connection layer that
// wants idle sessions to hold none waits for readability first (or reads
// into a shared buffer and uses Feed), and calls Release when Next returns
// ErrNeedMore with Buffered() == 0.
func (d *Decoder) ReadFrom(r io.Reader) (int64, error) {
	if d.err != nil {
		return 0, d.err
	}
	need := minFree
	if d.growNext {
		d.growNext = false
		need = len(d.buf)
	}
	if err := d.reserve(need, true); err != nil {
		return 0, err
	}
	free := len(d.buf) - d.w
	n, err := r.Read(d.buf[d.w:])
	if n < 0 || n > free {
		n = 0
	}
	d.w += n
	if n == free && len(d.buf) < readGrowCap {
		d.growNext = true
	}
	return int64(n), err
}

// Feed appends a copy of p to the input. A failed decoder ignores it.
func (d *Decoder) Feed(p []byte) {
	if len(p) == 0 || d.err != nil {
		return
	}
	_ = d.reserve(len(p), false) // uncapped: cannot fail
	d.w += copy(d.buf[d.w:], p)
}

// reserve makes at least need bytes free after w: it takes a buffer if none
// is held, compacts when that is enough, and grows otherwise. capped is the
// ReadFrom mode: it never asks for more room than the rest of a maximal
// token needs, so the buffer stays within the size class of the stanza
// limit, and it refuses to grow once a whole token's worth is pending.
func (d *Decoder) reserve(need int, capped bool) error {
	if d.r == d.w && d.r > 0 {
		d.off += int64(d.r)
		d.r, d.w = 0, 0
	}
	pending := d.w - d.r
	if capped {
		if rem := d.lim.MaxStanzaBytes - pending; rem < need {
			need = max(rem, 1)
		}
	}
	if d.bufp == nil {
		d.bufp = getBuf(max(need, minBufSize))
		d.buf = *d.bufp
	}
	free := len(d.buf) - d.w
	if free >= need {
		return nil
	}
	if len(d.buf)-pending >= need {
		copy(d.buf, d.buf[d.r:d.w])
		d.off += int64(d.r)
		d.r, d.w = 0, pending
		return nil
	}
	if capped && pending >= d.lim.MaxStanzaBytes {
		return errBufferFull
	}
	size := max(pending+need, 2*len(d.buf))
	if capped {
		size = min(size, max(pending+need, d.lim.MaxStanzaBytes))
	}
	nb := getBuf(size)
	copy(*nb, d.buf[d.r:d.w])
	putBuf(d.bufp)
	d.bufp, d.buf = nb, *nb
	d.off += int64(d.r)
	d.r, d.w = 0, pending
	return nil
}

// Release returns the read buffer and the parse workspace to their pools if
// no input is pending, so an idle connection holds neither. Elements from
// earlier tokens become invalid. It does nothing while bytes are buffered.
func (d *Decoder) Release() {
	if d.r != d.w {
		return
	}
	if d.bufp != nil {
		putBuf(d.bufp)
		d.bufp, d.buf = nil, nil
	}
	d.off += int64(d.r)
	d.r, d.w = 0, 0
	d.growNext = false
	if d.ws != nil {
		d.ws.trim()
		workPool.Put(d.ws)
		d.ws = nil
	}
}

// Reset prepares for a stream restart (after SASL success, RFC 6120 §6.4.6):
// the stream element and its namespaces are forgotten and an XML declaration
// is allowed again; buffered bytes are kept. A decoder that failed stays failed.
func (d *Decoder) Reset() {
	d.st = stBefore
	d.declOK = true
	d.pendingEnd = false
	d.hdr.reset()
	d.fr = framer{}
}

// Buffered returns the number of unconsumed input bytes. After STARTTLS the
// caller fails the stream if it is not 0 (no plaintext injection).
func (d *Decoder) Buffered() int { return d.w - d.r }

// Offset returns the number of input bytes consumed so far.
func (d *Decoder) Offset() int64 { return d.off + int64(d.r) }

// Err returns the error that killed the decoder, or nil.
func (d *Decoder) Err() error { return d.err }

// fail records a fatal error at buffer index i.
func (d *Decoder) fail(cond string, i int, format string, args ...any) (Token, error) {
	d.err = newError(cond, d.off+int64(i), format, args...)
	return Token{}, d.err
}

// workspace returns the decoder's parse workspace, taking one from the pool.
func (d *Decoder) workspace() *work {
	if d.ws == nil {
		d.ws = workPool.Get().(*work)
	}
	return d.ws
}

// Next returns the next token. It returns ErrNeedMore when the buffer holds
// no complete token, io.EOF after StreamEnd, and an *Error (forever after)
// when the input breaks a rule.
func (d *Decoder) Next() (Token, error) {
	if d.err != nil {
		return Token{}, d.err
	}
	if d.pendingEnd {
		d.pendingEnd = false
		d.st = stEnded
		return Token{Kind: StreamEnd}, nil
	}
	if d.st == stEnded {
		return Token{}, io.EOF
	}
	for {
		if d.fr.state == fsIdle {
			i := d.r
			for i < d.w && isSpace(d.buf[i]) {
				i++
			}
			d.r = i
			if i == d.w {
				return Token{}, ErrNeedMore
			}
			if d.buf[i] != '<' {
				if d.st == stBefore {
					return d.fail(CondNotWellFormed, i, "character data before the stream header")
				}
				return d.fail(CondBadFormat, i, "character data at stream level")
			}
			d.fr = framer{state: fsLT, pos: 1, header: d.st == stBefore}
		}
		n, err := d.frame()
		if err != nil {
			d.err = err
			return Token{}, err
		}
		if n == 0 {
			return Token{}, ErrNeedMore
		}
		tok := d.buf[d.r : d.r+n : d.r+n]
		base := d.off + int64(d.r)
		top := d.fr.top
		d.r += n
		d.fr = framer{}
		switch top {
		case topPI:
			if err := d.xmlDecl(tok, base); err != nil {
				d.err = err
				return Token{}, err
			}
		case topEnd:
			if err := d.streamEnd(tok, base); err != nil {
				d.err = err
				return Token{}, err
			}
			d.st = stEnded
			return Token{Kind: StreamEnd}, nil
		default:
			var t Token
			if d.st == stBefore {
				t, err = d.streamHeader(tok, base)
			} else {
				ws := d.workspace()
				ws.begin(tok, base, d.lim, &d.hdr)
				if err = ws.parseElement(); err == nil {
					t = Token{Kind: ElementKind, Elem: &ws.doc.nodes[0]}
				}
			}
			if err != nil {
				d.err = err
				return Token{}, err
			}
			return t, nil
		}
	}
}

// errAt builds an error at offset i of the current token.
func (d *Decoder) errAt(cond string, i int, format string, args ...any) error {
	return newError(cond, d.off+int64(d.r+i), format, args...)
}

// frame advances the framer over the buffered bytes of the current token.
// It returns the token's length once it is complete, 0 if more input is needed.
func (d *Decoder) frame() (int, error) {
	f := &d.fr
	ws := d.workspace() // holds the stack of open names
	b := d.buf[d.r:d.w]
	full := len(b)
	if len(b) > d.lim.MaxStanzaBytes {
		b = b[:d.lim.MaxStanzaBytes]
	}
	i := f.pos
scan:
	for i < len(b) {
		switch f.state {
		case fsText:
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				i = len(b)
				break scan
			}
			i += j + 1
			f.state = fsLT
		case fsLT:
			switch c := b[i]; c {
			case '/':
				f.state, f.tag = fsEndTag, int32(i-1)
				if f.depth == 0 {
					f.top = topEnd
				}
				i++
			case '?':
				if f.depth > 0 {
					return 0, d.errAt(CondRestrictedXML, i-1, "processing instructions are not allowed")
				}
				f.state, f.top = fsPI, topPI
				i++
			case '!':
				f.state, f.k = fsBang, 0
				i++
			default:
				if c < 0x80 && nameTab[c]&ntStart == 0 {
					return 0, d.errAt(CondNotWellFormed, i, "invalid character %q after '<'", c)
				}
				f.elems++
				if f.elems > d.lim.MaxElements {
					return 0, d.errAt(CondPolicyViolation, i-1, "more than %d elements in one stanza", d.lim.MaxElements)
				}
				f.state, f.tag = fsStartName, int32(i-1)
				if f.depth == 0 {
					f.top = topStart
				}
			}
		case fsStartName:
			for i < len(b) && nameByte[b[i]] {
				i++
			}
			if i == len(b) {
				break scan
			}
			f.name = int32(i) - f.tag - 1
			f.state = fsStartTag
		case fsStartTag:
			for i < len(b) && !tagStop[b[i]] {
				i++
			}
			if i == len(b) {
				break scan
			}
			switch c := b[i]; c {
			case '"', '\'':
				f.quote, f.state = c, fsQuote
				i++
			case '<':
				return 0, d.errAt(CondNotWellFormed, i, "'<' inside a tag")
			case '>':
				selfClose := b[i-1] == '/'
				i++
				if selfClose {
					if f.depth == 0 {
						return i, nil
					}
				} else {
					if f.depth == 0 && f.header {
						return i, nil
					}
					f.depth++
					if f.depth > d.lim.MaxDepth {
						return 0, d.errAt(CondPolicyViolation, i-1, "elements nested deeper than %d", d.lim.MaxDepth)
					}
					ws.open = append(ws.open[:f.depth-1], nameRef{off: f.tag + 1, n: f.name})
				}
				f.state = fsText
			}
		case fsQuote:
			j := bytes.IndexByte(b[i:], f.quote)
			if j < 0 {
				i = len(b)
				break scan
			}
			i += j + 1
			f.state = fsStartTag
		case fsEndTag:
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 {
				i = len(b)
				break scan
			}
			i += j + 1
			if f.depth == 0 {
				return i, nil // the stream's end tag, checked by streamEnd
			}
			if err := d.matchEnd(b, int(f.tag), i-1, ws.open[f.depth-1]); err != nil {
				return 0, err
			}
			if f.depth == 1 {
				return i, nil // the element's own end tag
			}
			f.depth--
			f.state = fsText
		case fsBang:
			c := b[i]
			if c != cdataOpen[f.k] {
				if f.k == 0 && (c == '-' || (c >= 'A' && c <= 'Z')) {
					return 0, d.errAt(CondRestrictedXML, i-2, "comments and DTDs are not allowed")
				}
				return 0, d.errAt(CondNotWellFormed, i, "malformed markup after '<!'")
			}
			f.k++
			i++
			if int(f.k) == len(cdataOpen) {
				if f.depth == 0 {
					if f.header {
						return 0, d.errAt(CondNotWellFormed, i, "character data before the stream header")
					}
					return 0, d.errAt(CondBadFormat, i, "character data at stream level")
				}
				f.state = fsCDATA
			}
		case fsCDATA, fsPI:
			end := "]]>"
			if f.state == fsPI {
				end = "?>"
			}
			j := bytes.Index(b[i:], []byte(end))
			if j < 0 {
				// Keep the tail that could be the start of the terminator.
				i = max(i, len(b)-len(end)+1)
				f.pos = i
				return d.needMore(full)
			}
			i += j + len(end)
			if f.state == fsPI {
				return i, nil
			}
			f.state = fsText
		}
	}
	f.pos = i
	return d.needMore(full)
}

// matchEnd checks the end tag b[tag:gt+1] against the open element whose
// name is at open: the same name, then only whitespace before '>'. It
// reports what the parse would, at the same offsets.
func (d *Decoder) matchEnd(b []byte, tag, gt int, open nameRef) error {
	s := tag + 2
	e := s
	for e < gt && nameByte[b[e]] {
		e++
	}
	if e == s {
		return d.errAt(CondNotWellFormed, s, "invalid end tag name")
	}
	want := b[open.off : open.off+open.n]
	if got := b[s:e]; len(got) != len(want) || !bytes.Equal(got, want) {
		return d.errAt(CondNotWellFormed, tag, "end tag </%s> does not match <%s>", got, want)
	}
	if k := skipSpace(b[:gt], e); k != gt {
		return d.errAt(CondNotWellFormed, k, "expected '>' in end tag")
	}
	return nil
}

// needMore reports an incomplete token, or a policy violation if the token
// already has more bytes than any token may have.
func (d *Decoder) needMore(buffered int) (int, error) {
	if buffered >= d.lim.MaxStanzaBytes {
		return 0, d.errAt(CondPolicyViolation, d.lim.MaxStanzaBytes, "element larger than %d bytes", d.lim.MaxStanzaBytes)
	}
	return 0, nil
}

// streamHeader parses the stream element's start tag.
func (d *Decoder) streamHeader(tok []byte, base int64) (Token, error) {
	ws := d.workspace()
	d.hdr.reset()
	ws.begin(tok, base, d.lim, &d.hdr)
	if bad := validChars(tok); bad >= 0 {
		return Token{}, ws.errAt(CondNotWellFormed, bad, "invalid UTF-8 or character not allowed in XML")
	}
	_, idx, err := ws.startTag(0, 0)
	if err != nil {
		return Token{}, err
	}
	ws.stack = ws.stack[:0]
	n := &ws.doc.nodes[idx]
	n.end = int32(len(tok))
	n.innerEnd = -1
	n.last = idx + 1
	if string(n.Name()) != "stream" || string(n.Space()) != NSStream {
		return Token{}, ws.errAt(CondInvalidNamespace, 1, "stream element must be {%s}stream, not {%s}%s", NSStream, n.Space(), n.Name())
	}
	// Keep the declarations: they are in scope for every element of the stream.
	ds := ws.doc.attrs[n.attr0+n.nattr : n.attr0+n.nattr+n.ndecl]
	for i := range ds {
		p := d.hdr.add(ws.doc.bytes(ds[i].name))
		u := d.hdr.add(ws.doc.bytes(ds[i].value))
		d.hdr.binds = append(d.hdr.binds, binding{prefix: p, uri: u, depth: 0})
	}
	qs := n.name.off
	if n.prefix.off >= 0 {
		qs = n.prefix.off
	}
	d.hdr.qname = d.hdr.add(tok[qs : n.name.off+n.name.n])
	d.st = stOpen
	d.declOK = false
	if n.selfClosed {
		d.pendingEnd = true
	}
	return Token{Kind: StreamStart, Elem: n}, nil
}

// streamEnd checks the stream's end tag.
func (d *Decoder) streamEnd(tok []byte, base int64) error {
	at := func(cond string, i int, format string, args ...any) error {
		return newError(cond, base+int64(i), format, args...)
	}
	if d.st != stOpen {
		return at(CondNotWellFormed, 0, "end tag before the stream header")
	}
	if bad := validChars(tok); bad >= 0 {
		return at(CondNotWellFormed, bad, "invalid UTF-8 or character not allowed in XML")
	}
	end, _, ok := scanName(tok, 2)
	if !ok {
		return at(CondNotWellFormed, end, "invalid end tag name")
	}
	want := d.hdr.buf[d.hdr.qname.off : d.hdr.qname.off+d.hdr.qname.n]
	if !bytes.Equal(tok[2:end], want) {
		return at(CondNotWellFormed, 0, "end tag </%s> does not match <%s>", tok[2:end], want)
	}
	if k := skipSpace(tok, end); k != len(tok)-1 {
		return at(CondNotWellFormed, k, "expected '>' in end tag")
	}
	return nil
}

// xmlDecl checks a top-level processing instruction: only the XML
// declaration is allowed, only at the start of the stream, only for UTF-8.
func (d *Decoder) xmlDecl(tok []byte, base int64) error {
	at := func(cond string, i int, format string, args ...any) error {
		return newError(cond, base+int64(i), format, args...)
	}
	if bad := validChars(tok); bad >= 0 {
		return at(CondNotWellFormed, bad, "invalid UTF-8 or character not allowed in XML")
	}
	body := tok[:len(tok)-2] // without "?>"
	end, _, ok := scanName(body, 2)
	if !ok || string(body[2:end]) != "xml" || (end < len(body) && !isSpace(body[end])) {
		return at(CondRestrictedXML, 0, "processing instructions are not allowed")
	}
	if !d.declOK {
		return at(CondRestrictedXML, 0, "XML declaration not at the start of the stream")
	}
	d.declOK = false
	i := end
	seen := 0 // 1 version, 2 encoding, 3 standalone: they must come in this order
	for {
		k := skipSpace(body, i)
		if k == len(body) {
			break
		}
		if k == i {
			return at(CondNotWellFormed, k, "missing whitespace in XML declaration")
		}
		ne := k
		for ne < len(body) && body[ne] >= 'a' && body[ne] <= 'z' {
			ne++
		}
		name := string(body[k:ne])
		m := skipSpace(body, ne)
		if m >= len(body) || body[m] != '=' {
			return at(CondNotWellFormed, m, "expected '=' in XML declaration")
		}
		m = skipSpace(body, m+1)
		if m >= len(body) || (body[m] != '"' && body[m] != '\'') {
			return at(CondNotWellFormed, m, "expected a quoted value in XML declaration")
		}
		ve := bytes.IndexByte(body[m+1:], body[m])
		if ve < 0 {
			return at(CondNotWellFormed, m, "unterminated value in XML declaration")
		}
		val := body[m+1 : m+1+ve]
		i = m + 2 + ve
		switch {
		case name == "version" && seen < 1:
			seen = 1
			if !validVersion(val) {
				return at(CondNotWellFormed, m, "unsupported XML version %q", val)
			}
		case name == "encoding" && seen == 1:
			seen = 2
			if !bytes.EqualFold(val, []byte("UTF-8")) {
				return at(CondUnsupportedEncoding, m, "encoding %q: only UTF-8 is allowed", val)
			}
		case name == "standalone" && seen >= 1 && seen < 3:
			seen = 3
			if string(val) != "yes" && string(val) != "no" {
				return at(CondNotWellFormed, m, "standalone must be yes or no")
			}
		default:
			return at(CondNotWellFormed, k, "unexpected %q in XML declaration", name)
		}
	}
	if seen == 0 {
		return at(CondNotWellFormed, 0, "XML declaration without version")
	}
	return nil
}

// validVersion reports whether v is "1." followed by digits.
func validVersion(v []byte) bool {
	if len(v) < 3 || v[0] != '1' || v[1] != '.' {
		return false
	}
	for _, c := range v[2:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
