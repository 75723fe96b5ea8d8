package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/starling-xmpp/starling/node/storage"
)

// TestMain fails the package if a Store leaves goroutines behind after
// Close (database/sql runs connection openers in the background).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestSharedFileWriters opens several Stores on one file, as several nodes
// on one host do, and writes from all of them at once. Each Store's single
// write connection only serialises its own writers; between Stores, SQLite's
// file lock decides, and a writer that finds it taken must wait (IMMEDIATE
// transactions and the busy timeout) rather than fail with SQLITE_BUSY.
func TestSharedFileWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	const (
		stores  = 4
		workers = 4 // per store
		perWork = 15
	)
	var ss []*Store
	for range stores {
		s, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ss = append(ss, s)
	}
	const owner = "juliet@capulet.lit"
	if err := ss[0].CreateUser(t.Context(), owner, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, stores*workers*perWork)
	for si, s := range ss {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWork {
					c := fmt.Sprintf("c%d-%d-%d@example.net", si, w, i)
					if _, err := s.PutRosterItem(t.Context(), owner, storage.RosterItem{Contact: c, Subscription: storage.SubNone}); err != nil {
						errs <- err
					}
					if err := s.StoreOffline(t.Context(), owner, []byte("<message/>"), 0); err != nil {
						errs <- err
					}
					// A read in the middle, through the read pool.
					if _, err := s.RosterVersion(t.Context(), owner); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	const n = stores * workers * perWork
	items, ver, err := ss[1].Roster(t.Context(), owner)
	if err != nil || len(items) != n || ver != n {
		t.Fatalf("Roster = %d items, version %d, %v; want %d and %d", len(items), ver, err, n, n)
	}
	if c, err := ss[2].CountOffline(t.Context(), owner); err != nil || c != n {
		t.Fatalf("CountOffline = %d, %v; want %d", c, err, n)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "starling.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(t.Context(), "a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %v: others can read the credentials", filepath.Base(p), mode)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, path string }{
		{"empty", ""},
		{"memory", ":memory:"},
		{"uri", "file:x.db"},
		{"query", filepath.Join(dir, "x.db?mode=ro")},
		{"directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.path, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
		})
	}
	// Not a database at all.
	junk := filepath.Join(dir, "junk.db")
	writeFile(t, junk, "this is not an SQLite database, just text long enough to have a header")
	if s, err := Open(t.Context(), junk, Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a text file succeeded")
	} else if errors.Is(err, storage.ErrSchemaTooNew) {
		t.Fatalf("Open of a text file: %v", err)
	}
}

// TestConnectionSettings checks what the package doc promises of every
// connection: WAL, foreign keys enforced, a busy timeout, and read-only
// connections in the read pool.
func TestConnectionSettings(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "p.db"), Options{BusyTimeout: 1234 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, db := range map[string]*sql.DB{"write": s.write, "read": s.read} {
		var mode string
		var fk, busy int
		if err := db.QueryRowContext(t.Context(), `SELECT journal_mode, foreign_keys, timeout FROM pragma_journal_mode, pragma_foreign_keys, pragma_busy_timeout`).Scan(&mode, &fk, &busy); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if mode != "wal" || fk != 1 || busy != 1234 {
			t.Errorf("%s connection: journal_mode %s, foreign_keys %d, busy_timeout %d; want wal, 1, 1234", name, mode, fk, busy)
		}
	}
	if _, err := s.read.ExecContext(t.Context(), `INSERT INTO users (jid, domain, created) VALUES ('a@b', 'b', 0)`); err == nil {
		t.Error("a read-pool connection accepted a write")
	}
	_, err = s.write.ExecContext(t.Context(), `INSERT INTO credentials (jid, hash, salt, iterations, stored_key, server_key) VALUES ('ghost@b', 'SHA-1', x'01', 1, x'01', x'01')`)
	if err == nil {
		t.Error("a credential for a missing user was accepted: foreign keys are off")
	}
}
