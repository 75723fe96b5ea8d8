// Package postgres is the storage backend for clusters spread over several
// hosts: the same schema as the SQLite backend, on PostgreSQL through
// github.com/jackc/pgx/v5 and its connection pool.
//
// Statements are prepared and cached per connection by pgx, so the login
// path (credential lookup, roster fetch, offline count) costs one round
// trip each. Writes that read before they write (offline quota, roster
// version) lock the owner's account row first, which serialises one owner's
// writers without blocking anyone else.
//
// The schema is applied from the embedded migrations/ directory when the
// Store opens (see [Open]), in the schema the connection's search_path
// selects, so several deployments or test runs can share one database.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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
	// Logger receives migration messages; nil discards them.
	Logger *slog.Logger
	// MaxConns bounds the pool; 0 keeps pgx's default (or the URI's
	// pool_max_conns).
	MaxConns int32
}

// Store is a storage.Store on a PostgreSQL database.
type Store struct {
	log  *slog.Logger
	pool *pgxpool.Pool
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database named by uri (postgres:// or
// postgresql://, or a key=value connection string), applies the pending
// schema migrations in one transaction and returns the Store. It fails with
// an error wrapping storage.ErrSchemaTooNew if the database was migrated by
// a newer binary. Concurrent opens apply each migration once: the migration
// transaction first takes an advisory lock.
func Open(ctx context.Context, uri string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(uri)
	if err != nil {
		// pgx's message may quote the URI, password included.
		return nil, fmt.Errorf("open postgresql database: parse connection string: %w", redact(err))
	}
	return OpenConfig(ctx, cfg, opts)
}

// redact replaces a parse error, whose text quotes the connection string
// and may leak the password (pgx redacts on a best-effort basis only), with
// a message that cannot.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("malformed connection string (check the scheme, host, port, and percent-encoding of user and password)")
	}
	return err
}

// OpenConfig is Open with a parsed pool configuration, for callers that set
// fields a URI cannot carry.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config, opts Options) (*Store, error) {
	cfg = cfg.Copy() // the caller's configuration stays as it was
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgresql database %s: %w", where, err)
	}
	s := &Store{log: log, pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgresql database %s: %w", where, err)
	}
	return s, nil
}

// migrationLockKey is the first half of the advisory lock key that
// serialises migrations; the second half is the schema, so deployments in
// different schemas of one database do not wait for each other.
const migrationLockKey = 0x5354524c // "STRL"

// migrate brings the schema up to date in one transaction. PostgreSQL's DDL
// is transactional, so a failed migration leaves nothing behind.
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
	return s.tx(ctx, "migrate schema", func(tx pgx.Tx) error {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("read current schema: %w", err)
		}
		if schema == nil {
			return errors.New("no schema to create tables in: the search_path names no existing schema")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, migrationLockKey, *schema); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer     NOT NULL PRIMARY KEY,
			name    text        NOT NULL,
			applied timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		pending, err := migrate.Pending(ms, current)
		if err != nil {
			return err
		}
		for _, m := range pending {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %d (%s): %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %d (%s): %w", m.Version, m.Name, err)
			}
			s.log.Info("applied schema migration", "backend", "postgresql", "schema", *schema, "version", m.Version, "name", m.Name)
		}
		return nil
	})
}

// SchemaVersion returns the highest migration recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// tx runs fn in a transaction and commits it; what names the operation in
// errors.
func (s *Store) tx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		// The rollback's own error adds nothing: the transaction is
		// abandoned either way, and a broken connection is discarded.
		tx.Rollback(context.WithoutCancel(ctx))
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgresql: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
