package tdsl

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is a problem found at a position in a source file: a syntax error
// from Parse, or an error a consumer of the tree reports with Errorf.
type Error struct {
	Pos Pos
	Msg string
	// Line is the text of the source line holding Pos (without its newline),
	// kept so that Caret can show it after the source is gone.
	Line string
}

// Error gives the one-line form "file:line:col: message" (only the message
// when there is no position, as for a problem in a default value).
func (e *Error) Error() string {
	if !e.Pos.IsValid() {
		if e.Pos.File != "" {
			return e.Pos.File + ": " + e.Msg
		}
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Caret gives the one-line form followed by the source line and a caret
// under the column, the way compilers show where the problem is.
func (e *Error) Caret() string {
	var b strings.Builder
	b.WriteString(e.Error())
	if e.Line == "" && e.Pos.Col <= 1 {
		return b.String()
	}
	b.WriteByte('\n')
	b.WriteString(e.Line)
	b.WriteByte('\n')
	// Copy tabs from the source line so the caret lines up whatever the
	// reader's tab width is.
	col := 1
	for _, r := range e.Line {
		if col >= e.Pos.Col {
			break
		}
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
		col++
	}
	for ; col < e.Pos.Col; col++ {
		b.WriteByte(' ')
	}
	b.WriteByte('^')
	return b.String()
}

// Errorf builds an Error at pos, taking the source line from src so that
// Caret can show it. src may be nil.
func Errorf(src []byte, pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Line: lineAt(src, pos.Offset)}
}

// lineAt returns the text of the line holding byte offset off, without the
// line terminator, and with invalid UTF-8 replaced so it prints cleanly.
func lineAt(src []byte, off int) string {
	if off < 0 || off > len(src) || len(src) == 0 {
		return ""
	}
	start := off
	for start > 0 && src[start-1] != '\n' {
		start--
	}
	end := off
	for end < len(src) && src[end] != '\n' {
		end++
	}
	line := src[start:end]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if utf8.Valid(line) {
		return string(line)
	}
	// Replace each invalid byte by one U+FFFD: the lexer counts an invalid
	// byte as one column, so the caret stays aligned.
	var b strings.Builder
	for len(line) > 0 {
		r, size := utf8.DecodeRune(line)
		b.WriteRune(r)
		line = line[size:]
	}
	return b.String()
}
