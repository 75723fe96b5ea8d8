package disco

import (
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
)

// BenchmarkServerInfo answers the disco#info every client sends to its server after login.
func BenchmarkServerInfo(b *testing.B) {
	r := router.New(router.Options{Domains: []string{"example.com"}})
	d := New(Options{})
	d.Register(r)
	for _, ns := range []string{"jabber:iq:roster", "urn:xmpp:ping", "jabber:iq:version", "http://jabber.org/protocol/commands"} {
		r.HandleIQ(ns, d)
	}
	d.AddFeatures(FeatureMsgOffline)
	routertest.BenchRoute(b, r, "alice@example.com/phone", "<iq type='get' id='d1' to='example.com'><query xmlns='"+NSInfo+"'/></iq>")
}
