package ping

import (
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
)

// BenchmarkPing routes a client's ping to the server and builds the answer: the cost of the
// keepalive many mobile clients send every few minutes.
func BenchmarkPing(b *testing.B) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	Register(r)
	routertest.BenchRoute(b, r, "alice@example.com/phone", "<iq type='get' id='p1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>")
}
