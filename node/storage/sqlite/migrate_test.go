package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/starling-xmpp/starling/node/storage/migrate"
)

// TestUpgradeAndRollback applies a later migration to a database at the
// current version, and checks that a failing migration leaves nothing
// behind: not its first statements, not its schema_migrations row.
func TestUpgradeAndRollback(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "m.db"), Options{})
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
		migrate.Migration{Version: next, Name: "half", SQL: `CREATE TABLE upgrade_probe (x INTEGER); INSERT INTO no_such_table VALUES (1);`})
	if err := s.applyMigrations(t.Context(), bad); err == nil {
		t.Fatal("a failing migration applied without error")
	}
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != next-1 {
		t.Fatalf("SchemaVersion after failed migration = %d, %v; want %d", v, err, next-1)
	}
	var n int
	if err := s.read.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name = 'upgrade_probe'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed migration left its table behind: %d, %v", n, err)
	}

	good := append(ms[:len(ms):len(ms)],
		migrate.Migration{Version: next, Name: "probe", SQL: `CREATE TABLE upgrade_probe (x INTEGER);`})
	if err := s.applyMigrations(t.Context(), good); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != next {
		t.Fatalf("SchemaVersion after upgrade = %d, %v; want %d", v, err, next)
	}
	// Applying the same set again is a no-op (the table exists, a second
	// CREATE would fail).
	if err := s.applyMigrations(t.Context(), good); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
}
