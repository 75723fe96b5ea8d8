package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/starling-xmpp/starling/node/storage"
)

// StoreOffline implements storage.Offline. Locking the owner's account row
// first makes the count and the insert atomic against concurrent senders
// (the quota holds), and makes ids commit in order per owner: a reader that
// delivers up to id N can never later find an undelivered message below N
// that was still in flight.
func (s *Store) StoreOffline(ctx context.Context, owner string, stanza []byte, limit int) error {
	if len(stanza) == 0 {
		return fmt.Errorf("store offline message for %q: %w: empty stanza", owner, storage.ErrInvalid)
	}
	return s.tx(ctx, "store offline message for "+owner, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, owner); err != nil {
			return err
		}
		if limit > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM offline_messages WHERE owner = $1`, owner).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return fmt.Errorf("%d messages stored, limit %d: %w", n, limit, storage.ErrQuotaExceeded)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO offline_messages (owner, stanza) VALUES ($1, $2)`, owner, stanza)
		return err
	})
}

// OfflineMessages implements storage.Offline.
func (s *Store) OfflineMessages(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, stanza, stored FROM offline_messages WHERE owner = $1 ORDER BY id`, owner)
	if err != nil {
		return nil, fmt.Errorf("read offline messages of %q: %w", owner, err)
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.OfflineMessage, error) {
		var m storage.OfflineMessage
		err := row.Scan(&m.ID, &m.Stanza, &m.Stored)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read offline messages of %q: %w", owner, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	return msgs, nil
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, owner string, upToID int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM offline_messages WHERE owner = $1 AND id <= $2`, owner, upToID); err != nil {
		return fmt.Errorf("delete offline messages of %q: %w", owner, err)
	}
	return nil
}

// CountOffline implements storage.Offline.
func (s *Store) CountOffline(ctx context.Context, owner string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM offline_messages WHERE owner = $1`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("count offline messages of %q: %w", owner, err)
	}
	return n, nil
}
