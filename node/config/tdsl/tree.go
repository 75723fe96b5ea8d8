// Package tdsl parses the configuration language of Tigase XMPP Server's
// config.tdsl files into a tree of positioned values.
//
// The parser knows nothing about which keys a server reads: it turns text into
// maps, beans, lists and scalars, evaluates the small expression language
// (+ - * /, env(), prop()) and records where every key and value came from, so
// that a consumer can report "file:line:col: ..." for any problem it finds
// later. The grammar follows Tigase's own reader: `#` comments, `=` or `:`
// assignments, newline or `,` separators (never `;`), quoted or bare keys,
// numeric keys such as `5277`, and beans written `name (class: x, active: b,
// exportable: b) { ... }`.
package tdsl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Pos is a location in a source file. Line and Col are 1-based; Col counts
// characters (runes), not bytes. Offset is the 0-based byte offset.
type Pos struct {
	File   string
	Line   int
	Col    int
	Offset int
}

// String formats the position as file:line:col, the form editors and
// compilers use so that the location is clickable.
func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("%d:%d", p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// IsValid reports whether the position was set by the parser.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Kind is the type of a Value.
type Kind int

// The kinds of values the DSL can hold.
const (
	KindNull Kind = iota
	KindString
	KindInt
	KindFloat
	KindBool
	KindList
	KindMap
)

var kindNames = [...]string{
	KindNull:   "null",
	KindString: "string",
	KindInt:    "integer",
	KindFloat:  "float",
	KindBool:   "boolean",
	KindList:   "list",
	KindMap:    "map",
}

// String names the kind the way error messages speak of it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one parsed value with the position where it starts. Only the
// field matching Kind is meaningful.
type Value struct {
	Pos   Pos
	Kind  Kind
	Str   string   // KindString
	Int   int64    // KindInt
	Float float64  // KindFloat
	Bool  bool     // KindBool
	List  []*Value // KindList
	Map   *Map     // KindMap

	// Bare is true for a String written as an unquoted word
	// (`socket = plain`), which Tigase keeps as a string.
	Bare bool
	// Long is true for an Int written with an L suffix (`60L`); Tigase
	// distinguishes Integer from Long, Starling keeps both as int64.
	Long bool
}

// String renders the value in DSL syntax, for messages and debugging.
func (v *Value) String() string {
	if v == nil {
		return "null"
	}
	var b strings.Builder
	v.write(&b, 0)
	return b.String()
}

func (v *Value) write(b *strings.Builder, indent int) {
	switch v.Kind {
	case KindNull:
		b.WriteString("null")
	case KindString:
		if v.Bare {
			b.WriteString(v.Str)
		} else {
			writeQuoted(b, v.Str)
		}
	case KindInt:
		if v.Int == math.MinInt64 {
			// Its magnitude has no positive literal, so write an expression.
			if v.Long {
				b.WriteString("(-9223372036854775807L - 1)")
			} else {
				b.WriteString("(-9223372036854775807 - 1)")
			}
			break
		}
		b.WriteString(strconv.FormatInt(v.Int, 10))
		if v.Long {
			b.WriteByte('L')
		}
	case KindFloat:
		b.WriteString(formatFloat(v.Float))
	case KindBool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case KindList:
		b.WriteString("[ ")
		for i, item := range v.List {
			if i > 0 {
				b.WriteString(", ")
			}
			item.write(b, indent)
		}
		b.WriteString(" ]")
	case KindMap:
		v.Map.write(b, indent)
	}
}

// writeQuoted quotes s with whichever quote character it does not contain;
// the DSL has no escapes, so a string holding both cannot be written back.
func writeQuoted(b *strings.Builder, s string) {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 {
		q = '"'
	}
	b.WriteByte(q)
	b.WriteString(s)
	b.WriteByte(q)
}

// formatFloat prints a float as Java's Double.toString does for ordinary
// values ("2.0", not "2"), which is what Groovy shows when concatenating.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// Bean is the header of a map written `name (...) { }`: it defines (and by
// default activates) a component rather than only configuring it.
type Bean struct {
	Pos Pos // position of '('
	// Class is the implementation class; empty when not given.
	Class    string
	ClassPos Pos
	// Active is true unless the header says `active: false`; `()` means active.
	Active    bool
	ActivePos Pos
	// Exportable is Tigase's flag for beans visible to child kernels.
	Exportable    bool
	ExportablePos Pos
}

// Entry is one `key = value` (or `key { }`, `key () { }`) inside a map.
type Entry struct {
	Key    string
	KeyPos Pos
	Value  *Value
}

// Map is a `{ }` block: entries in source order, and for a bean its header.
type Map struct {
	Pos     Pos   // position of '{' or, for a bean without body, of '('
	Bean    *Bean // nil for a plain map
	Entries []*Entry
	index   map[string]int
}

// Get returns the entry for key, or nil when the map does not hold it.
func (m *Map) Get(key string) *Entry {
	if m == nil {
		return nil
	}
	if i, ok := m.index[key]; ok {
		return m.Entries[i]
	}
	return nil
}

// Len returns the number of entries.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.Entries)
}

// add appends an entry and reports the earlier entry if key is a duplicate.
func (m *Map) add(e *Entry) (dup *Entry) {
	if m.index == nil {
		m.index = make(map[string]int)
	}
	if i, ok := m.index[e.Key]; ok {
		return m.Entries[i]
	}
	m.index[e.Key] = len(m.Entries)
	m.Entries = append(m.Entries, e)
	return nil
}

// String renders the map's entries as a DSL document, one entry a line;
// parsing the result gives the same tree (strings holding both quote
// characters excepted, since the DSL has no escapes).
func (m *Map) String() string {
	var b strings.Builder
	m.writeEntries(&b, 0)
	return b.String()
}

func (m *Map) write(b *strings.Builder, indent int) {
	if m == nil {
		b.WriteString("{}")
		return
	}
	if m.Bean != nil {
		b.WriteString("(")
		var parts []string
		if m.Bean.Class != "" {
			var c strings.Builder
			writeKey(&c, m.Bean.Class)
			parts = append(parts, "class: "+c.String())
		}
		if !m.Bean.Active {
			parts = append(parts, "active: false")
		}
		if m.Bean.Exportable {
			parts = append(parts, "exportable: true")
		}
		b.WriteString(strings.Join(parts, ", "))
		b.WriteString(") ")
	}
	if len(m.Entries) == 0 {
		b.WriteString("{}")
		return
	}
	b.WriteString("{\n")
	m.writeEntries(b, indent+1)
	b.WriteString(strings.Repeat("    ", indent))
	b.WriteString("}")
}

func (m *Map) writeEntries(b *strings.Builder, indent int) {
	if m == nil {
		return
	}
	for _, e := range m.Entries {
		b.WriteString(strings.Repeat("    ", indent))
		writeKey(b, e.Key)
		if e.Value.Kind == KindMap {
			b.WriteByte(' ')
		} else {
			b.WriteString(" = ")
		}
		e.Value.write(b, indent)
		b.WriteByte('\n')
	}
}

func writeKey(b *strings.Builder, k string) {
	if k != "" && isBareKey(k) {
		b.WriteString(k)
		return
	}
	writeQuoted(b, k)
}

func isBareKey(k string) bool {
	for i, r := range k {
		if !isWordRune(r) {
			return false
		}
		if i == 0 && r >= '0' && r <= '9' {
			// A digit-led key must be a plain integer to be read back.
			_, err := strconv.ParseUint(k, 10, 64)
			return err == nil
		}
	}
	switch k {
	case "true", "false", "null":
		return false
	}
	return true
}
