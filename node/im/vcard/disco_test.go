package vcard

import (
	"slices"
	"testing"

	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// TestDiscoFeature: XEP-0054 §4 has a server announce vcard-temp in disco#info; registering the
// handler is what makes it appear.
func TestDiscoFeature(t *testing.T) {
	r, st := newServer(t, Options{})
	d := disco.New(disco.Options{Roster: st})
	d.Register(r)
	if f := d.ServerInfo().Features; !slices.Contains(f, NS) {
		t.Errorf("server features %q lack %s", f, NS)
	}
	bare := router.New(router.Options{Domains: []string{domain}})
	d2 := disco.New(disco.Options{Roster: st})
	d2.Register(bare)
	if f := d2.ServerInfo().Features; slices.Contains(f, NS) {
		t.Errorf("server features %q list %s without the handler", f, NS)
	}
}

// BenchmarkGetOther routes a request for another account's vCard (4 KiB, on SQLite) and builds the
// answer: what a client does for each contact whose avatar hash it does not know.
func BenchmarkGetOther(b *testing.B) {
	r, _ := newServer(b, Options{})
	alice := routertest.Bind(b, r, "alice@"+domain+"/phone")
	card := "<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + string(make4k()) + "</BINVAL></PHOTO></vCard>"
	alice.Send(b, iq("set", "", card))
	if got := alice.Sink.Take(); len(got) != 1 {
		b.Fatalf("set: %q", got)
	}
	bob := router.NewResource(jid.MustParse("bob@"+domain+"/pc"), routertest.Discard{}, routertest.Discard{})
	r.Bind(b.Context(), bob)
	e := routertest.Parse(b, iq("get", "alice@example.com", get))
	b.ReportAllocs()
	b.SetBytes(int64(len(card)))
	for b.Loop() {
		r.Route(b.Context(), bob, e)
	}
}

func make4k() []byte {
	p := make([]byte, 4096)
	for i := range p {
		p[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i%64]
	}
	return p
}
