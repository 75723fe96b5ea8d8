package postgres

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/migrate"
	"github.com/starling-xmpp/starling/node/storage/storagetest"
)

// freshSchema creates a schema of its own on the database named by
// STARLING_TEST_POSTGRES, drops it when the test ends, and returns a URI
// whose search_path selects it, so that test runs never see each other's
// rows. It skips the test when the variable is not set.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := needPostgres(t)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("STARLING_TEST_POSTGRES must be a postgres:// URI")
	}
	schema := "starling_test_" + randomName()
	admin := connect(t, base)
	if _, err := admin.Exec(t.Context(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// needPostgres returns STARLING_TEST_POSTGRES or skips the test.
func needPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("STARLING_TEST_POSTGRES")
	if base == "" {
		t.Skip("STARLING_TEST_POSTGRES not set: run .ci/postgres.sh and export its output to test the PostgreSQL backend")
	}
	return base
}

func connect(t *testing.T, uri string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), uri)
	if err != nil {
		t.Fatalf("connect to STARLING_TEST_POSTGRES: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestStore(t *testing.T) {
	needPostgres(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(t.Context(), freshSchema(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMigrations(t *testing.T) {
	needPostgres(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	storagetest.RunMigrations(t, func(t *testing.T) storagetest.Database {
		uri := freshSchema(t)
		c := connect(t, uri)
		return storagetest.Database{
			Open: func(ctx context.Context) (storage.Store, error) {
				s, err := Open(ctx, uri, Options{})
				if err != nil {
					return nil, err
				}
				return s, nil
			},
			Exec: func(ctx context.Context, q string) error {
				_, err := c.Exec(ctx, q)
				return err
			},
			QueryInt: func(ctx context.Context, q string) (int64, error) {
				var n int64
				err := c.QueryRow(ctx, q).Scan(&n)
				return n, err
			},
			Latest: migrate.Latest(ms),
		}
	})
}

func TestOpenMalformedURIHidesPassword(t *testing.T) {
	_, err := Open(t.Context(), "postgres://user:secret@[::1/db", Options{})
	if err == nil {
		t.Fatal("Open of a malformed URI succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestOpenMissingSchema(t *testing.T) {
	u, err := url.Parse(freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "no_such_schema_"+randomName())
	u.RawQuery = q.Encode()
	s, err := Open(t.Context(), u.String(), Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open with a search_path naming no schema succeeded")
	}
}

func randomName() string { return strings.ToLower(rand.Text()) }
