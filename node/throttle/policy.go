// Package throttle holds the node's side of traffic throttling: the parser
// of Tigase's 'cm-traffic-throttling' and 'cm-ht-traffic-throttling'
// settings (DESIGN.md §2).
//
// A setting is comma-separated entries {type}:{max-per-minute}:{max-lifetime}:{action}:
//
//	xmpp:25k:0:disc,bin:200m:0:disc
//
// `xmpp` limits stanzas received, counted by the node; `bin` limits the
// bytes of each direction, counted by package loader (in the kernel, or in
// its userspace fallback). Windows are loader.Window: fixed minutes aligned
// to the clock, shared by both counts.
package throttle

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/starling-xmpp/starling/loader"
)

// Rule is one entry of a setting. The zero Rule means the type has no
// entry: nothing is limited.
type Rule struct {
	PerMinute uint64 // per window (a minute); 0 = unlimited
	Lifetime  uint64 // over the connection's life; 0 = unlimited
	Action    loader.Action
}

// Set reports whether the setting had an entry for this type.
func (r Rule) Set() bool { return r.Action != loader.ActionNone }

// Policy is a parsed setting.
type Policy struct {
	XMPP Rule // stanzas received
	Bin  Rule // bytes, each direction on its own
}

// BytePolicy returns the `bin` rule in the form the loader enforces.
func (p Policy) BytePolicy() loader.BytePolicy {
	return loader.BytePolicy{PerWindow: p.Bin.PerMinute, Lifetime: p.Bin.Lifetime, Action: p.Bin.Action}
}

// String returns the setting in canonical form (plain numbers), which
// ParsePolicy reads back to the same Policy; "" when nothing is set.
func (p Policy) String() string {
	var parts []string
	for _, e := range []struct {
		name string
		r    Rule
	}{{"xmpp", p.XMPP}, {"bin", p.Bin}} {
		if e.r.Set() {
			parts = append(parts, fmt.Sprintf("%s:%d:%d:%s", e.name, e.r.PerMinute, e.r.Lifetime, e.r.Action))
		}
	}
	return strings.Join(parts, ",")
}

// SyntaxError is a malformed setting. Entry and Column are 1-based; Column
// counts bytes from the start of the setting's value, so a config parser
// can add it to where the value starts.
type SyntaxError struct {
	Entry  int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("throttling entry %d, column %d: %s", e.Entry, e.Column, e.Msg)
}

// maxLimit keeps limits within what the loader accepts (its drop ceiling
// of 1.5× must not overflow).
const maxLimit = math.MaxUint64 / 2

// ParsePolicy parses a throttling setting. Numbers take k and m suffixes
// (×1024 and ×1024², for stanzas too: 25k = 25 600); 0 means unlimited;
// the action is disc or drop. Spaces around entries are allowed. A type
// given twice, an empty entry, or anything else is an error naming the
// entry and column.
func ParsePolicy(s string) (Policy, error) {
	var p Policy
	if strings.TrimSpace(s) == "" {
		return p, &SyntaxError{Entry: 1, Column: 1, Msg: "empty setting: want {type}:{max-per-minute}:{max-lifetime}:{action}"}
	}
	seen := map[string]int{}
	entry, start := 1, 0
	for start <= len(s) {
		end := strings.IndexByte(s[start:], ',')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		r, name, err := parseEntry(s[start:end], entry, start)
		if err != nil {
			return Policy{}, err
		}
		if prev, dup := seen[name]; dup {
			return Policy{}, &SyntaxError{Entry: entry, Column: start + 1,
				Msg: fmt.Sprintf("type %s given again (first in entry %d)", name, prev)}
		}
		seen[name] = entry
		if name == "xmpp" {
			p.XMPP = r
		} else {
			p.Bin = r
		}
		entry++
		start = end + 1
	}
	return p, nil
}

// parseEntry parses one entry found at offset off of the setting.
func parseEntry(e string, entry, off int) (Rule, string, error) {
	fail := func(col int, format string, args ...any) (Rule, string, error) {
		return Rule{}, "", &SyntaxError{Entry: entry, Column: off + col + 1, Msg: fmt.Sprintf(format, args...)}
	}
	lead := len(e) - len(strings.TrimLeft(e, " \t"))
	e = strings.TrimRight(e[lead:], " \t")
	if e == "" {
		return fail(lead, "empty entry: want {type}:{max-per-minute}:{max-lifetime}:{action}")
	}
	fields := strings.Split(e, ":")
	if len(fields) != 4 {
		return fail(lead, "%q has %d fields, want {type}:{max-per-minute}:{max-lifetime}:{action}", e, len(fields))
	}
	col := make([]int, 4) // where each field starts, within the entry
	col[0] = lead
	for i := 1; i < 4; i++ {
		col[i] = col[i-1] + len(fields[i-1]) + 1
	}

	name := fields[0]
	if name != "xmpp" && name != "bin" {
		return fail(col[0], "type %q: want xmpp or bin", name)
	}
	var r Rule
	var err error
	for i, dst := range []*uint64{&r.PerMinute, &r.Lifetime} {
		f := fields[1+i]
		if *dst, err = parseAmount(f); err != nil {
			what := "max-per-minute"
			if i == 1 {
				what = "max-lifetime"
			}
			return fail(col[1+i], "%s %q: %v", what, f, err)
		}
	}
	switch fields[3] {
	case "disc":
		r.Action = loader.ActionDisc
	case "drop":
		r.Action = loader.ActionDrop
	default:
		return fail(col[3], "action %q: want disc or drop", fields[3])
	}
	return r, name, nil
}

// parseAmount parses a count with an optional k or m suffix.
func parseAmount(f string) (uint64, error) {
	mult := uint64(1)
	digits := f
	if n := len(f); n > 0 {
		switch f[n-1] {
		case 'k', 'K':
			mult, digits = 1<<10, f[:n-1]
		case 'm', 'M':
			mult, digits = 1<<20, f[:n-1]
		}
	}
	if digits == "" {
		return 0, fmt.Errorf("want a number, with an optional k or m suffix")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, fmt.Errorf("want a number, with an optional k or m suffix")
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("too large")
	}
	hi, lo := bits.Mul64(v, mult)
	if hi != 0 || lo > maxLimit {
		return 0, fmt.Errorf("too large (at most %d)", uint64(maxLimit))
	}
	return lo, nil
}
