package postgres

import (
	"testing"

	"github.com/starling-xmpp/starling/node/storage/migrate"
	"github.com/starling-xmpp/starling/node/storage/storagetest"
)

// TestUpgradeAndRollback applies a later migration to a database at the
// current version, and checks that a failing migration leaves nothing
// behind: not its first statements, not its schema_migrations row.
func TestUpgradeAndRollback(t *testing.T) {
	s, err := Open(t.Context(), storagetest.PostgresSchema(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	next := migrate.Latest(ms) + 1
	bad := append(ms[:len(ms):len(ms)],
		migrate.Migration{Version: next, Name: "half", SQL: `CREATE TABLE upgrade_probe (x integer); INSERT INTO no_such_table VALUES (1);`})
	if err := s.applyMigrations(t.Context(), bad); err == nil {
		t.Fatal("a failing migration applied without error")
	}
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != next-1 {
		t.Fatalf("SchemaVersion after failed migration = %d, %v; want %d", v, err, next-1)
	}
	var exists bool
	if err := s.pool.QueryRow(t.Context(), `SELECT to_regclass('upgrade_probe') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("failed migration left its table behind: %v, %v", exists, err)
	}

	good := append(ms[:len(ms):len(ms)],
		migrate.Migration{Version: next, Name: "probe", SQL: `CREATE TABLE upgrade_probe (x integer);`})
	if err := s.applyMigrations(t.Context(), good); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != next {
		t.Fatalf("SchemaVersion after upgrade = %d, %v; want %d", v, err, next)
	}
	if err := s.applyMigrations(t.Context(), good); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
}
