package postgres

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/migrate"
	"github.com/starling-xmpp/starling/node/storage/storagetest"
)

func TestStore(t *testing.T) {
	storagetest.PostgresURI(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(t.Context(), storagetest.PostgresSchema(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMigrations(t *testing.T) {
	storagetest.PostgresURI(t)
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	storagetest.RunMigrations(t, func(t *testing.T) storagetest.Database {
		uri := storagetest.PostgresSchema(t)
		c := storagetest.PostgresConn(t, uri)
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
	u, err := url.Parse(storagetest.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "no_such_schema_"+strings.ToLower(rand.Text()))
	u.RawQuery = q.Encode()
	s, err := Open(t.Context(), u.String(), Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open with a search_path naming no schema succeeded")
	}
}
