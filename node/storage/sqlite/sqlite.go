// Package sqlite is the embedded storage backend: one SQLite file under the
// node's data directory, through modernc.org/sqlite (pure Go, no cgo).
//
// The file runs in WAL mode so that readers never wait for the writer. The
// Store keeps two connection pools on it: a pool of read-only connections for
// the login path (credential lookup, roster fetch, offline count), which WAL
// lets run in parallel with a write, and a single write connection. Funnelling
// this process's writes through one connection means they queue in Go (where
// the wait honours the context) instead of colliding inside SQLite and
// surfacing SQLITE_BUSY; write transactions begin IMMEDIATE and the busy
// timeout covers the remaining case, other processes (several nodes on one
// host sharing the file).
//
// The schema is applied from the embedded migrations/ directory when the
// Store opens (see [Open]).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the embedded schema migrations of this backend.
func Migrations() ([]migrate.Migration, error) {
	return migrate.Load(migrationFiles, "migrations")
}

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Logger receives migration and open messages; nil discards them.
	Logger *slog.Logger
	// BusyTimeout is how long a statement waits for another process's
	// write lock before failing with SQLITE_BUSY; 0 means 10 s.
	BusyTimeout time.Duration
	// ReadConns bounds the read-only pool; 0 means 2×GOMAXPROCS, at least 4.
	ReadConns int
}

// Store is a storage.Store on one SQLite file.
type Store struct {
	log   *slog.Logger
	read  *sql.DB // query_only connections, many
	write *sql.DB // exactly one connection, transactions BEGIN IMMEDIATE

	// Prepared once: these run for every login (DESIGN §7 targets 5 000
	// logins/s), and preparing a statement costs more than running it.
	stCredential  *sql.Stmt
	stRoster      *sql.Stmt
	stRosterVer   *sql.Stmt
	stCountOff    *sql.Stmt
	stUserExists  *sql.Stmt
	stOfflineMsgs *sql.Stmt
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, applies the
// pending schema migrations in one transaction and returns the Store. It
// fails with an error wrapping storage.ErrSchemaTooNew if the file was
// migrated by a newer binary. Concurrent opens of one file, in this process
// or others, apply each migration once: the migration transaction holds the
// database's write lock from its first statement.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite database: empty path")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("open sqlite database %q: want a plain file path (no '?', '#', file: URI or :memory:)", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open sqlite database %q: create directory: %w", path, err)
		}
	}
	// The file holds SCRAM keys: create it readable by the node alone.
	// SQLite gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}
	f.Close()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = max(4, 2*runtime.GOMAXPROCS(0))
	}

	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	// NORMAL is durable in WAL mode except for the last transactions
	// before a power loss, and saves an fsync per commit.
	q.Set("_synchronous", "NORMAL")
	q.Set("_journal_mode", "WAL")
	writeQ := cloneValues(q)
	// IMMEDIATE takes the write lock at BEGIN, where the busy timeout
	// applies; a deferred transaction that reads first and then writes can
	// fail with SQLITE_BUSY at once, without waiting.
	writeQ.Set("_txlock", "immediate")
	readQ := cloneValues(q)
	readQ.Set("_query_only", "1")

	s := &Store{log: log}
	if s.write, err = sql.Open("sqlite", path+"?"+writeQ.Encode()); err != nil {
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)

	// The write connection goes first: it creates the file and switches it
	// to WAL before any read-only connection (which cannot) opens it.
	if err := s.migrate(ctx); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}

	if s.read, err = sql.Open("sqlite", path+"?"+readQ.Encode()); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}
	s.read.SetMaxOpenConns(readConns)
	s.read.SetMaxIdleConns(readConns)
	s.read.SetConnMaxLifetime(0)
	s.read.SetConnMaxIdleTime(0)

	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// migrate brings the schema up to date in one IMMEDIATE transaction: the
// first concurrent opener migrates, the others wait on the write lock and
// then find nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	return s.applyMigrations(ctx, ms)
}

// applyMigrations applies what ms holds beyond the database's version; tests
// pass their own ms to check upgrades and rollback.
func (s *Store) applyMigrations(ctx context.Context, ms []migrate.Migration) error {
	return s.tx(ctx, "migrate schema", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER NOT NULL PRIMARY KEY,
			name    TEXT    NOT NULL,
			applied INTEGER NOT NULL DEFAULT (`+nowMillis+`)
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		pending, err := migrate.Pending(ms, current)
		if err != nil {
			return err
		}
		for _, m := range pending {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %d (%s): %w", m.Version, m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %d (%s): %w", m.Version, m.Name, err)
			}
			s.log.Info("applied schema migration", "backend", "sqlite", "version", m.Version, "name", m.Name)
		}
		return nil
	})
}

// SchemaVersion returns the highest migration recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.read.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// nowMillis is the database's clock in unix milliseconds.
const nowMillis = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`

func (s *Store) prepare(ctx context.Context) error {
	stmts := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.stCredential, `SELECT salt, iterations, stored_key, server_key FROM credentials WHERE jid = ? AND hash = ?`},
		{&s.stRoster, `SELECT version, items FROM rosters WHERE owner = ?`},
		{&s.stRosterVer, `SELECT version FROM rosters WHERE owner = ?`},
		{&s.stCountOff, `SELECT count(*) FROM offline_messages WHERE owner = ?`},
		{&s.stUserExists, `SELECT EXISTS (SELECT 1 FROM users WHERE jid = ?)`},
		{&s.stOfflineMsgs, `SELECT id, stanza, stored FROM offline_messages WHERE owner = ? ORDER BY id`},
	}
	for _, st := range stmts {
		p, err := s.read.PrepareContext(ctx, st.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", strings.Join(strings.Fields(st.sql), " "), err)
		}
		*st.dst = p
	}
	return nil
}

// tx runs fn in a write transaction on the single write connection and
// commits it; what names the operation in errors.
func (s *Store) tx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// Ping checks that both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite write connection: %w", err)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite read connections: %w", err)
	}
	return nil
}

// Close closes the prepared statements and both pools.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.stCredential, s.stRoster, s.stRosterVer, s.stCountOff, s.stUserExists, s.stOfflineMsgs} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	// Closing the last connection checkpoints the WAL into the main file.
	errs = append(errs, s.write.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite database: %w", err)
	}
	return nil
}
