package adhoc

import (
	"context"
	"testing"

	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
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
	routertest.BenchRoute(b, r, "alice@example.com/phone", exec("count", "", "", submit("n", "1")))
	if n := a.Sessions(); n != 0 {
		b.Fatalf("%d sessions left", n)
	}
}
