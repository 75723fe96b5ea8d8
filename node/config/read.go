package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/starling-xmpp/starling/node/config/tdsl"
)

// Warning is a key Starling does not read, or a value it accepts but
// ignores, with the place it was written. Tigase ignores unknown keys
// silently, which is the most common reason for "my setting does nothing".
type Warning struct {
	Pos tdsl.Pos
	// Key is the path of the key, parts joined by '/' (c2s/connections/5222/type).
	Key string
	Msg string
	// Line is the source line holding Pos, for Caret.
	Line string
}

// String formats the warning as "file:line:col: message".
func (w Warning) String() string { return w.Pos.String() + ": " + w.Msg }

// Caret formats the warning like an error's caret form: the one-line form,
// the source line and a caret under the key.
func (w Warning) Caret() string {
	return (&tdsl.Error{Pos: w.Pos, Msg: w.Msg, Line: w.Line}).Caret()
}

// reader walks the tree, converting values and collecting errors and
// warnings, so one pass reports every problem in a file rather than only
// the first.
type reader struct {
	src      []byte
	errs     []error
	warnings []Warning
}

func (r *reader) errorf(pos tdsl.Pos, format string, args ...any) {
	r.errs = append(r.errs, tdsl.Errorf(r.src, pos, format, args...))
}

func (r *reader) warnf(pos tdsl.Pos, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	line := tdsl.Errorf(r.src, pos, "").Line
	r.warnings = append(r.warnings, Warning{Pos: pos, Key: key, Msg: msg, Line: line})
}

// err joins the errors in source order: the order keys are read in is
// not the order a person reads the file in.
func (r *reader) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	sort.SliceStable(r.errs, func(i, j int) bool { return errOffset(r.errs[i]) < errOffset(r.errs[j]) })
	return errors.Join(r.errs...)
}

func errOffset(err error) int {
	var e *tdsl.Error
	if errors.As(err, &e) {
		return e.Pos.Offset
	}
	return -1
}

// sortWarnings puts warnings in source order.
func (r *reader) sortWarnings() {
	sort.SliceStable(r.warnings, func(i, j int) bool { return r.warnings[i].Pos.Offset < r.warnings[j].Pos.Offset })
}

// section is a map Starling reads: keys it asks for are marked, and done
// warns about the rest.
type section struct {
	r    *reader
	m    *tdsl.Map
	path string // "" for the root
	used map[string]bool
}

func (r *reader) section(m *tdsl.Map, path string) *section {
	return &section{r: r, m: m, path: path, used: map[string]bool{}}
}

func (s *section) keyPath(key string) string {
	if s.path == "" {
		return key
	}
	return s.path + "/" + key
}

// get returns the entry for key (nil if absent) and marks it as read.
func (s *section) get(key string) *tdsl.Entry {
	s.used[key] = true
	return s.m.Get(key)
}

// done warns about every entry nobody asked for, with a hint when the key
// is a Tigase setting Starling knows it does not honour.
func (s *section) done() {
	if s.m == nil {
		return
	}
	for _, e := range s.m.Entries {
		if s.used[e.Key] {
			continue
		}
		p := s.keyPath(e.Key)
		msg := fmt.Sprintf("unknown key '%s' is ignored", p)
		if h, ok := tigaseHints[p]; ok {
			msg += ": " + h
		} else if h, ok := tigaseHints["*"+e.Key]; ok {
			msg += ": " + h
		}
		s.r.warnf(e.KeyPos, p, "%s", msg)
	}
}

// sub returns the section for a map-valued key, or nil when the key is
// absent or not a map (reported as an error).
func (s *section) sub(key string) (*section, *tdsl.Entry) {
	e := s.get(key)
	if e == nil {
		return nil, nil
	}
	if e.Value.Kind != tdsl.KindMap {
		s.r.errorf(e.Value.Pos, "'%s' must be a block { ... }, found %s", s.keyPath(key), describe(e.Value))
		return nil, e
	}
	return s.r.section(e.Value.Map, s.keyPath(key)), e
}

func describe(v *tdsl.Value) string {
	switch v.Kind {
	case tdsl.KindString:
		return fmt.Sprintf("string '%s'", v.Str)
	case tdsl.KindNull, tdsl.KindList, tdsl.KindMap:
		return v.Kind.String()
	}
	return fmt.Sprintf("%s %s", v.Kind, v.String())
}

// str reads a string. ok is false when the key is absent or wrong.
func (s *section) str(key string) (string, *tdsl.Entry, bool) {
	e := s.get(key)
	if e == nil {
		return "", nil, false
	}
	if e.Value.Kind != tdsl.KindString {
		s.r.errorf(e.Value.Pos, "'%s' must be a string, found %s", s.keyPath(key), describe(e.Value))
		return "", e, false
	}
	return e.Value.Str, e, true
}

// boolean reads true/false. Tigase converts the strings 'true' and 'false'
// too (its documentation writes `'cluster-mode' = 'true'`), so they are
// accepted; anything else is an error.
func (s *section) boolean(key string, dst *bool) {
	e := s.get(key)
	if e == nil {
		return
	}
	v := e.Value
	switch {
	case v.Kind == tdsl.KindBool:
		*dst = v.Bool
	case v.Kind == tdsl.KindString && (v.Str == "true" || v.Str == "false"):
		*dst = v.Str == "true"
	default:
		s.r.errorf(v.Pos, "'%s' must be true or false, found %s", s.keyPath(key), describe(v))
	}
}

// integer reads an integer in [min, max]. Like Tigase, a string of digits
// ('30000') is converted.
func (s *section) integer(key string, min, max int64, dst *int) bool {
	e := s.get(key)
	if e == nil {
		return false
	}
	n, ok := s.r.intValue(s.keyPath(key), e.Value, min, max)
	if ok {
		*dst = int(n)
	}
	return ok
}

func (r *reader) intValue(name string, v *tdsl.Value, min, max int64) (int64, bool) {
	var n int64
	switch v.Kind {
	case tdsl.KindInt:
		n = v.Int
	case tdsl.KindString:
		var err error
		n, err = strconv.ParseInt(strings.TrimSpace(v.Str), 10, 64)
		if err != nil {
			r.errorf(v.Pos, "'%s' must be an integer, found %s", name, describe(v))
			return 0, false
		}
	default:
		r.errorf(v.Pos, "'%s' must be an integer, found %s", name, describe(v))
		return 0, false
	}
	if n < min || n > max {
		r.errorf(v.Pos, "'%s' = %d is out of range [%d, %d]", name, n, min, max)
		return 0, false
	}
	return n, true
}

// size reads a byte count: an integer, or a string with a k or m suffix
// (×1024, ×1024²) as Tigase writes buffer sizes ('64k').
func (s *section) size(key string, min, max int64, dst *int) {
	e := s.get(key)
	if e == nil {
		return
	}
	v := e.Value
	name := s.keyPath(key)
	if v.Kind == tdsl.KindString {
		t := strings.TrimSpace(strings.ToLower(v.Str))
		mult := int64(1)
		switch {
		case strings.HasSuffix(t, "k"):
			mult, t = 1024, t[:len(t)-1]
		case strings.HasSuffix(t, "m"):
			mult, t = 1024*1024, t[:len(t)-1]
		}
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 || n > max/mult {
			if err == nil {
				s.r.errorf(v.Pos, "'%s' = %s is out of range [%d, %d]", name, v.Str, min, max)
			} else {
				s.r.errorf(v.Pos, "'%s' must be a size such as 262144, '256k' or '1m', found %s", name, describe(v))
			}
			return
		}
		n *= mult
		if n < min {
			s.r.errorf(v.Pos, "'%s' = %s is out of range [%d, %d]", name, v.Str, min, max)
			return
		}
		*dst = int(n)
		return
	}
	if n, ok := s.r.intValue(name, v, min, max); ok {
		*dst = int(n)
	}
}

// strings reads a list of strings. A single string is accepted as a
// comma-separated list, the form Tigase's older properties used.
func (s *section) strList(key string) ([]string, []*tdsl.Value, *tdsl.Entry, bool) {
	e := s.get(key)
	if e == nil {
		return nil, nil, nil, false
	}
	v := e.Value
	name := s.keyPath(key)
	switch v.Kind {
	case tdsl.KindString:
		var out []string
		var pos []*tdsl.Value
		for _, part := range strings.Split(v.Str, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
				pos = append(pos, v)
			}
		}
		return out, pos, e, true
	case tdsl.KindList:
		out := make([]string, 0, len(v.List))
		for _, it := range v.List {
			if it.Kind != tdsl.KindString {
				s.r.errorf(it.Pos, "'%s' must be a list of strings, found %s", name, describe(it))
				return nil, nil, e, false
			}
			out = append(out, it.Str)
		}
		return out, v.List, e, true
	}
	s.r.errorf(v.Pos, "'%s' must be a list of strings, found %s", name, describe(v))
	return nil, nil, e, false
}

// oneOf checks that a string value is one of the allowed words.
func (r *reader) oneOf(name string, v *tdsl.Value, allowed ...string) bool {
	for _, a := range allowed {
		if v.Str == a {
			return true
		}
	}
	r.errorf(v.Pos, "'%s' = '%s' is not one of %s", name, v.Str, quoteList(allowed))
	return false
}

func quoteList(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, ", ")
}

// beanActive reports whether a map-valued entry is switched on: a bean
// header `(active: false)` turns it off, and so does `active = false` in
// the body, which Tigase's reader treats the same way.
func (r *reader) beanActive(e *tdsl.Entry, path string) bool {
	m := e.Value.Map
	active := true
	if m.Bean != nil {
		active = m.Bean.Active
	}
	if a := m.Get("active"); a != nil {
		switch {
		case a.Value.Kind == tdsl.KindBool:
			active = a.Value.Bool
		case a.Value.Kind == tdsl.KindString && (a.Value.Str == "true" || a.Value.Str == "false"):
			active = a.Value.Str == "true"
		default:
			r.errorf(a.Value.Pos, "'%s/active' must be true or false, found %s", path, describe(a.Value))
		}
	}
	return active
}

// beanClass returns the class of a bean: from its header, or from a
// `class = ...` entry in its body.
func (r *reader) beanClass(e *tdsl.Entry, path string) (string, tdsl.Pos) {
	m := e.Value.Map
	if m.Bean != nil && m.Bean.Class != "" {
		return m.Bean.Class, m.Bean.ClassPos
	}
	if c := m.Get("class"); c != nil {
		if c.Value.Kind != tdsl.KindString {
			r.errorf(c.Value.Pos, "'%s/class' must be a class name, found %s", path, describe(c.Value))
			return "", c.Value.Pos
		}
		return c.Value.Str, c.Value.Pos
	}
	return "", tdsl.Pos{}
}
