package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/node/storage"
)

// Bench runs the storage benchmarks on a Store from open: the reads every
// login makes (credential, roster, offline count, and the three together)
// and the writes of message and roster traffic, from parallel goroutines as
// concurrent sessions do.
func Bench(b *testing.B, open func(b *testing.B) storage.Store) {
	const users, items = 300, 20
	s := open(b)
	b.Cleanup(func() { s.Close() })
	fill(b, s, users, items)
	type op struct {
		name string
		fn   func(ctx context.Context, user string) error
	}
	reads := []op{
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
	for _, o := range reads {
		b.Run(fmt.Sprintf("op=%s/items=%d", o.name, items), func(b *testing.B) {
			parallel(b, func(ctx context.Context, n int) error { return o.fn(ctx, benchUser(n%users)) })
		})
	}
	stanza := []byte("<message type='chat' to='user000001@example.org'><body>hello there</body></message>")
	b.Run("op=store_offline", func(b *testing.B) {
		b.SetBytes(int64(len(stanza)))
		parallel(b, func(ctx context.Context, n int) error {
			return s.StoreOffline(ctx, benchUser(n%users), stanza, 0)
		})
	})
	// A vCard with a small avatar: clients fetch their contacts' vCards
	// after login to check XEP-0153 hashes, and republish their own.
	card := []byte("<vCard xmlns='vcard-temp'><FN>User</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" +
		string(bytes.Repeat([]byte("QUJD"), 1024)) + "</BINVAL></PHOTO></vCard>")
	for i := range users {
		if err := s.PutDocument(b.Context(), benchUser(i), storage.KindVCard, "", card); err != nil {
			b.Fatal(err)
		}
	}
	b.Run(fmt.Sprintf("op=document/bytes=%d", len(card)), func(b *testing.B) {
		b.SetBytes(int64(len(card)))
		parallel(b, func(ctx context.Context, n int) error {
			d, err := s.Document(ctx, benchUser(n%users), storage.KindVCard, "")
			if err == nil && len(d) != len(card) {
				err = fmt.Errorf("vCard of %d bytes, want %d", len(d), len(card))
			}
			return err
		})
	})
	b.Run(fmt.Sprintf("op=put_document/bytes=%d", len(card)), func(b *testing.B) {
		b.SetBytes(int64(len(card)))
		parallel(b, func(ctx context.Context, n int) error {
			return s.PutDocument(ctx, benchUser(n%users), storage.KindVCard, "", card)
		})
	})
	b.Run("op=put_roster_item", func(b *testing.B) {
		parallel(b, func(ctx context.Context, n int) error {
			it := storage.RosterItem{Contact: fmt.Sprintf("c%d@example.net", n%500), Subscription: storage.SubTo}
			_, err := s.PutRosterItem(ctx, benchUser(n%users), it)
			return err
		})
	})
}

// parallel runs fn from b's parallel goroutines. Besides wall time it
// reports the process's CPU time per operation (cpu-ns/op): on a shared
// machine the wall time depends on the neighbours, the CPU time much less.
func parallel(b *testing.B, fn func(ctx context.Context, n int) error) {
	b.ReportAllocs()
	var next atomic.Int64
	cpu0 := cpuTime(b)
	defer func() {
		if b.N > 0 {
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := fn(ctx, int(next.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fill creates users shaped like a login's: three credentials, a roster of
// items contacts, three offline messages.
func fill(b *testing.B, s storage.Store, users, items int) {
	b.Helper()
	ctx := b.Context()
	var creds []storage.Credential
	for i, h := range []string{storage.HashSHA1, storage.HashSHA256, storage.HashSHA512} {
		creds = append(creds, storage.Credential{Hash: h, Salt: bytes.Repeat([]byte{byte(i)}, 16), Iterations: 4096,
			StoredKey: bytes.Repeat([]byte{1}, 32), ServerKey: bytes.Repeat([]byte{2}, 32)})
	}
	for u := range users {
		user := benchUser(u)
		if err := s.CreateUser(ctx, user, creds); err != nil {
			b.Fatal(err)
		}
		for c := range items {
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
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchUser(i int) string { return fmt.Sprintf("user%06d@example.org", i) }
