// Package stream holds the stream-level pieces of RFC 6120 that carry no socket: the stream header,
// stream features, stream errors and the namespaces of negotiation. The server's negotiation state
// machine (node/c2s) is written on top of it.
package stream

import (
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Namespaces of stream negotiation.
const (
	NSStream       = "http://etherx.jabber.org/streams"
	NSClient       = "jabber:client"
	NSServer       = "jabber:server"
	NSStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"
	NSTLS          = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL         = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind         = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession      = "urn:ietf:params:xml:ns:xmpp-session"
	NSSASLCB       = "urn:xmpp:sasl-cb:0"          // XEP-0440
	NSRosterVer    = "urn:xmpp:features:rosterver" // RFC 6121 §2.6
	NSRegister     = "http://jabber.org/features/iq-register"
	NSPreApproval  = "urn:xmpp:features:pre-approval"
	NSSM           = "urn:xmpp:sm:3" // XEP-0198
	NSXML          = "http://www.w3.org/XML/1998/namespace"
)

// Header is what a stream header says.
type Header struct {
	To, From, ID, Version, Lang string
	NS                          string // the default namespace (jabber:client for clients)
}

// ParseHeader reads a stream header element. It checks what RFC 6120 §4.7 makes the receiver check and
// returns the stream error to send when something is wrong; the header is filled as far as it was read.
func ParseHeader(e *xml.Element, wantNS string) (Header, *Error) {
	h := Header{
		To:      string(e.Attr("to")),
		From:    string(e.Attr("from")),
		ID:      string(e.Attr("id")),
		Version: string(e.Attr("version")),
		Lang:    string(e.AttrNS(NSXML, "lang")),
	}
	if ns, ok := e.NamespaceDecl(""); ok {
		h.NS = string(ns)
	}
	if string(e.Name()) != "stream" || string(e.Space()) != NSStream {
		return h, &Error{Condition: "invalid-namespace", Text: "the stream element must be {" + NSStream + "}stream"}
	}
	if h.NS != wantNS {
		return h, &Error{Condition: "invalid-namespace", Text: "the default namespace of this stream must be " + wantNS}
	}
	if !supportedVersion(h.Version) {
		return h, &Error{Condition: "unsupported-version", Text: "version 1.0 is required"}
	}
	return h, nil
}

// supportedVersion reports whether a peer's version is one this server speaks: major version 1 (RFC 6120
// §4.7.5: a missing version means 0.9, which is not supported).
func supportedVersion(v string) bool {
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

// AppendOpen appends the XML declaration and the opening stream tag the server sends.
func (h Header) AppendOpen(dst []byte) []byte {
	dst = append(dst, "<?xml version='1.0'?><stream:stream xmlns='"...)
	dst = xml.EscapeAttr(dst, h.NS)
	dst = append(dst, "' xmlns:stream='"+NSStream+"'"...)
	for _, a := range [...]struct{ k, v string }{{"id", h.ID}, {"from", h.From}, {"to", h.To}, {"version", h.Version}, {"xml:lang", h.Lang}} {
		if a.v == "" {
			continue
		}
		dst = append(dst, ' ')
		dst = append(dst, a.k...)
		dst = append(dst, "='"...)
		dst = xml.EscapeAttr(dst, a.v)
		dst = append(dst, '\'')
	}
	return append(dst, '>')
}

// Close is the closing stream tag.
const Close = "</stream:stream>"

// Error is a stream error (RFC 6120 §4.9): after it the stream is closed.
type Error struct {
	Condition string // e.g. "not-well-formed", "policy-violation", "see-other-host"
	Text      string
	// Body is the condition element's content, e.g. the host of see-other-host.
	Body string
}

func (e *Error) Error() string {
	if e.Text != "" {
		return "stream error " + e.Condition + ": " + e.Text
	}
	return "stream error " + e.Condition
}

// Append appends <stream:error/>.
func (e *Error) Append(dst []byte) []byte {
	dst = append(dst, "<stream:error><"...)
	dst = append(dst, e.Condition...)
	dst = append(dst, " xmlns='"+NSStreamErrors+"'"...)
	if e.Body != "" {
		dst = append(dst, '>')
		dst = xml.EscapeText(dst, e.Body)
		dst = append(dst, "</"...)
		dst = append(dst, e.Condition...)
		dst = append(dst, '>')
	} else {
		dst = append(dst, "/>"...)
	}
	if e.Text != "" {
		dst = append(dst, "<text xmlns='"+NSStreamErrors+"' xml:lang='en'>"...)
		dst = xml.EscapeText(dst, e.Text)
		dst = append(dst, "</text>"...)
	}
	return append(dst, "</stream:error>"...)
}

// Features lists what the server offers at one stage of negotiation.
type Features struct {
	StartTLS    bool
	TLSRequired bool
	Mechanisms  []string // SASL mechanisms; empty: no SASL offered at this stage
	CBTypes     []string // XEP-0440 channel-binding types of this TLS connection
	Bind        bool
	Session     bool // RFC 3921 session, advertised <optional/> (accepted as a no-op)
	RosterVer   bool
	PreApproval bool // RFC 6121 §3.4 subscription pre-approval
	SM          bool // XEP-0198 stream management
	CSI         bool // XEP-0352 client state indication
	Register    bool
	Extra       [][]byte // further pre-serialised feature elements
}

// Append appends <stream:features/>.
func (f *Features) Append(dst []byte) []byte {
	dst = append(dst, "<stream:features>"...)
	if f.StartTLS {
		dst = append(dst, "<starttls xmlns='"+NSTLS+"'"...)
		if f.TLSRequired {
			dst = append(dst, "><required/></starttls>"...)
		} else {
			dst = append(dst, "/>"...)
		}
	}
	if len(f.Mechanisms) > 0 {
		dst = append(dst, "<mechanisms xmlns='"+NSSASL+"'>"...)
		for _, m := range f.Mechanisms {
			dst = append(dst, "<mechanism>"...)
			dst = xml.EscapeText(dst, m)
			dst = append(dst, "</mechanism>"...)
		}
		dst = append(dst, "</mechanisms>"...)
		if len(f.CBTypes) > 0 {
			dst = append(dst, "<sasl-channel-binding xmlns='"+NSSASLCB+"'>"...)
			for _, t := range f.CBTypes {
				dst = append(dst, "<channel-binding type='"...)
				dst = xml.EscapeAttr(dst, t)
				dst = append(dst, "'/>"...)
			}
			dst = append(dst, "</sasl-channel-binding>"...)
		}
	}
	if f.Register {
		dst = append(dst, "<register xmlns='"+NSRegister+"'/>"...)
	}
	if f.Bind {
		dst = append(dst, "<bind xmlns='"+NSBind+"'/>"...)
	}
	if f.Session {
		dst = append(dst, "<session xmlns='"+NSSession+"'><optional/></session>"...)
	}
	if f.RosterVer {
		dst = append(dst, "<ver xmlns='"+NSRosterVer+"'/>"...)
	}
	if f.PreApproval {
		dst = append(dst, "<sub xmlns='"+NSPreApproval+"'/>"...)
	}
	if f.SM {
		dst = append(dst, "<sm xmlns='"+NSSM+"'/>"...)
	}
	if f.CSI {
		dst = append(dst, "<csi xmlns='urn:xmpp:csi:0'/>"...)
	}
	for _, x := range f.Extra {
		dst = append(dst, x...)
	}
	return append(dst, "</stream:features>"...)
}
