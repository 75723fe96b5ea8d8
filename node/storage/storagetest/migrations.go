package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
)

// Database is one fresh database that a migration test opens several
// times.
type Database struct {
	// Open opens a new Store on the database, applying migrations.
	Open func(ctx context.Context) (storage.Store, error)
	// Exec runs one SQL statement on the database outside any Store.
	Exec func(ctx context.Context, query string) error
	// QueryInt runs a query returning one integer.
	QueryInt func(ctx context.Context, query string) (int64, error)
	// Latest is the highest migration version the backend knows.
	Latest int
}

// RunMigrations checks the migration runner: a reopen applies nothing,
// concurrent opens apply each migration once, and a database recorded at a
// newer version than the binary knows is refused. newDB must return a
// fresh, empty database for each call.
func RunMigrations(t *testing.T, newDB func(t *testing.T) Database) {
	t.Run("Idempotent", func(t *testing.T) {
		db := newDB(t)
		for i := range 3 {
			s, err := db.Open(t.Context())
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
			if i == 0 {
				// Data written before a reopen survives it.
				mustCreate(t, s, "a@example.org")
			} else if ok, err := s.UserExists(t.Context(), "a@example.org"); err != nil || !ok {
				t.Fatalf("open %d: user gone after reopen: %v, %v", i, ok, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			checkVersions(t, db)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		db := newDB(t)
		const n = 6
		stores := make([]storage.Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stores[i], errs[i] = db.Open(t.Context())
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("concurrent open %d: %v", i, errs[i])
				continue
			}
			if err := stores[i].Ping(t.Context()); err != nil {
				t.Errorf("ping %d: %v", i, err)
			}
			stores[i].Close()
		}
		checkVersions(t, db)
	})
	t.Run("NewerSchemaRefused", func(t *testing.T) {
		db := newDB(t)
		s, err := db.Open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := db.Exec(t.Context(), fmt.Sprintf(`INSERT INTO schema_migrations (version, name) VALUES (%d, 'from_a_newer_binary')`, db.Latest+1)); err != nil {
			t.Fatal(err)
		}
		s, err = db.Open(t.Context())
		if !errors.Is(err, storage.ErrSchemaTooNew) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
		}
	})
}

func checkVersions(t *testing.T, db Database) {
	t.Helper()
	n, err := db.QueryInt(t.Context(), `SELECT count(*) FROM schema_migrations`)
	if err != nil || n != int64(db.Latest) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, db.Latest)
	}
	v, err := db.QueryInt(t.Context(), `SELECT max(version) FROM schema_migrations`)
	if err != nil || v != int64(db.Latest) {
		t.Fatalf("schema_migrations max version %d (%v), want %d", v, err, db.Latest)
	}
}
