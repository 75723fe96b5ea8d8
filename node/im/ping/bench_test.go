package ping

import (
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// BenchmarkPing routes a client's ping to the server and builds the answer: the cost of the
// keepalive many mobile clients send every few minutes.
func BenchmarkPing(b *testing.B) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	Register(r)
	res := router.NewResource(jid.MustParse("alice@example.com/phone"), routertest.Discard{}, routertest.Discard{})
	r.Bind(b.Context(), res)
	e := routertest.Parse(b, "<iq type='get' id='p1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Raw())))
	for b.Loop() {
		r.Route(b.Context(), res, e)
	}
}
