package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	return s.tx(ctx, "create user "+user, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (jid, domain, created) VALUES (?, ?, `+nowMillis+`) ON CONFLICT (jid) DO NOTHING`, user, domain)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return storage.ErrExists
		}
		return insertCredentials(ctx, tx, user, creds)
	})
}

func insertCredentials(ctx context.Context, tx *sql.Tx, user string, creds []storage.Credential) error {
	for _, c := range creds {
		if _, err := tx.ExecContext(ctx, `INSERT INTO credentials (jid, hash, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?)`,
			user, c.Hash, c.Salt, c.Iterations, c.StoredKey, c.ServerKey); err != nil {
			return fmt.Errorf("insert credential %s: %w", c.Hash, err)
		}
	}
	return nil
}

// SetCredentials implements storage.Users.
func (s *Store) SetCredentials(ctx context.Context, user string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("set credentials of %q: %w", user, err)
	}
	return s.tx(ctx, "set credentials of "+user, func(tx *sql.Tx) error {
		if err := userMustExist(ctx, tx, user); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE jid = ?`, user); err != nil {
			return fmt.Errorf("delete old credentials: %w", err)
		}
		return insertCredentials(ctx, tx, user, creds)
	})
}

func userMustExist(ctx context.Context, tx *sql.Tx, user string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE jid = ?`, user).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %q: %w", user, storage.ErrNotFound)
	}
	return err
}

// DeleteUser implements storage.Users. The children are deleted explicitly
// rather than left to ON DELETE CASCADE so that the result does not depend
// on a connection having foreign keys enabled.
func (s *Store) DeleteUser(ctx context.Context, user string) error {
	return s.tx(ctx, "delete user "+user, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM credentials WHERE jid = ?`,
			`DELETE FROM rosters WHERE owner = ?`,
			`DELETE FROM offline_messages WHERE owner = ?`,
			`DELETE FROM documents WHERE owner = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, user); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE jid = ?`, user)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

// Credential implements storage.Users.
func (s *Store) Credential(ctx context.Context, user, hash string) (storage.Credential, error) {
	c := storage.Credential{Hash: hash}
	err := s.stCredential.QueryRowContext(ctx, user, hash).Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, sql.ErrNoRows) {
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
	if err := s.stUserExists.QueryRowContext(ctx, user).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up user %q: %w", user, err)
	}
	return ok, nil
}

// ListUsers implements storage.Users.
func (s *Store) ListUsers(ctx context.Context, domain string) ([]string, error) {
	var rows *sql.Rows
	var err error
	if domain == "" {
		rows, err = s.read.QueryContext(ctx, `SELECT jid FROM users ORDER BY jid`)
	} else {
		rows, err = s.read.QueryContext(ctx, `SELECT jid FROM users WHERE domain = ? ORDER BY jid`, domain)
	}
	if err != nil {
		return nil, fmt.Errorf("list users of %q: %w", domain, err)
	}
	defer rows.Close()
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("list users of %q: %w", domain, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users of %q: %w", domain, err)
	}
	return users, nil
}

// CountUsers implements storage.Users.
func (s *Store) CountUsers(ctx context.Context, domain string) (int, error) {
	var n int
	var err error
	if domain == "" {
		err = s.read.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	} else {
		err = s.read.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE domain = ?`, domain).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count users of %q: %w", domain, err)
	}
	return n, nil
}
