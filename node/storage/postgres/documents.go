package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/starling-xmpp/starling/node/storage"
)

// Document implements storage.Documents.
func (s *Store) Document(ctx context.Context, owner, kind, key string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT xml FROM documents WHERE owner = $1 AND kind = $2 AND key = $3`, owner, kind, key).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s document %q of %q: %w", kind, key, owner, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s document %q of %q: %w", kind, key, owner, err)
	}
	return b, nil
}

// PutDocument implements storage.Documents. Locking the owner's account row
// first makes the quota count and the write atomic against the owner's
// other writers, and orders locks as every other writer does.
func (s *Store) PutDocument(ctx context.Context, owner, kind, key string, xml []byte) error {
	if err := storage.CheckDocument(kind, key, xml); err != nil {
		return fmt.Errorf("put %s document of %q: %w", kind, owner, err)
	}
	return s.tx(ctx, fmt.Sprintf("put %s document %q of %s", kind, key, owner), func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, owner); err != nil {
			return err
		}
		var replaces bool
		var n int
		if err := tx.QueryRow(ctx, `SELECT
				EXISTS (SELECT 1 FROM documents WHERE owner = $1 AND kind = $2 AND key = $3),
				(SELECT count(*) FROM documents WHERE owner = $1 AND kind = $2)`,
			owner, kind, key).Scan(&replaces, &n); err != nil {
			return err
		}
		if !replaces && n >= storage.MaxDocumentsPerKind {
			return fmt.Errorf("%d %s documents stored, limit %d: %w", n, kind, storage.MaxDocumentsPerKind, storage.ErrQuotaExceeded)
		}
		_, err := tx.Exec(ctx, `INSERT INTO documents (owner, kind, key, xml) VALUES ($1, $2, $3, $4)
			ON CONFLICT (owner, kind, key) DO UPDATE SET xml = excluded.xml, updated = now()`, owner, kind, key, xml)
		return err
	})
}

// DeleteDocument implements storage.Documents.
func (s *Store) DeleteDocument(ctx context.Context, owner, kind, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM documents WHERE owner = $1 AND kind = $2 AND key = $3`, owner, kind, key); err != nil {
		return fmt.Errorf("delete %s document %q of %q: %w", kind, key, owner, err)
	}
	return nil
}
