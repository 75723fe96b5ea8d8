// Package xml is Starling's incremental, zero-copy tokenizer for XMPP streams
// (the XML subset of RFC 6120 §11).
//
// A [Decoder] owns one read buffer per connection. The caller fills it with
// [Decoder.ReadFrom] (one Read per call) or [Decoder.Feed] and takes tokens with
// [Decoder.Next]: the stream header ([StreamStart]), each complete depth-1
// element such as a stanza or a nonza ([ElementKind]), and the closing
// stream tag ([StreamEnd]). Whitespace between depth-1 elements (keepalives)
// is skipped. [ErrNeedMore] means the buffer holds no complete token yet;
// after StreamEnd, Next returns io.EOF.
//
// Lifetime rule: an [*Element] returned by Next, and every slice its methods
// return, are views into the decoder's buffer and reused arenas. They stay
// valid only until the next call to Next, Feed, ReadFrom, Reset or Release on
// the same decoder. [Element.Clone] makes an owned copy that lives on;
// [Element.AppendTo] copies the element's bytes out (optionally with 'from'
// and 'to' rewritten) without re-serialising it.
//
// Limits (see [Limits]) are enforced while scanning, before a token is
// complete: the size of one depth-1 element (and of the stream header), the
// nesting depth below the stream element, the elements in one depth-1
// element, the attributes per element, the length of a qualified name and
// the namespace declarations in scope. Exceeding one is a policy-violation
// stream error whose text names the limit; the buffer never grows beyond
// what the stanza limit needs.
//
// The framer also matches each end tag against the start tag it closes, so
// a mismatched end tag is not-well-formed as soon as its '>' has arrived,
// not when the element would have ended by depth count alone.
//
// The XMPP restrictions are enforced too: no comments, processing
// instructions, DTDs or entities other than the five predefined ones
// (restricted-xml); the XML declaration only at the start of a stream and
// only with encoding UTF-8 (unsupported-encoding); UTF-8 only, legal XML
// characters only, namespaces resolved per "Namespaces in XML 1.0"
// (bad-namespace-prefix); the stream element must be
// {http://etherx.jabber.org/streams}stream (invalid-namespace); character
// data at stream level is bad-format. Every error is an [*Error] naming the
// RFC 6120 stream error condition and the stream offset where it was found;
// after an error the decoder is dead and keeps returning it.
//
// Deliberate leniencies: unescaped '>' and quote characters in character
// data are accepted (RFC 6120 §11.1 forbids them, but deployed clients send
// them and they are unambiguous), whitespace may precede the XML declaration,
// and attribute values are not whitespace-normalised (the same as
// encoding/xml).
//
// [Builder] writes the XML the server originates (replies, errors) with all
// values escaped.
//
// Memory: the read buffer comes from a size-classed sync.Pool, starts at
// 4 KiB and grows when a token does not fit (or, up to 64 KiB, when reads
// keep filling it); [Decoder.Release] returns it
// (and the parse arenas) when nothing is pending, so an idle connection holds
// only the Decoder itself (about 500 bytes).
package xml
