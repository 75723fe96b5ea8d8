package tdsl

import (
	"math"
	"strconv"
	"strings"
)

// Options carries what the expressions env() and prop() read. Both are
// injected so that the parser touches no process state and tests can supply
// their own environment. A nil function behaves as an empty set.
type Options struct {
	// Env looks up an environment variable for env('NAME').
	Env func(name string) (string, bool)
	// Props looks up a property for prop('name', 'default'), Starling's
	// counterpart of Java system properties.
	Props func(name string) (string, bool)
}

// maxDepth bounds nesting (maps, lists, parentheses, unary operators) so that
// hostile input cannot exhaust the stack.
const maxDepth = 200

// Parse reads DSL text and returns the root map. filename is used only in
// positions. Errors are *Error values carrying the position of the problem.
func Parse(filename string, src []byte, opts Options) (*Map, error) {
	toks, err := lex(filename, src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks, opts: opts}
	root := &Map{Pos: Pos{File: filename, Line: 1, Col: 1}}
	if err := p.entries(root, tEOF, token{}); err != nil {
		return nil, err
	}
	return root, nil
}

type parser struct {
	src   []byte
	toks  []token
	i     int
	opts  Options
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(pos Pos, format string, args ...any) *Error {
	return Errorf(p.src, pos, format, args...)
}

func (p *parser) skipNewlines() {
	for p.peek().kind == tNewline {
		p.i++
	}
}

func (p *parser) enter(pos Pos) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf(pos, "nesting deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

const semicolonMsg = "';' is not a separator in config.tdsl: end the entry with a new line or ','"

// entries parses `key = value` / `key { }` / `key () { }` entries into m
// until the end token; open is the token that opened the block, for the
// message when the block is never closed.
func (p *parser) entries(m *Map, end tokKind, open token) error {
	for {
		t := p.peek()
		switch t.kind {
		case tNewline, tComma:
			p.next()
			continue
		case tSemicolon:
			return p.errorf(t.pos, semicolonMsg)
		case end:
			p.next()
			return nil
		case tEOF:
			return p.errorf(t.pos, "'{' opened at line %d, column %d is never closed (missing '}')", open.pos.Line, open.pos.Col)
		}
		if err := p.entry(m, end); err != nil {
			return err
		}
	}
}

// entry parses one entry and the separator after it.
func (p *parser) entry(m *Map, end tokKind) error {
	kt := p.next()
	var key string
	switch kt.kind {
	case tString:
		key = kt.text
	case tWord:
		key = kt.text
	case tNumber:
		if _, err := strconv.ParseUint(kt.text, 10, 64); err != nil {
			return p.errorf(kt.pos, "key %s is not a plain integer: quote it ('%s')", kt.describe(), kt.text)
		}
		key = kt.text
	case tRBrace:
		return p.errorf(kt.pos, "unexpected '}' with no open '{'")
	default:
		return p.errorf(kt.pos, "expected a key, found %s", kt.describe())
	}
	e := &Entry{Key: key, KeyPos: kt.pos}

	t := p.peek()
	switch t.kind {
	case tAssign:
		p.next()
		p.skipNewlines()
		v, err := p.expr()
		if err != nil {
			return err
		}
		e.Value = v
	case tLParen:
		p.next()
		bean, err := p.beanHeader(t)
		if err != nil {
			return err
		}
		body := &Map{Pos: t.pos, Bean: bean}
		if b := p.peek(); b.kind == tLBrace {
			p.next()
			body.Pos = b.pos
			if err := p.enter(b.pos); err != nil {
				return err
			}
			if err := p.entries(body, tRBrace, b); err != nil {
				return err
			}
			p.leave()
		}
		e.Value = &Value{Pos: t.pos, Kind: KindMap, Map: body}
	case tLBrace:
		p.next()
		v, err := p.mapBody(t)
		if err != nil {
			return err
		}
		e.Value = v
	case tNewline, tEOF, tComma, tRBrace:
		return p.errorf(kt.pos, "key '%s' has no value (expected '=', ':', '(' or '{' after it)", clip(key))
	case tSemicolon:
		return p.errorf(t.pos, semicolonMsg)
	case tMinus, tPlus, tStar, tSlash:
		if kt.kind == tWord {
			return p.errorf(t.pos, "keys containing %s must be quoted: write '%s'", t.describe(), clip(p.wordAt(kt.pos.Offset)))
		}
		fallthrough
	default:
		return p.errorf(t.pos, "expected '=', ':', '(' or '{' after key '%s', found %s", clip(key), t.describe())
	}

	if first := m.add(e); first != nil {
		return p.errorf(kt.pos, "duplicate key '%s': set at line %d and again at line %d", clip(key), first.KeyPos.Line, kt.pos.Line)
	}

	switch t := p.peek(); t.kind {
	case tNewline, tComma:
		p.next()
		return nil
	case end:
		return nil
	case tSemicolon:
		return p.errorf(t.pos, semicolonMsg)
	case tEOF:
		return nil // entries reports the unclosed block
	case tAssign:
		return p.errorf(t.pos, "expected a new line or ',' after the value of '%s', found %s (quote keys and values that contain ':' or '=')", clip(key), t.describe())
	default:
		return p.errorf(t.pos, "expected a new line or ',' after the value of '%s', found %s", clip(key), t.describe())
	}
}

// wordAt returns the source text from off up to the next blank or one of
// = : { ( , the key as the user meant it, for suggesting quotes.
func (p *parser) wordAt(off int) string {
	end := off
	for end < len(p.src) && !strings.ContainsRune(" \t\r\n=:{(,#'\"", rune(p.src[end])) {
		end++
	}
	return string(p.src[off:end])
}

// mapBody parses the entries of a `{ }` block whose '{' was consumed.
func (p *parser) mapBody(open token) (*Value, error) {
	if err := p.enter(open.pos); err != nil {
		return nil, err
	}
	m := &Map{Pos: open.pos}
	if err := p.entries(m, tRBrace, open); err != nil {
		return nil, err
	}
	p.leave()
	return &Value{Pos: open.pos, Kind: KindMap, Map: m}, nil
}

// beanHeader parses `class: x, active: false, exportable: true )` after the
// '(' has been consumed. Only those three keys exist, as in Tigase.
func (p *parser) beanHeader(open token) (*Bean, error) {
	b := &Bean{Pos: open.pos, Active: true}
	seen := map[string]Pos{}
	for {
		t := p.next()
		switch t.kind {
		case tNewline, tComma:
			continue
		case tRParen:
			return b, nil
		case tSemicolon:
			return nil, p.errorf(t.pos, semicolonMsg)
		case tEOF:
			return nil, p.errorf(t.pos, "'(' opened at line %d, column %d is never closed (missing ')')", open.pos.Line, open.pos.Col)
		case tWord, tString:
		default:
			return nil, p.errorf(t.pos, "expected class, active or exportable in bean header, found %s", t.describe())
		}
		key := t.text
		if key != "class" && key != "active" && key != "exportable" {
			return nil, p.errorf(t.pos, "unknown bean header field '%s' (only class, active and exportable are allowed inside '( )')", clip(key))
		}
		if prev, ok := seen[key]; ok {
			return nil, p.errorf(t.pos, "duplicate bean header field '%s': set at line %d and again at line %d", key, prev.Line, t.pos.Line)
		}
		seen[key] = t.pos
		if a := p.next(); a.kind != tAssign {
			return nil, p.errorf(a.pos, "expected ':' after '%s' in bean header, found %s", key, a.describe())
		}
		p.skipNewlines()
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		switch key {
		case "class":
			if v.Kind != KindString {
				return nil, p.errorf(v.Pos, "bean class must be a class name, found %s", v.Kind)
			}
			b.Class, b.ClassPos = v.Str, v.Pos
		case "active", "exportable":
			if v.Kind != KindBool {
				return nil, p.errorf(v.Pos, "bean '%s' must be true or false, found %s", key, v.Kind)
			}
			if key == "active" {
				b.Active, b.ActivePos = v.Bool, v.Pos
			} else {
				b.Exportable, b.ExportablePos = v.Bool, v.Pos
			}
		}
		switch t := p.peek(); t.kind {
		case tComma, tNewline, tRParen, tEOF:
		case tSemicolon:
			return nil, p.errorf(t.pos, semicolonMsg)
		default:
			return nil, p.errorf(t.pos, "expected ',' or ')' in bean header, found %s", t.describe())
		}
	}
}

// expr parses a sum: term { ('+'|'-') term }.
func (p *parser) expr() (*Value, error) {
	left, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op.kind != tPlus && op.kind != tMinus {
			return left, nil
		}
		p.next()
		// An operator at the end of a line continues the expression on
		// the next, as in Groovy.
		p.skipNewlines()
		right, err := p.term()
		if err != nil {
			return nil, err
		}
		if left, err = p.binary(op, left, right); err != nil {
			return nil, err
		}
	}
}

// term parses a product: unary { ('*'|'/') unary }.
func (p *parser) term() (*Value, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op.kind != tStar && op.kind != tSlash {
			return left, nil
		}
		p.next()
		p.skipNewlines()
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		if left, err = p.binary(op, left, right); err != nil {
			return nil, err
		}
	}
}

func (p *parser) unary() (*Value, error) {
	t := p.peek()
	if t.kind != tMinus && t.kind != tPlus {
		return p.primary()
	}
	p.next()
	if err := p.enter(t.pos); err != nil {
		return nil, err
	}
	v, err := p.unary()
	if err != nil {
		return nil, err
	}
	p.leave()
	switch v.Kind {
	case KindInt:
		if t.kind == tMinus {
			if v.Int == math.MinInt64 {
				return nil, p.errorf(t.pos, "integer overflow")
			}
			v.Int = -v.Int
		}
	case KindFloat:
		if t.kind == tMinus {
			v.Float = -v.Float
		}
	default:
		return nil, p.errorf(t.pos, "unary %s needs a number, found %s", t.describe(), v.Kind)
	}
	v.Pos = t.pos
	return v, nil
}

func (p *parser) primary() (*Value, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return &Value{Pos: t.pos, Kind: KindString, Str: t.text}, nil
	case tNumber:
		return p.number(t)
	case tWord:
		switch t.text {
		case "true", "false":
			return &Value{Pos: t.pos, Kind: KindBool, Bool: t.text == "true"}, nil
		case "null":
			return &Value{Pos: t.pos, Kind: KindNull}, nil
		case "env", "prop":
			if p.peek().kind == tLParen {
				return p.call(t)
			}
		}
		return &Value{Pos: t.pos, Kind: KindString, Str: t.text, Bare: true}, nil
	case tLBracket:
		return p.list(t)
	case tLParen:
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		p.skipNewlines()
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		p.skipNewlines()
		if c := p.next(); c.kind != tRParen {
			return nil, p.errorf(c.pos, "expected ')' to close '(' at line %d, column %d, found %s", t.pos.Line, t.pos.Col, c.describe())
		}
		p.leave()
		return v, nil
	case tLBrace:
		return p.mapBody(t)
	case tSemicolon:
		return nil, p.errorf(t.pos, semicolonMsg)
	}
	return nil, p.errorf(t.pos, "expected a value, found %s", t.describe())
}

// number classifies a digit-led word: 543, 60L, 1.5, 1.5d, 2.0f, 5f.
func (p *parser) number(t token) (*Value, error) {
	s := t.text
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	rest := s[digits:]
	switch {
	case rest == "" || rest == "l" || rest == "L":
		n, err := strconv.ParseInt(s[:digits], 10, 64)
		if err != nil {
			return nil, p.errorf(t.pos, "integer %s does not fit in 64 bits", s[:digits])
		}
		return &Value{Pos: t.pos, Kind: KindInt, Int: n, Long: rest != ""}, nil
	case rest == "d" || rest == "D" || rest == "f" || rest == "F":
		f, _ := strconv.ParseFloat(s[:digits], 64)
		return &Value{Pos: t.pos, Kind: KindFloat, Float: f}, nil
	case rest[0] == '.':
		frac := rest[1:]
		n := 0
		for n < len(frac) && frac[n] >= '0' && frac[n] <= '9' {
			n++
		}
		suffix := frac[n:]
		if n > 0 && (suffix == "" || suffix == "d" || suffix == "D" || suffix == "f" || suffix == "F") {
			f, err := strconv.ParseFloat(s[:digits+1+n], 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, p.errorf(t.pos, "number %s is out of range", s)
			}
			return &Value{Pos: t.pos, Kind: KindFloat, Float: f}, nil
		}
	}
	return nil, p.errorf(t.pos, "invalid number '%s' (quote it if it is text)", clip(s))
}

// list parses `[ a, b ]` after '[': items separated by commas or new lines,
// a trailing comma allowed, mixed types allowed.
func (p *parser) list(open token) (*Value, error) {
	if err := p.enter(open.pos); err != nil {
		return nil, err
	}
	v := &Value{Pos: open.pos, Kind: KindList, List: []*Value{}}
	for {
		t := p.peek()
		switch t.kind {
		case tNewline, tComma:
			p.next()
			continue
		case tRBracket:
			p.next()
			p.leave()
			return v, nil
		case tEOF:
			return nil, p.errorf(t.pos, "'[' opened at line %d, column %d is never closed (missing ']')", open.pos.Line, open.pos.Col)
		case tSemicolon:
			return nil, p.errorf(t.pos, semicolonMsg)
		}
		item, err := p.expr()
		if err != nil {
			return nil, err
		}
		v.List = append(v.List, item)
		switch t := p.peek(); t.kind {
		case tNewline, tComma, tRBracket:
		case tSemicolon:
			return nil, p.errorf(t.pos, semicolonMsg)
		case tEOF:
		default:
			return nil, p.errorf(t.pos, "expected ',' or ']' in list, found %s", t.describe())
		}
	}
}

// call evaluates env('NAME'[, default]) or prop('name'[, default]).
func (p *parser) call(fn token) (*Value, error) {
	open := p.next() // '('
	var args []*Value
	for {
		p.skipNewlines()
		t := p.peek()
		if t.kind == tRParen {
			p.next()
			break
		}
		if t.kind == tEOF {
			return nil, p.errorf(t.pos, "'(' opened at line %d, column %d is never closed (missing ')')", open.pos.Line, open.pos.Col)
		}
		if len(args) > 0 {
			if t.kind != tComma {
				return nil, p.errorf(t.pos, "expected ',' or ')' in %s(), found %s", fn.text, t.describe())
			}
			p.next()
			p.skipNewlines()
		}
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		p.leave()
		args = append(args, a)
	}
	if len(args) < 1 || len(args) > 2 {
		return nil, p.errorf(fn.pos, "%s() takes a name and an optional default, got %d arguments", fn.text, len(args))
	}
	if args[0].Kind != KindString {
		return nil, p.errorf(args[0].Pos, "%s() name must be a string, found %s", fn.text, args[0].Kind)
	}
	name := args[0].Str
	lookup := p.opts.Env
	if fn.text == "prop" {
		lookup = p.opts.Props
	}
	if lookup != nil {
		if s, ok := lookup(name); ok {
			return &Value{Pos: fn.pos, Kind: KindString, Str: s}, nil
		}
	}
	if len(args) == 2 {
		d := *args[1]
		d.Pos = fn.pos
		return &d, nil
	}
	if fn.text == "env" {
		return nil, p.errorf(fn.pos, "environment variable %s is not set and env() has no default (write env('%s', 'default'))", name, name)
	}
	// Like Java's System.getProperty, a missing property without default
	// is null; the consumer reports it if null is not acceptable.
	return &Value{Pos: fn.pos, Kind: KindNull}, nil
}

// binary applies + - * / with Groovy's rules for the types the DSL has:
// a string on either side of + concatenates; integer arithmetic stays
// integral unless a division is inexact (Groovy then yields a decimal).
func (p *parser) binary(op token, l, r *Value) (*Value, error) {
	if l.Kind == KindString || r.Kind == KindString {
		if op.kind != tPlus {
			return nil, p.errorf(op.pos, "operator %s is not defined for strings (only + concatenates)", op.describe())
		}
		ls, err := p.concatText(op, l)
		if err != nil {
			return nil, err
		}
		rs, err := p.concatText(op, r)
		if err != nil {
			return nil, err
		}
		return &Value{Pos: l.Pos, Kind: KindString, Str: ls + rs}, nil
	}
	if !isNumber(l) || !isNumber(r) {
		bad := l
		if isNumber(l) {
			bad = r
		}
		return nil, p.errorf(op.pos, "operator %s needs numbers or strings, found %s", op.describe(), bad.Kind)
	}
	res := &Value{Pos: l.Pos, Long: l.Long || r.Long}
	if l.Kind == KindInt && r.Kind == KindInt {
		a, b := l.Int, r.Int
		var n int64
		ok := true
		switch op.kind {
		case tPlus:
			n = a + b
			ok = (b >= 0) == (n >= a)
		case tMinus:
			n = a - b
			ok = (b >= 0) == (n <= a)
		case tStar:
			n = a * b
			ok = a == 0 || (n/a == b && !(a == -1 && b == math.MinInt64) && !(b == -1 && a == math.MinInt64))
		case tSlash:
			if b == 0 {
				return nil, p.errorf(op.pos, "division by zero")
			}
			if a == math.MinInt64 && b == -1 {
				ok = false
				break
			}
			if a%b != 0 {
				res.Kind = KindFloat
				res.Float = float64(a) / float64(b)
				return res, nil
			}
			n = a / b
		}
		if !ok {
			return nil, p.errorf(op.pos, "integer overflow")
		}
		res.Kind, res.Int = KindInt, n
		return res, nil
	}
	a, b := toFloat(l), toFloat(r)
	var f float64
	switch op.kind {
	case tPlus:
		f = a + b
	case tMinus:
		f = a - b
	case tStar:
		f = a * b
	case tSlash:
		if b == 0 {
			return nil, p.errorf(op.pos, "division by zero")
		}
		f = a / b
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, p.errorf(op.pos, "number out of range")
	}
	res.Kind, res.Float = KindFloat, f
	return res, nil
}

func isNumber(v *Value) bool { return v.Kind == KindInt || v.Kind == KindFloat }

func toFloat(v *Value) float64 {
	if v.Kind == KindInt {
		return float64(v.Int)
	}
	return v.Float
}

// concatText renders an operand of string concatenation as Groovy would.
func (p *parser) concatText(op token, v *Value) (string, error) {
	switch v.Kind {
	case KindString:
		return v.Str, nil
	case KindInt:
		return strconv.FormatInt(v.Int, 10), nil
	case KindFloat:
		return formatFloat(v.Float), nil
	case KindBool:
		return strconv.FormatBool(v.Bool), nil
	}
	return "", p.errorf(v.Pos, "cannot concatenate %s with a string", v.Kind)
}
