package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/starling-xmpp/starling/node/storage"
)

// Document implements storage.Documents.
func (s *Store) Document(ctx context.Context, owner, kind, key string) ([]byte, error) {
	var b []byte
	err := s.read.QueryRowContext(ctx, `SELECT xml FROM documents WHERE owner = ? AND kind = ? AND key = ?`, owner, kind, key).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s document %q of %q: %w", kind, key, owner, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s document %q of %q: %w", kind, key, owner, err)
	}
	return b, nil
}

// PutDocument implements storage.Documents. The owner check, the quota
// count and the write share one write transaction, so concurrent writers
// cannot overshoot the quota.
func (s *Store) PutDocument(ctx context.Context, owner, kind, key string, xml []byte) error {
	if err := storage.CheckDocument(kind, key, xml); err != nil {
		return fmt.Errorf("put %s document of %q: %w", kind, owner, err)
	}
	return s.tx(ctx, fmt.Sprintf("put %s document %q of %s", kind, key, owner), func(tx *sql.Tx) error {
		var exists, replaces bool
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT
				EXISTS (SELECT 1 FROM users WHERE jid = ?),
				EXISTS (SELECT 1 FROM documents WHERE owner = ? AND kind = ? AND key = ?),
				(SELECT count(*) FROM documents WHERE owner = ? AND kind = ?)`,
			owner, owner, kind, key, owner, kind).Scan(&exists, &replaces, &n); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("user %q: %w", owner, storage.ErrNotFound)
		}
		if !replaces && n >= storage.MaxDocumentsPerKind {
			return fmt.Errorf("%d %s documents stored, limit %d: %w", n, kind, storage.MaxDocumentsPerKind, storage.ErrQuotaExceeded)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO documents (owner, kind, key, xml, updated) VALUES (?, ?, ?, ?, `+nowMillis+`)
			ON CONFLICT (owner, kind, key) DO UPDATE SET xml = excluded.xml, updated = excluded.updated`, owner, kind, key, xml)
		return err
	})
}

// DeleteDocument implements storage.Documents.
func (s *Store) DeleteDocument(ctx context.Context, owner, kind, key string) error {
	return s.tx(ctx, fmt.Sprintf("delete %s document %q of %s", kind, key, owner), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM documents WHERE owner = ? AND kind = ? AND key = ?`, owner, kind, key)
		return err
	})
}
