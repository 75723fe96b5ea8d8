package xml

import (
	"encoding/binary"
	"unicode/utf8"
)

// isSpace reports whether c is XML whitespace (production S).
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

const (
	ntStart = 1 << iota // may start a name
	ntChar              // may continue a name
)

// nameTab classifies ASCII bytes for names; bytes >= 0x80 are decoded as runes.
var nameTab = func() (t [utf8.RuneSelf]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = ntStart | ntChar
		t[c-'a'+'A'] = ntStart | ntChar
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = ntChar
	}
	t['_'] = ntStart | ntChar
	t[':'] = ntStart | ntChar
	t['-'] = ntChar
	t['.'] = ntChar
	return t
}()

// isNameStartRune reports whether r is a NameStartChar (XML 1.0 fifth edition) outside ASCII.
func isNameStartRune(r rune) bool {
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

// isNameRune reports whether r is a NameChar outside ASCII.
func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || (r >= 0x300 && r <= 0x36F) || (r >= 0x203F && r <= 0x2040)
}

// scanName reads a qualified name (NCName or NCName:NCName) starting at b[i].
// It returns the end offset and the offset of the colon (-1 if none). ok is
// false when no valid qualified name starts at i.
func scanName(b []byte, i int) (end, colon int, ok bool) {
	start := i
	colon = -1
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			t := nameTab[c]
			if t&ntChar == 0 {
				break
			}
			if i == start && t&ntStart == 0 {
				return i, colon, false
			}
			if c == ':' {
				if colon >= 0 || i == start {
					return i, colon, false
				}
				colon = i
			} else if colon == i-1 && colon >= 0 && t&ntStart == 0 {
				// The local part is an NCName and must start with a NameStartChar.
				return i, colon, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if i == start || colon == i-1 {
			if !isNameStartRune(r) {
				return i, colon, false
			}
		} else if !isNameRune(r) {
			break
		}
		i += size
	}
	if i == start || colon == i-1 {
		return i, colon, false
	}
	return i, colon, true
}

// validChars returns the offset of the first byte of b that is not part of a
// legal XML character in valid UTF-8, or -1 if all are legal. ASCII runs
// without control characters are skipped eight bytes at a time.
func validChars(b []byte) int {
	i := 0
	for i < len(b) {
		if i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			// Any byte >= 0x80, or any byte < 0x20, sends us to the slow path.
			if (x|(x-0x2020202020202020))&0x8080808080808080 == 0 {
				i += 8
				continue
			}
		}
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && size == 1) || r == 0xFFFE || r == 0xFFFF {
			return i
		}
		i += size
	}
	return -1
}

// isXMLChar reports whether r is a legal XML 1.0 character (production Char).
func isXMLChar(r rune) bool {
	switch {
	case r == 0x9, r == 0xA, r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
