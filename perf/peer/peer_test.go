package peer

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/perf/xmppclient"
	"github.com/starling-xmpp/starling/xmpp/sasl"
)

// TestPeers runs each installed Debian server for real: start, create
// accounts, log in with every security mode and mechanism it offers, stop,
// and check that nothing of it is left running.
func TestPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	opts := Options{Dir: t.TempDir(), Log: slog.New(slog.DiscardHandler)}
	if os.Geteuid() == 0 {
		// The servers run as their own users and must reach their state.
		os.Chmod(filepath.Dir(opts.Dir), 0o755)
		os.Chmod(opts.Dir, 0o755)
	}
	repo, _ := filepath.Abs("../..")
	servers := []struct {
		srv      Server
		pkg      string
		noSHA256 bool
	}{
		{NewEjabberd(opts, 0, 0), "ejabberd", false},
		{NewProsody(opts, 0, 0), "prosody", true},
		{NewStarling(opts, repo, "", 0, 0), "", false},
	}
	for _, tt := range servers {
		t.Run(tt.srv.Name(), func(t *testing.T) {
			if tt.pkg == "" {
				if err := tt.srv.Check(context.Background()); err != nil {
					t.Skipf("starling: %v", err)
				}
			} else if !Installed(context.Background(), tt.pkg) {
				t.Skipf("%s is not installed (starling-bench installs it)", tt.pkg)
			}
			ports := freePorts(t, 2)
			switch s := tt.srv.(type) {
			case *Ejabberd:
				s.c2s, s.tls = ports[0], ports[1]
			case *Prosody:
				s.c2s, s.tls = ports[0], ports[1]
			case *Starling:
				s.c2s, s.tls = ports[0], ports[1]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := tt.srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
			pid := tt.srv.PID()
			defer func() {
				if err := tt.srv.Stop(); err != nil {
					t.Error(err)
				}
				if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Errorf("process group %d still exists after Stop (kill: %v)", pid, err)
				}
			}()
			accts := Accounts(3)
			if err := tt.srv.CreateUsers(ctx, accts, nil); err != nil {
				t.Fatal(err)
			}
			cache := sasl.NewSaltCache(0)
			for _, sec := range []xmppclient.Security{xmppclient.Plain, xmppclient.StartTLS, xmppclient.DirectTLS} {
				for _, mech := range []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"} {
					c, err := xmppclient.Dial(ctx, xmppclient.Config{
						Addr: tt.srv.Endpoint(sec).Addr, Domain: tt.srv.Domain(), User: accts[1].User,
						Password: accts[1].Password, Resource: "t", Security: sec, Mechanism: mech, Cache: cache, Presence: true})
					var unsup *xmppclient.UnsupportedError
					if errors.As(err, &unsup) && ((mech == "SCRAM-SHA-256" && tt.noSHA256) ||
						(mech == "PLAIN" && sec == xmppclient.Plain && tt.srv.Name() == "starling")) {
						continue // Prosody 0.12 stores SHA-1 keys only; Starling offers PLAIN only over TLS
					}
					if err != nil {
						t.Fatalf("%v %s: %v", sec, mech, err)
					}
					if want := accts[1].User + "@" + tt.srv.Domain() + "/t"; c.JID() != want {
						t.Errorf("%v %s: JID %q, want %q", sec, mech, c.JID(), want)
					}
					c.Close()
				}
			}
			_, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: tt.srv.Endpoint(xmppclient.Plain).Addr,
				Domain: tt.srv.Domain(), User: accts[0].User, Password: "wrong", Mechanism: "SCRAM-SHA-1"})
			if err == nil {
				t.Error("a wrong password logged in")
			}
			// A restart keeps the accounts: the marker must not re-register.
			if err := tt.srv.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := tt.srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
			pid = tt.srv.PID()
			c, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: tt.srv.Endpoint(xmppclient.Plain).Addr,
				Domain: tt.srv.Domain(), User: accts[2].User, Password: accts[2].Password, Mechanism: "SCRAM-SHA-1"})
			if err != nil {
				t.Fatalf("after restart: %v", err)
			}
			c.Close()
		})
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for range n {
		l, err := listenLoopback()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().(*netTCPAddr).Port)
		defer l.Close()
	}
	return out
}
