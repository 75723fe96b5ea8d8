package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/starling-xmpp/starling/node/storage"
)

// CreateUser implements storage.Users.
func (s *Store) CreateUser(ctx context.Context, user string, creds []storage.Credential) error {
	domain, err := storage.SplitUser(user)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("create user %q: %w", user, err)
	}
	return s.tx(ctx, "create user "+user, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO users (jid, domain) VALUES ($1, $2) ON CONFLICT (jid) DO NOTHING`, user, domain)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrExists
		}
		return insertCredentials(ctx, tx, user, creds)
	})
}

func insertCredentials(ctx context.Context, tx pgx.Tx, user string, creds []storage.Credential) error {
	for _, c := range creds {
		if _, err := tx.Exec(ctx, `INSERT INTO credentials (jid, hash, salt, iterations, stored_key, server_key) VALUES ($1, $2, $3, $4, $5, $6)`,
			user, c.Hash, c.Salt, c.Iterations, c.StoredKey, c.ServerKey); err != nil {
			return fmt.Errorf("insert credential %s: %w", c.Hash, err)
		}
	}
	return nil
}

// lockUser locks the account row for the rest of the transaction, so that
// one owner's read-then-write sequences do not interleave; an unknown
// account yields ErrNotFound.
func lockUser(ctx context.Context, tx pgx.Tx, user string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE jid = $1 FOR UPDATE`, user).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("user %q: %w", user, storage.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock user %q: %w", user, err)
	}
	return nil
}

// SetCredentials implements storage.Users.
func (s *Store) SetCredentials(ctx context.Context, user string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("set credentials of %q: %w", user, err)
	}
	return s.tx(ctx, "set credentials of "+user, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, user); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE jid = $1`, user); err != nil {
			return fmt.Errorf("delete old credentials: %w", err)
		}
		return insertCredentials(ctx, tx, user, creds)
	})
}

// DeleteUser implements storage.Users. The children are deleted explicitly
// as well as by ON DELETE CASCADE, so the statement order is the lock order
// and matches the other writers (account row first).
func (s *Store) DeleteUser(ctx context.Context, user string) error {
	return s.tx(ctx, "delete user "+user, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, user); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM credentials WHERE jid = $1`,
			`DELETE FROM rosters WHERE owner = $1`,
			`DELETE FROM offline_messages WHERE owner = $1`,
			`DELETE FROM documents WHERE owner = $1`,
			`DELETE FROM users WHERE jid = $1`,
		} {
			if _, err := tx.Exec(ctx, q, user); err != nil {
				return err
			}
		}
		return nil
	})
}

// Credential implements storage.Users.
func (s *Store) Credential(ctx context.Context, user, hash string) (storage.Credential, error) {
	c := storage.Credential{Hash: hash}
	err := s.pool.QueryRow(ctx, `SELECT salt, iterations, stored_key, server_key FROM credentials WHERE jid = $1 AND hash = $2`, user, hash).
		Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Credential{}, fmt.Errorf("credential %s of %q: %w", hash, user, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Credential{}, fmt.Errorf("credential %s of %q: %w", hash, user, err)
	}
	return c, nil
}

// UserExists implements storage.Users.
func (s *Store) UserExists(ctx context.Context, user string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE jid = $1)`, user).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up user %q: %w", user, err)
	}
	return ok, nil
}

// ListUsers implements storage.Users. The columns' C collation makes the
// order byte order, the same as SQLite's, whatever the database's locale.
func (s *Store) ListUsers(ctx context.Context, domain string) ([]string, error) {
	var rows pgx.Rows
	var err error
	if domain == "" {
		rows, err = s.pool.Query(ctx, `SELECT jid FROM users ORDER BY jid`)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT jid FROM users WHERE domain = $1 ORDER BY jid`, domain)
	}
	if err != nil {
		return nil, fmt.Errorf("list users of %q: %w", domain, err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list users of %q: %w", domain, err)
	}
	if len(users) == 0 {
		return nil, nil
	}
	return users, nil
}

// CountUsers implements storage.Users.
func (s *Store) CountUsers(ctx context.Context, domain string) (int, error) {
	var n int
	var err error
	if domain == "" {
		err = s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	} else {
		err = s.pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE domain = $1`, domain).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count users of %q: %w", domain, err)
	}
	return n, nil
}
