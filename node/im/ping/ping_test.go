package ping

import (
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
)

func TestPing(t *testing.T) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	Register(r)
	tests := []struct {
		name, in         string
		typ, cond, from  string
		emptyResultInner bool
	}{
		{"server", "<iq type='get' id='1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "result", "", "example.com", true},
		{"no to", "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "result", "", "", true},
		{"own bare", "<iq type='get' id='1' to='alice@example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "result", "", "alice@example.com", true},
		{"other bare", "<iq type='get' id='1' to='bob@example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "error", "service-unavailable", "bob@example.com", false},
		{"set", "<iq type='set' id='1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>", "error", "feature-not-implemented", "example.com", false},
		{"wrong element", "<iq type='get' id='1' to='example.com'><pong xmlns='urn:xmpp:ping'/></iq>", "error", "service-unavailable", "example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := routertest.Bind(t, r, "alice@example.com/phone")
			defer r.Unbind(t.Context(), c.Resource)
			got := c.Do(t, tt.in)
			if got.Type != tt.typ || got.Condition() != tt.cond || got.ID != "1" || got.From != tt.from || got.To != "alice@example.com/phone" {
				t.Errorf("reply %s: want type %q condition %q from %q", got.Raw, tt.typ, tt.cond, tt.from)
			}
			if tt.emptyResultInner && len(got.Inner) != 0 {
				t.Errorf("result has content: %s", got.Raw)
			}
		})
	}
}
