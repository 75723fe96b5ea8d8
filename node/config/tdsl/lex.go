package tdsl

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token.
type tokKind int

const (
	tEOF tokKind = iota
	tNewline
	tComma
	tSemicolon
	tAssign // '=' or ':'
	tLParen
	tRParen
	tLBrace
	tRBrace
	tLBracket
	tRBracket
	tPlus
	tMinus
	tStar
	tSlash
	tString // quoted text; text holds the content without quotes
	tWord   // bare word not starting with a digit
	tNumber // word starting with a digit; classified by the parser
)

var tokNames = [...]string{
	tEOF:       "end of file",
	tNewline:   "end of line",
	tComma:     "','",
	tSemicolon: "';'",
	tAssign:    "'='",
	tLParen:    "'('",
	tRParen:    "')'",
	tLBrace:    "'{'",
	tRBrace:    "'}'",
	tLBracket:  "'['",
	tRBracket:  "']'",
	tPlus:      "'+'",
	tMinus:     "'-'",
	tStar:      "'*'",
	tSlash:     "'/'",
	tString:    "string",
	tWord:      "word",
	tNumber:    "number",
}

type token struct {
	kind tokKind
	pos  Pos
	text string // source text for words and numbers, content for strings
}

// describe names the token for an error message, quoting its text.
func (t token) describe() string {
	switch t.kind {
	case tString:
		return fmt.Sprintf("string %q", clip(t.text))
	case tWord, tNumber:
		return fmt.Sprintf("'%s'", clip(t.text))
	case tAssign:
		return "'" + t.text + "'"
	}
	return tokNames[t.kind]
}

func clip(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

// isWordRune reports whether r may appear in a bare word. Dots are allowed
// so that class names (tigase.server.xmppclient.SeeOtherHostHashed) and
// domains (example.com) need no quotes, as in Tigase's documentation.
func isWordRune(r rune) bool {
	return r == '_' || r == '.' || r == '$' || r == '@' ||
		(r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')) ||
		(r >= utf8.RuneSelf && r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)))
}

// lexer turns source bytes into tokens, tracking line and column.
type lexer struct {
	file string
	src  []byte
	off  int
	line int
	col  int
}

func (l *lexer) pos() Pos { return Pos{File: l.file, Line: l.line, Col: l.col, Offset: l.off} }

// peek returns the rune at the current offset and its size; an invalid byte
// is returned as RuneError of size 1 and counts as one column.
func (l *lexer) peek() (rune, int) {
	if l.off >= len(l.src) {
		return -1, 0
	}
	if c := l.src[l.off]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRune(l.src[l.off:])
}

func (l *lexer) advance(r rune, size int) {
	l.off += size
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
}

func (l *lexer) errorf(pos Pos, format string, args ...any) *Error {
	return Errorf(l.src, pos, format, args...)
}

// lex splits the whole source into tokens. A file is small, so holding all
// tokens keeps the parser simple (it can look ahead freely).
func lex(file string, src []byte) ([]token, error) {
	l := &lexer{file: file, src: src, line: 1, col: 1}
	// A UTF-8 byte order mark written by some editors is not content.
	if len(src) >= 3 && src[0] == 0xEF && src[1] == 0xBB && src[2] == 0xBF {
		l.off = 3
	}
	var toks []token
	for {
		r, size := l.peek()
		if size == 0 {
			toks = append(toks, token{kind: tEOF, pos: l.pos()})
			return toks, nil
		}
		start := l.pos()
		single := func(k tokKind) {
			l.advance(r, size)
			toks = append(toks, token{kind: k, pos: start, text: string(r)})
		}
		switch {
		case r == '\n':
			single(tNewline)
		case r == ' ' || r == '\t' || r == '\r' || r == '\f' || r == '\v' || r == '\u00a0' || r == '\ufeff':
			l.advance(r, size)
		case r == '#':
			for {
				r, size = l.peek()
				if size == 0 || r == '\n' {
					break
				}
				l.advance(r, size)
			}
		case r == ',':
			single(tComma)
		case r == ';':
			single(tSemicolon)
		case r == '=' || r == ':':
			single(tAssign)
		case r == '(':
			single(tLParen)
		case r == ')':
			single(tRParen)
		case r == '{':
			single(tLBrace)
		case r == '}':
			single(tRBrace)
		case r == '[':
			single(tLBracket)
		case r == ']':
			single(tRBracket)
		case r == '+':
			single(tPlus)
		case r == '-':
			single(tMinus)
		case r == '*':
			single(tStar)
		case r == '/':
			single(tSlash)
		case r == '\'' || r == '"':
			t, err := l.quoted(r)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
		case isWordRune(r):
			kind := tWord
			if r >= '0' && r <= '9' {
				kind = tNumber
			}
			startOff := l.off
			for {
				r, size = l.peek()
				if size == 0 || !isWordRune(r) {
					break
				}
				l.advance(r, size)
			}
			toks = append(toks, token{kind: kind, pos: start, text: string(src[startOff:l.off])})
		default:
			if r == utf8.RuneError && size == 1 {
				return nil, l.errorf(start, "invalid UTF-8 byte 0x%02x", l.src[l.off])
			}
			return nil, l.errorf(start, "unexpected character %q", r)
		}
	}
}

// quoted scans a string in quote q. The DSL has no escape sequences and a
// string may span lines, as in Tigase's reader.
func (l *lexer) quoted(q rune) (token, error) {
	start := l.pos()
	l.advance(q, 1)
	contentStart := l.off
	for {
		r, size := l.peek()
		if size == 0 {
			return token{}, l.errorf(start, "string starting here is never closed (missing %c)", q)
		}
		if r == q {
			text := string(l.src[contentStart:l.off])
			l.advance(r, size)
			return token{kind: tString, pos: start, text: text}, nil
		}
		l.advance(r, size)
	}
}
