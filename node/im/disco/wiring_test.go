package disco_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/starling-xmpp/starling/node/accounts"
	"github.com/starling-xmpp/starling/node/im/adhoc"
	"github.com/starling-xmpp/starling/node/im/adhoc/admin"
	"github.com/starling-xmpp/starling/node/im/disco"
	"github.com/starling-xmpp/starling/node/im/ping"
	"github.com/starling-xmpp/starling/node/im/register"
	"github.com/starling-xmpp/starling/node/im/version"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// TestWiring wires every server feature module the way the node does and checks that the server
// advertises each feature exactly when its module is on.
func TestWiring(t *testing.T) {
	for _, registration := range []bool{false, true} {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "starling.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		acc := accounts.New(st, 0)
		r := router.New(router.Options{Domains: []string{"example.com"}, Accounts: acc})
		admins := []jid.JID{jid.MustParse("root@example.com")}
		d := disco.New(disco.Options{Admins: admins, Roster: st})
		d.Register(r)
		ping.Register(r)
		version.Register(r, version.Options{Version: "test"})
		reg, err := register.New(register.Options{Enabled: registration, Accounts: acc, Sessions: r})
		if err != nil {
			t.Fatal(err)
		}
		reg.Register(r)
		cmds, err := admin.Commands(admin.Options{Accounts: acc, Sessions: r})
		if err != nil {
			t.Fatal(err)
		}
		a := adhoc.New(adhoc.Options{Admins: admins})
		if err := a.Add(cmds...); err != nil {
			t.Fatal(err)
		}
		a.Register(r, d)
		d.AddFeatures(disco.FeatureMsgOffline)

		want := []string{disco.NSInfo, disco.NSItems, adhoc.NS, "jabber:iq:version", disco.FeatureMsgOffline, "urn:xmpp:ping"}
		if registration {
			want = append(want, register.NS)
		}
		slices.Sort(want)
		if got := d.ServerInfo().Features; !slices.Equal(got, want) {
			t.Errorf("registration %v: features %q, want %q", registration, got, want)
		}
	}
}
