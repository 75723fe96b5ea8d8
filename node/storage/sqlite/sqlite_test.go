package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/migrate"
	"github.com/starling-xmpp/starling/node/storage/storagetest"
)

func TestStore(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "starling.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMigrations(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	storagetest.RunMigrations(t, func(t *testing.T) storagetest.Database {
		path := filepath.Join(t.TempDir(), "starling.db")
		raw := func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", path+"?_busy_timeout=10000")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		return storagetest.Database{
			Open: func(ctx context.Context) (storage.Store, error) {
				s, err := Open(ctx, path, Options{})
				if err != nil {
					return nil, err
				}
				return s, nil
			},
			Exec: func(ctx context.Context, q string) error {
				_, err := raw(t).ExecContext(ctx, q)
				return err
			},
			QueryInt: func(ctx context.Context, q string) (int64, error) {
				var n int64
				err := raw(t).QueryRowContext(ctx, q).Scan(&n)
				return n, err
			},
			Latest: migrate.Latest(ms),
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
