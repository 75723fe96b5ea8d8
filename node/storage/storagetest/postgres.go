package storagetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the variable holding the URI of a PostgreSQL database
// the tests may create schemas in (.ci/postgres.sh prints one).
const PostgresEnv = "STARLING_TEST_POSTGRES"

// PostgresURI returns the URI in PostgresEnv, or skips the test.
func PostgresURI(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " not set: run .ci/postgres.sh and export its output to test the PostgreSQL backend")
	}
	return base
}

// PostgresSchema creates a schema of its own on the database named by
// PostgresEnv, drops it when the test ends, and returns a URI whose
// search_path selects it, so that test runs never see each other's rows. It
// skips the test when the variable is not set.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := PostgresURI(t)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// or postgresql:// URI", PostgresEnv)
	}
	schema := "starling_test_" + strings.ToLower(rand.Text())
	admin := PostgresConn(t, base)
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

// PostgresConn connects to uri for the duration of the test.
func PostgresConn(t testing.TB, uri string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), uri)
	if err != nil {
		t.Fatalf("connect to %s: %v", PostgresEnv, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
