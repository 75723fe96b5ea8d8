package sasl

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
)

// Hash names the hash function of a SCRAM mechanism. Its value is the name
// used in the mechanism ("SCRAM-" + Hash), so it can be stored as is.
type Hash string

// The hashes Starling supports, as used in the SCRAM mechanism names.
const (
	SHA1   Hash = "SHA-1"
	SHA256 Hash = "SHA-256"
	SHA512 Hash = "SHA-512"
)

// Hashes returns the supported hashes, strongest first.
func Hashes() []Hash { return []Hash{SHA512, SHA256, SHA1} }

// Valid reports whether h is one of the supported hashes.
func (h Hash) Valid() bool { return h == SHA1 || h == SHA256 || h == SHA512 }

// Size returns the digest length of h in bytes, or 0 for an unknown hash.
func (h Hash) Size() int {
	switch h {
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	}
	return 0
}

// newFunc returns the constructor of h, or nil for an unknown hash.
func (h Hash) newFunc() func() hash.Hash {
	switch h {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// sum returns H(b).
func (h Hash) sum(b []byte) []byte {
	switch h {
	case SHA1:
		s := sha1.Sum(b)
		return s[:]
	case SHA256:
		s := sha256.Sum256(b)
		return s[:]
	case SHA512:
		s := sha512.Sum512(b)
		return s[:]
	}
	return nil
}

// Mechanism returns the SCRAM mechanism name for h, with the -PLUS suffix
// when plus is true.
func (h Hash) Mechanism(plus bool) string {
	if plus {
		return "SCRAM-" + string(h) + "-PLUS"
	}
	return "SCRAM-" + string(h)
}

// Mechanism names that are not SCRAM.
const (
	// Plain is the PLAIN mechanism (RFC 4616).
	Plain = "PLAIN"
)

// mechanism is a parsed mechanism name.
type mechanism struct {
	plain bool // PLAIN; hash and plus are unset
	hash  Hash
	plus  bool
}

// parseMechanism splits a mechanism name into its parts. Names are matched
// exactly: RFC 4422 mechanism names are upper case.
func parseMechanism(name string) (mechanism, bool) {
	if name == Plain {
		return mechanism{plain: true}, true
	}
	rest, ok := strings.CutPrefix(name, "SCRAM-")
	if !ok {
		return mechanism{}, false
	}
	rest, plus := strings.CutSuffix(rest, "-PLUS")
	h := Hash(rest)
	if !h.Valid() {
		return mechanism{}, false
	}
	return mechanism{hash: h, plus: plus}, true
}

// Mechanisms returns the mechanism names a server should offer, strongest
// first: the -PLUS variants when the connection is TLS and supports at least
// one channel-binding type (cbTypes, see [CBTypes]), then plain SCRAM, then
// PLAIN, which is listed only when tls is true because it sends the password
// itself.
func Mechanisms(tls bool, cbTypes []string) []string {
	out := make([]string, 0, 7)
	if tls && len(cbTypes) > 0 {
		for _, h := range Hashes() {
			out = append(out, h.Mechanism(true))
		}
	}
	for _, h := range Hashes() {
		out = append(out, h.Mechanism(false))
	}
	if tls {
		out = append(out, Plain)
	}
	return out
}
