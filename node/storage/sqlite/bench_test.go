package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
)

// benchStore fills a database with users shaped like a login's: three
// credentials, a roster of rosterItems contacts, a few offline messages.
func benchStore(b *testing.B, users, rosterItems int) *Store {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	creds := []storage.Credential{}
	for i, h := range []string{storage.HashSHA1, storage.HashSHA256, storage.HashSHA512} {
		creds = append(creds, storage.Credential{Hash: h, Salt: bytes.Repeat([]byte{byte(i)}, 16), Iterations: 4096,
			StoredKey: bytes.Repeat([]byte{1}, 32), ServerKey: bytes.Repeat([]byte{2}, 32)})
	}
	for u := range users {
		user := benchUser(u)
		if err := s.CreateUser(ctx, user, creds); err != nil {
			b.Fatal(err)
		}
		for c := range rosterItems {
			it := storage.RosterItem{Contact: benchUser((u + c + 1) % users), Name: "Contact", Groups: []string{"Friends"}, Subscription: storage.SubBoth}
			if _, err := s.PutRosterItem(ctx, user, it); err != nil {
				b.Fatal(err)
			}
		}
		for range 3 {
			if err := s.StoreOffline(ctx, user, []byte("<message type='chat'><body>hi</body></message>"), 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

func benchUser(i int) string { return fmt.Sprintf("user%06d@example.org", i) }

// BenchmarkLoginPath measures the reads every login makes, from parallel
// goroutines as concurrent logins do.
func BenchmarkLoginPath(b *testing.B) {
	const users, items = 1000, 20
	s := benchStore(b, users, items)
	ops := []struct {
		name string
		fn   func(ctx context.Context, user string) error
	}{
		{"credential", func(ctx context.Context, u string) error {
			_, err := s.Credential(ctx, u, storage.HashSHA256)
			return err
		}},
		{"roster", func(ctx context.Context, u string) error {
			it, _, err := s.Roster(ctx, u)
			if err == nil && len(it) != items {
				err = fmt.Errorf("roster of %s has %d items", u, len(it))
			}
			return err
		}},
		{"count_offline", func(ctx context.Context, u string) error {
			_, err := s.CountOffline(ctx, u)
			return err
		}},
		{"login", func(ctx context.Context, u string) error {
			if _, err := s.Credential(ctx, u, storage.HashSHA256); err != nil {
				return err
			}
			if _, _, err := s.Roster(ctx, u); err != nil {
				return err
			}
			_, err := s.CountOffline(ctx, u)
			return err
		}},
	}
	for _, op := range ops {
		b.Run(fmt.Sprintf("op=%s/items=%d", op.name, items), func(b *testing.B) {
			b.ReportAllocs()
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := op.fn(ctx, benchUser(int(next.Add(1))%users)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkWrite measures the writes of message and roster traffic.
func BenchmarkWrite(b *testing.B) {
	const users = 100
	s := benchStore(b, users, 0)
	stanza := []byte("<message type='chat' to='user000001@example.org'><body>hello there</body></message>")
	b.Run("op=store_offline", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stanza)))
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.StoreOffline(context.Background(), benchUser(int(next.Add(1))%users), stanza, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("op=put_roster_item", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := int(next.Add(1))
				it := storage.RosterItem{Contact: fmt.Sprintf("c%d@example.net", n%500), Subscription: storage.SubTo}
				if _, err := s.PutRosterItem(context.Background(), benchUser(n%users), it); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
