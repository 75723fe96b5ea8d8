package router

import (
	"testing"

	"github.com/starling-xmpp/starling/xmpp/jid"
)

func TestSplitCanonical(t *testing.T) {
	tests := []struct {
		in        string
		ok        bool
		bare, res string
	}{
		{"juliet@example.org/balcony", true, "juliet@example.org", "balcony"},
		{"example.org", true, "example.org", ""},
		{"juliet@example.org/a/b", true, "juliet@example.org", "a/b"},
		{"Juliet@example.org", false, "", ""},
		{"juliet@Example.org", false, "", ""},
		{"jül@example.org", false, "", ""},
		{"juliet@example.org/", false, "", ""},
		{"@example.org", false, "", ""},
		{"juliet@.example.org", false, "", ""},
		{"juliet@example..org", false, "", ""},
		{"a@b@c", false, "", ""},
	}
	for _, tt := range tests {
		got, ok := splitCanonical([]byte(tt.in))
		if ok != tt.ok || ok && (string(got.bare) != tt.bare || string(got.resource) != tt.res) {
			t.Errorf("%q: %q %q %v", tt.in, got.bare, got.resource, ok)
			continue
		}
		if ok {
			// The fast path must agree with full preparation.
			j, err := jid.Parse(tt.in)
			if err != nil || j.Bare().String() != tt.bare || j.Resource() != tt.res {
				t.Errorf("%q: jid package says %v %v", tt.in, j, err)
			}
		}
	}
}
