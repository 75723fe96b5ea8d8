package presence

import (
	"fmt"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// countSink counts and drops what it is given.
type countSink struct{ n, bytes int }

func (s *countSink) Write(p []byte) error { s.n++; s.bytes += len(p); return nil }
func (s *countSink) WriteElement(e *xml.Element, set ...xml.Attr) error {
	return s.Write(e.AppendTo(nil, set...))
}

// BenchmarkBroadcast measures a presence update of a user whose contacts are all online: one
// roster read from SQLite and one stanza per contact.
func BenchmarkBroadcast(b *testing.B) {
	for _, contacts := range []int{10, 100} {
		b.Run(fmt.Sprintf("contacts=%d", contacts), func(b *testing.B) {
			e := newEnv(b)
			ctx := b.Context()
			st := e.store
			mk := func(u string) {
				if err := st.CreateUser(ctx, u, nil); err != nil {
					b.Fatal(err)
				}
			}
			mk("alice@example.com")
			sinks := make([]*countSink, contacts)
			for i := range contacts {
				c := fmt.Sprintf("c%d@example.com", i)
				mk(c)
				if _, err := st.PutRosterItem(ctx, "alice@example.com", storage.RosterItem{Contact: c, Subscription: storage.SubBoth}); err != nil {
					b.Fatal(err)
				}
				sinks[i] = &countSink{}
				res := router.NewResource(jid.MustParse(c+"/r"), sinks[i], routertest.Discard{})
				e.router.Bind(ctx, res)
				res.SetPresence(true, 0, []byte("<presence from='"+c+"/r'/>"))
			}
			alice := router.NewResource(jid.MustParse("alice@example.com/x"), &countSink{}, routertest.Discard{})
			e.router.Bind(ctx, alice)
			el := routertest.Parse(b, "<presence><show>away</show><status>in a meeting</status></presence>")
			e.h.HandlePresence(ctx, alice, el) // initial presence, with its probes
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.h.HandlePresence(ctx, alice, el)
			}
			b.StopTimer()
			if sinks[0].n < b.N {
				b.Fatalf("contact got %d broadcasts for %d updates", sinks[0].n, b.N)
			}
		})
	}
}
