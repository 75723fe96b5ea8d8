package stanza

import (
	"testing"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

func TestInspect(t *testing.T) {
	tests := []struct {
		raw  string
		ok   bool
		name string
	}{
		{"<message to='a@b'><body>x</body></message>", true, "message"},
		{"<presence/>", true, "presence"},
		{"<message", false, ""},
		{"<a/><b/>", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		got := ""
		ok := Inspect([]byte(tt.raw), func(e *xml.Element) { got = string(e.Name()) })
		if ok != tt.ok || got != tt.name {
			t.Errorf("%q: %v %q, want %v %q", tt.raw, ok, got, tt.ok, tt.name)
		}
	}
}
