package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/starling-xmpp/starling/node/storage"
)

// StoreOffline implements storage.Offline. The count and the insert share
// one write transaction, so concurrent senders cannot overshoot the quota.
func (s *Store) StoreOffline(ctx context.Context, owner string, stanza []byte, limit int) error {
	if len(stanza) == 0 {
		return fmt.Errorf("store offline message for %q: %w: empty stanza", owner, storage.ErrInvalid)
	}
	return s.tx(ctx, "store offline message for "+owner, func(tx *sql.Tx) error {
		var exists bool
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE jid = ?), (SELECT count(*) FROM offline_messages WHERE owner = ?)`,
			owner, owner).Scan(&exists, &n); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("user %q: %w", owner, storage.ErrNotFound)
		}
		if limit > 0 && n >= limit {
			return fmt.Errorf("%d messages stored, limit %d: %w", n, limit, storage.ErrQuotaExceeded)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO offline_messages (owner, stanza, stored) VALUES (?, ?, `+nowMillis+`)`, owner, stanza)
		return err
	})
}

// OfflineMessages implements storage.Offline.
func (s *Store) OfflineMessages(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	rows, err := s.stOfflineMsgs.QueryContext(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("read offline messages of %q: %w", owner, err)
	}
	defer rows.Close()
	var msgs []storage.OfflineMessage
	for rows.Next() {
		var m storage.OfflineMessage
		var ms int64
		if err := rows.Scan(&m.ID, &m.Stanza, &ms); err != nil {
			return nil, fmt.Errorf("read offline messages of %q: %w", owner, err)
		}
		m.Stored = time.UnixMilli(ms)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read offline messages of %q: %w", owner, err)
	}
	return msgs, nil
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, owner string, upToID int64) error {
	return s.tx(ctx, "delete offline messages of "+owner, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM offline_messages WHERE owner = ? AND id <= ?`, owner, upToID)
		return err
	})
}

// CountOffline implements storage.Offline.
func (s *Store) CountOffline(ctx context.Context, owner string) (int, error) {
	var n int
	if err := s.stCountOff.QueryRowContext(ctx, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("count offline messages of %q: %w", owner, err)
	}
	return n, nil
}
