package jid

import (
	"errors"
	"testing"
)

// FuzzParse checks that parsing never panics, that every JID it returns is
// canonical (its String parses back to the same JID) and that the fast
// checks agree with full preparation.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 60s ./xmpp/jid
func FuzzParse(f *testing.F) {
	for _, tc := range validTests {
		f.Add(tc.in)
	}
	for _, tc := range invalidTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		full, fullErr := parse(s, true)
		if (err == nil) != (fullErr == nil) || j != full {
			t.Fatalf("Parse = %#v, %v; full preparation = %#v, %v", j, err, full, fullErr)
		}
		if b, bErr := ParseBytes([]byte(s)); b != j || (bErr == nil) != (err == nil) {
			t.Fatalf("ParseBytes = %#v, %v; Parse = %#v, %v", b, bErr, j, err)
		}
		if err != nil {
			var jerr *Error
			if !errors.As(err, &jerr) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		if j.IsZero() || j.Domain() == "" {
			t.Fatalf("Parse(%q) succeeded with an empty domainpart: %#v", s, j)
		}
		again, err := Parse(j.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, j, err)
		}
		if again != j {
			t.Fatalf("Parse(%q) = %#v, Parse of that = %#v", s, j, again)
		}
		n, err := New(j.Local(), j.Domain(), j.Resource())
		if err != nil || n != j {
			t.Fatalf("New(parts of %q) = %#v, %v; want %#v", s, n, err, j)
		}
		if j.Bare() != MustParse(j.Bare().String()) {
			t.Fatalf("Bare of %q is not canonical", j)
		}
	})
}
