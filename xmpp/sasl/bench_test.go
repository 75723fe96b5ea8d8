package sasl

import (
	"context"
	"testing"
)

// BenchmarkSCRAM measures one whole login as the server sees it (both
// server steps and the store lookup), with a client whose SaltCache spares it
// PBKDF2, the way the load generator runs. The client's own cost is included;
// BenchmarkServerSteps isolates the server.
func BenchmarkSCRAM(b *testing.B) {
	for _, h := range []Hash{SHA1, SHA256, SHA512} {
		b.Run("hash="+string(h), func(b *testing.B) {
			st := newStore(b, "juliet", "secret")
			ctx := context.Background()
			cache := NewSaltCache(0)
			b.ReportAllocs()
			for b.Loop() {
				srv, err := NewServer(h.Mechanism(false), ServerConfig{Lookup: st.lookup})
				if err != nil {
					b.Fatal(err)
				}
				cl, err := NewClient(h.Mechanism(false), ClientConfig{Username: "juliet", Password: "secret", Cache: cache})
				if err != nil {
					b.Fatal(err)
				}
				if err := exchange(ctx, srv, cl); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServerSteps measures only the server's side of a SCRAM login:
// NewServer and its two steps, replaying messages a client made once.
func BenchmarkServerSteps(b *testing.B) {
	for _, h := range []Hash{SHA1, SHA256, SHA512} {
		b.Run("hash="+string(h), func(b *testing.B) {
			st := newStore(b, "juliet", "secret")
			ctx := context.Background()
			cl, _ := NewClient(h.Mechanism(false), ClientConfig{Username: "juliet", Password: "secret"})
			first, _, _ := cl.Step(nil)
			srv, _ := NewServer(h.Mechanism(false), ServerConfig{Lookup: st.lookup})
			srv.newNonce = func() string { return "fixed" }
			sf, _, _ := srv.Step(ctx, first)
			final, _, err := cl.Step(sf)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				srv, _ := NewServer(h.Mechanism(false), ServerConfig{Lookup: st.lookup})
				srv.newNonce = func() string { return "fixed" }
				if _, _, err := srv.Step(ctx, first); err != nil {
					b.Fatal(err)
				}
				if _, done, err := srv.Step(ctx, final); err != nil || !done {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlain measures a PLAIN login, which has to run PBKDF2 (here at
// DefaultIterations) on the server for every attempt.
func BenchmarkPlain(b *testing.B) {
	cs, err := NewCredentials("secret", DefaultIterations)
	if err != nil {
		b.Fatal(err)
	}
	lookup := func(context.Context, string, Hash) (Credentials, error) { return cs[1], nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		srv, _ := NewServer(Plain, ServerConfig{Lookup: lookup, TLS: true})
		if _, done, err := srv.Step(ctx, []byte("\x00juliet\x00secret")); err != nil || !done {
			b.Fatal(err)
		}
	}
}

// TestServerAllocs guards the server's per-login allocations (27 with Go
// 1.26, mostly inside crypto/hmac), so that a change that makes logins
// allocation-heavy shows up here rather than in the load test.
func TestServerAllocs(t *testing.T) {
	st := newStore(t, "juliet", "secret")
	ctx := context.Background()
	cl, _ := NewClient("SCRAM-SHA-256", ClientConfig{Username: "juliet", Password: "secret"})
	first, _, _ := cl.Step(nil)
	srv, _ := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: st.lookup})
	srv.newNonce = func() string { return "fixed" }
	sf, _, _ := srv.Step(ctx, first)
	final, _, err := cl.Step(sf)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		srv, _ := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: st.lookup})
		srv.newNonce = func() string { return "fixed" }
		srv.Step(ctx, first)
		if _, done, err := srv.Step(ctx, final); err != nil || !done {
			t.Fatal(err)
		}
	})
	if allocs > 35 {
		t.Errorf("a SCRAM-SHA-256 login allocates %.0f times on the server, want at most 35", allocs)
	}
}
