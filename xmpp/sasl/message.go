package sasl

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Size bounds on SCRAM messages and their attributes. RFC 5802 sets none;
// these are far above what any real client sends.
const (
	// MaxMessageSize bounds one raw SASL message in either direction.
	MaxMessageSize = 4096
	maxNonceSize   = 256
	maxCBNameSize  = 64
)

// b64 is the base64 flavour SCRAM uses (RFC 4648 with padding). Strict
// decoding rejects non-canonical encodings, so c= compares byte for byte.
var b64 = base64.StdEncoding.Strict()

// clientFirst is a parsed client-first-message (RFC 5802 §7).
type clientFirst struct {
	flag     byte   // GS2 channel-binding flag: 'n', 'y' or 'p'
	cbType   string // cb-name, with flag 'p'
	authzid  string // decoded saslname, "" when absent
	gs2      string // gs2-header, including its final comma
	bare     string // client-first-message-bare
	username string // decoded saslname, not yet prepared
	nonce    string // c-nonce
}

// parseClientFirst parses a client-first-message. Errors carry the failure
// condition to send.
func parseClientFirst(msg string) (clientFirst, *Failure) {
	var cf clientFirst
	if len(msg) > MaxMessageSize {
		return cf, newFailure(MalformedRequest, "message too long")
	}
	rest := msg
	switch {
	case strings.HasPrefix(rest, "n,"):
		cf.flag, rest = 'n', rest[2:]
	case strings.HasPrefix(rest, "y,"):
		cf.flag, rest = 'y', rest[2:]
	case strings.HasPrefix(rest, "p="):
		name, after, ok := strings.Cut(rest[2:], ",")
		if !ok || !validCBName(name) {
			return cf, newFailure(MalformedRequest, "invalid channel-binding name")
		}
		cf.flag, cf.cbType, rest = 'p', name, after
	default:
		return cf, newFailure(MalformedRequest, "invalid GS2 channel-binding flag")
	}
	authz, after, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, newFailure(MalformedRequest, "incomplete GS2 header")
	}
	if authz != "" {
		v, found := strings.CutPrefix(authz, "a=")
		if !found {
			return cf, newFailure(MalformedRequest, "invalid GS2 authzid")
		}
		name, err := decodeSASLName(v)
		if err != nil {
			return cf, newFailure(MalformedRequest, "invalid authzid: "+err.Error())
		}
		cf.authzid = name
	}
	rest = after
	cf.gs2 = msg[:len(msg)-len(rest)]
	cf.bare = rest

	attr, rest, _ := strings.Cut(rest, ",")
	if strings.HasPrefix(attr, "m=") {
		return cf, newFailure(MalformedRequest, "mandatory extensions are not supported")
	}
	v, found := strings.CutPrefix(attr, "n=")
	if !found {
		return cf, newFailure(MalformedRequest, "expected username attribute")
	}
	name, err := decodeSASLName(v)
	if err != nil {
		return cf, newFailure(MalformedRequest, "invalid username: "+err.Error())
	}
	cf.username = name
	attr, rest, more := strings.Cut(rest, ",")
	v, found = strings.CutPrefix(attr, "r=")
	if !found || !validNonce(v) {
		return cf, newFailure(MalformedRequest, "invalid or missing nonce")
	}
	cf.nonce = v
	if more {
		if err := checkExtensions(rest); err != nil {
			return cf, newFailure(MalformedRequest, err.Error())
		}
	}
	return cf, nil
}

// clientFinal is a parsed client-final-message.
type clientFinal struct {
	cb           []byte // decoded c= value: gs2-header followed by the cb data
	nonce        string
	withoutProof string // client-final-message-without-proof
	proof        []byte
}

// parseClientFinal parses a client-final-message.
func parseClientFinal(msg string) (clientFinal, *Failure) {
	var cf clientFinal
	if len(msg) > MaxMessageSize {
		return cf, newFailure(MalformedRequest, "message too long")
	}
	// The proof is the last attribute and no other value may contain a
	// comma, so the last ",p=" starts it.
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, newFailure(MalformedRequest, "missing proof")
	}
	cf.withoutProof = msg[:i]
	proof := msg[i+3:]
	if strings.IndexByte(proof, ',') >= 0 {
		return cf, newFailure(MalformedRequest, "attributes after the proof")
	}
	p, err := b64.DecodeString(proof)
	if err != nil || len(p) == 0 {
		return cf, newFailure(IncorrectEncoding, "proof is not valid base64")
	}
	cf.proof = p

	attr, rest, _ := strings.Cut(cf.withoutProof, ",")
	v, found := strings.CutPrefix(attr, "c=")
	if !found {
		return cf, newFailure(MalformedRequest, "expected channel-binding attribute")
	}
	cb, err := b64.DecodeString(v)
	if err != nil || len(cb) == 0 {
		return cf, newFailure(IncorrectEncoding, "channel binding is not valid base64")
	}
	cf.cb = cb
	attr, rest, more := strings.Cut(rest, ",")
	v, found = strings.CutPrefix(attr, "r=")
	if !found || !validNonce(v) {
		return cf, newFailure(MalformedRequest, "invalid or missing nonce")
	}
	cf.nonce = v
	if more {
		if err := checkExtensions(rest); err != nil {
			return cf, newFailure(MalformedRequest, err.Error())
		}
	}
	return cf, nil
}

// serverFirst is a parsed server-first-message.
type serverFirst struct {
	nonce      string
	salt       []byte
	iterations int
}

// parseServerFirst parses a server-first-message.
func parseServerFirst(msg string) (serverFirst, error) {
	var sf serverFirst
	if len(msg) > MaxMessageSize {
		return sf, errors.New("server-first-message too long")
	}
	attr, rest, _ := strings.Cut(msg, ",")
	if strings.HasPrefix(attr, "m=") {
		return sf, errors.New("server requires an unsupported mandatory extension")
	}
	v, found := strings.CutPrefix(attr, "r=")
	if !found || !validNonce(v) {
		return sf, errors.New("server-first-message: invalid or missing nonce")
	}
	sf.nonce = v
	attr, rest, _ = strings.Cut(rest, ",")
	v, found = strings.CutPrefix(attr, "s=")
	if !found {
		return sf, errors.New("server-first-message: missing salt")
	}
	salt, err := b64.DecodeString(v)
	if err != nil || len(salt) == 0 || len(salt) > MaxSaltSize {
		return sf, errors.New("server-first-message: invalid salt")
	}
	sf.salt = salt
	attr, rest, more := strings.Cut(rest, ",")
	v, found = strings.CutPrefix(attr, "i=")
	if !found {
		return sf, errors.New("server-first-message: missing iteration count")
	}
	n, err := parseIterations(v)
	if err != nil {
		return sf, fmt.Errorf("server-first-message: %w", err)
	}
	sf.iterations = n
	if more {
		if err := checkExtensions(rest); err != nil {
			return sf, fmt.Errorf("server-first-message: %w", err)
		}
	}
	return sf, nil
}

// parseServerFinal parses a server-final-message and returns the server
// signature, or an error carrying the server's e= value.
func parseServerFinal(msg string) ([]byte, error) {
	if len(msg) > MaxMessageSize {
		return nil, errors.New("server-final-message too long")
	}
	attr, rest, more := strings.Cut(msg, ",")
	if e, found := strings.CutPrefix(attr, "e="); found {
		if !validValue(e) {
			return nil, errors.New("server-final-message: invalid error value")
		}
		return nil, fmt.Errorf("server reported error %q", e)
	}
	v, found := strings.CutPrefix(attr, "v=")
	if !found {
		return nil, errors.New("server-final-message: missing verifier")
	}
	sig, err := b64.DecodeString(v)
	if err != nil {
		return nil, errors.New("server-final-message: verifier is not valid base64")
	}
	if more {
		if err := checkExtensions(rest); err != nil {
			return nil, fmt.Errorf("server-final-message: %w", err)
		}
	}
	return sig, nil
}

// parseIterations parses a decimal iteration count within 1..MaxIterations.
func parseIterations(s string) (int, error) {
	if s == "" || len(s) > 8 || s[0] == '0' {
		return 0, fmt.Errorf("invalid iteration count %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("invalid iteration count %q", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxIterations {
		return 0, fmt.Errorf("iteration count %q not in 1..%d", s, MaxIterations)
	}
	return n, nil
}

// checkExtensions validates a comma-separated list of optional extension
// attributes (attr-val = ALPHA "=" value). They are ignored, as RFC 5802
// requires of unknown non-mandatory extensions, but must be well formed.
func checkExtensions(s string) error {
	for {
		attr, rest, more := strings.Cut(s, ",")
		if len(attr) < 3 || !isAlpha(attr[0]) || attr[1] != '=' || !validValue(attr[2:]) {
			return errors.New("malformed extension attribute")
		}
		if !more {
			return nil
		}
		s = rest
	}
}

// validValue reports whether s is a non-empty RFC 5802 value: UTF-8 without
// NUL or comma.
func validValue(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexByte(s, 0) < 0 && strings.IndexByte(s, ',') < 0
}

// isAlpha reports whether c is an ASCII letter.
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// validNonce reports whether s is a non-empty run of printable ASCII other
// than comma, within maxNonceSize.
func validNonce(s string) bool {
	if s == "" || len(s) > maxNonceSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validCBName reports whether s is an RFC 5056 channel-binding name:
// letters, digits, '.' and '-'.
func validCBName(s string) bool {
	if s == "" || len(s) > maxCBNameSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// decodeSASLName decodes an RFC 5802 saslname: "=2C" stands for ',' and
// "=3D" for '='; any other '=' is an error.
func decodeSASLName(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty name")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("not UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("contains NUL")
	}
	if strings.IndexByte(s, '=') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("invalid '=' escape")
		}
		i += 2
	}
	return b.String(), nil
}

// encodeSASLName escapes '=' and ',' for use as a saslname.
func encodeSASLName(s string) string {
	if !strings.ContainsAny(s, "=,") {
		return s
	}
	s = strings.ReplaceAll(s, "=", "=3D")
	return strings.ReplaceAll(s, ",", "=2C")
}
