package xml

import (
	"errors"
	"fmt"
	"strconv"
)

// Stream error conditions (RFC 6120 §4.9.3) that the decoder reports.
const (
	CondNotWellFormed       = "not-well-formed"
	CondRestrictedXML       = "restricted-xml"
	CondBadNamespacePrefix  = "bad-namespace-prefix"
	CondInvalidNamespace    = "invalid-namespace"
	CondUnsupportedEncoding = "unsupported-encoding"
	CondPolicyViolation     = "policy-violation"
	// CondBadFormat is used for input that is well-formed XML but not an
	// XMPP stream, such as character data directly inside the stream element.
	CondBadFormat = "bad-format"
)

// ErrNeedMore is returned by [Decoder.Next] when the buffer holds no complete
// token: read more bytes and call Next again.
var ErrNeedMore = errors.New("xml: need more input")

// errBufferFull is returned by ReadFrom when the caller kept reading without
// draining tokens with Next, so there is no room left within the limits.
var errBufferFull = errors.New("xml: read buffer full: call Next until ErrNeedMore before reading again")

// Error is a stream-level parse error. Condition is the RFC 6120 stream error
// condition the caller should send before closing the stream; Text says what
// was wrong; Offset is the stream offset (bytes since the decoder was created)
// of the offending byte.
type Error struct {
	Condition string
	Text      string
	Offset    int64
}

// Error implements error.
func (e *Error) Error() string {
	return "xml: " + e.Condition + " at offset " + strconv.FormatInt(e.Offset, 10) + ": " + e.Text
}

// newError builds an *Error; format arguments are only used on the error path.
func newError(cond string, off int64, format string, args ...any) *Error {
	text := format
	if len(args) > 0 {
		text = fmt.Sprintf(format, args...)
	}
	return &Error{Condition: cond, Text: text, Offset: off}
}

// Limits bounds what one peer can make the decoder hold or do. A zero field
// takes its default from [DefaultLimits].
type Limits struct {
	MaxStanzaBytes int // bytes of one depth-1 element, and of the stream header (default 256 KiB)
	MaxDepth       int // nesting depth below the stream element; a stanza is depth 1 (default 32)
	MaxAttrs       int // attributes, xmlns declarations included, per element (default 64)
	MaxNameBytes   int // bytes of one qualified name (default 256)
	// MaxNSDecls bounds the namespace declarations in scope at once inside
	// one depth-1 element (default 128). Without it, thousands of nested
	// declarations make every prefix lookup slow: a CPU attack.
	MaxNSDecls int
	// MaxElements bounds the start tags in one depth-1 element, itself
	// included (default 1000, Tigase's elements-number-limit). Without it
	// a stanza of empty elements such as <a/><a/>… costs the parse arena
	// about 30 times its size.
	MaxElements int
}

// DefaultLimits returns the limits used for client and server streams unless
// configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxStanzaBytes: 256 << 10,
		MaxDepth:       32,
		MaxAttrs:       64,
		MaxNameBytes:   256,
		MaxNSDecls:     128,
		MaxElements:    1000,
	}
}

// withDefaults fills zero (or negative) fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	def := DefaultLimits()
	if l.MaxStanzaBytes <= 0 {
		l.MaxStanzaBytes = def.MaxStanzaBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = def.MaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = def.MaxAttrs
	}
	if l.MaxNameBytes <= 0 {
		l.MaxNameBytes = def.MaxNameBytes
	}
	if l.MaxNSDecls <= 0 {
		l.MaxNSDecls = def.MaxNSDecls
	}
	if l.MaxElements <= 0 {
		l.MaxElements = def.MaxElements
	}
	return l
}
