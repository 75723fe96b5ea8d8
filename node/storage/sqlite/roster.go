package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/rostercodec"
)

// Roster implements storage.Rosters: one row, decoded.
func (s *Store) Roster(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	items, ver, err := readRoster(s.stRoster.QueryRowContext(ctx, owner))
	if err != nil {
		return nil, 0, fmt.Errorf("read roster of %q: %w", owner, err)
	}
	return items, ver, nil
}

// readRoster scans a "SELECT version, items" row; no row is an empty
// roster at version 0.
func readRoster(row *sql.Row) ([]storage.RosterItem, int64, error) {
	var (
		ver  int64
		blob []byte
	)
	err := row.Scan(&ver, &blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	items, err := rostercodec.Decode(blob)
	if err != nil {
		return nil, 0, err
	}
	return items, ver, nil
}

// RosterItem implements storage.Rosters.
func (s *Store) RosterItem(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	items, _, err := s.Roster(ctx, owner)
	if err != nil {
		return storage.RosterItem{}, err
	}
	i, ok := rostercodec.Find(items, contact)
	if !ok {
		return storage.RosterItem{}, fmt.Errorf("roster item %q of %q: %w", contact, owner, storage.ErrNotFound)
	}
	return items[i], nil
}

// changeRoster applies change to the owner's items in a write transaction
// and stores the result with the next version, which it returns. change
// returning an error leaves the roster as it was.
func (s *Store) changeRoster(ctx context.Context, what, owner string, change func([]storage.RosterItem) ([]storage.RosterItem, error)) (int64, error) {
	var ver int64
	err := s.tx(ctx, what, func(tx *sql.Tx) error {
		if err := userMustExist(ctx, tx, owner); err != nil {
			return err
		}
		items, cur, err := readRoster(tx.QueryRowContext(ctx, `SELECT version, items FROM rosters WHERE owner = ?`, owner))
		if err != nil {
			return fmt.Errorf("read roster: %w", err)
		}
		if items, err = change(items); err != nil {
			return err
		}
		blob, err := rostercodec.Encode(nil, items)
		if err != nil {
			return err
		}
		ver = cur + 1
		_, err = tx.ExecContext(ctx, `INSERT INTO rosters (owner, version, items) VALUES (?, ?, ?)
			ON CONFLICT (owner) DO UPDATE SET version = excluded.version, items = excluded.items`, owner, ver, blob)
		return err
	})
	if err != nil {
		return 0, err
	}
	return ver, nil
}

// PutRosterItem implements storage.Rosters.
func (s *Store) PutRosterItem(ctx context.Context, owner string, it storage.RosterItem) (int64, error) {
	if err := storage.CheckRosterItem(it); err != nil {
		return 0, fmt.Errorf("put roster item of %q: %w", owner, err)
	}
	it = storage.NormalizeRosterItem(it)
	return s.changeRoster(ctx, "put roster item "+it.Contact+" of "+owner, owner, func(items []storage.RosterItem) ([]storage.RosterItem, error) {
		return rostercodec.Put(items, it), nil
	})
}

// DeleteRosterItem implements storage.Rosters.
func (s *Store) DeleteRosterItem(ctx context.Context, owner, contact string) (int64, error) {
	return s.changeRoster(ctx, "delete roster item "+contact+" of "+owner, owner, func(items []storage.RosterItem) ([]storage.RosterItem, error) {
		items, ok := rostercodec.Remove(items, contact)
		if !ok {
			return nil, storage.ErrNotFound
		}
		return items, nil
	})
}

// RosterVersion implements storage.Rosters.
func (s *Store) RosterVersion(ctx context.Context, owner string) (int64, error) {
	var ver int64
	err := s.stRosterVer.QueryRowContext(ctx, owner).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read roster version of %q: %w", owner, err)
	}
	return ver, nil
}
