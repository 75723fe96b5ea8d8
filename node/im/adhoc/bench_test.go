package adhoc

import (
	"context"
	"testing"

	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// BenchmarkExecute runs a one-stage command with a submitted form: the framework's cost around a
// command (session id, form parsing, response).
func BenchmarkExecute(b *testing.B) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	d := disco.New(disco.Options{})
	d.Register(r)
	a := New(Options{})
	a.Add(Command{Node: "count", Name: "Count", Handler: HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		return &Response{Notes: []Note{{Text: req.Form.Value("n")}}}, nil
	})})
	a.Register(r, d)
	res := router.NewResource(jid.MustParse("alice@example.com/phone"), routertest.Discard{}, routertest.Discard{})
	r.Bind(b.Context(), res)
	e := routertest.Parse(b, exec("count", "", "", submit("n", "1")))
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Raw())))
	for b.Loop() {
		r.Route(b.Context(), res, e)
	}
	if n := a.Sessions(); n != 0 {
		b.Fatalf("%d sessions left", n)
	}
}
