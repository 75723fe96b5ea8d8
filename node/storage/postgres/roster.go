package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/starling-xmpp/starling/node/storage"
)

// itemColumns are read by scanItem, in order.
const itemColumns = `r.contact, r.name, r.groups, r.subscription, r.pending_out, r.pending_in, r.pending_in_stanza, r.pre_approved`

// scanItem reads itemColumns after lead; ok is false for the all-NULL row
// that the roster fetch's LEFT JOIN yields for an owner without items.
func scanItem(row pgx.Row, lead ...any) (it storage.RosterItem, ok bool, err error) {
	var (
		contact, name, sub         *string
		pendingOut, pendingIn, pre *bool
	)
	dest := append(lead, &contact, &name, &it.Groups, &sub, &pendingOut, &pendingIn, &it.PendingInStanza, &pre)
	if err := row.Scan(dest...); err != nil {
		return it, false, err
	}
	if contact == nil {
		return storage.RosterItem{}, false, nil
	}
	it.Contact, it.Name, it.Subscription = *contact, *name, *sub
	it.PendingOut, it.PendingIn, it.PreApproved = *pendingOut, *pendingIn, *pre
	if len(it.Groups) == 0 {
		it.Groups = nil
	}
	if len(it.PendingInStanza) == 0 {
		it.PendingInStanza = nil
	}
	return it, true, nil
}

// Roster implements storage.Rosters with one statement, so that the items
// and the version come from the same snapshot.
func (s *Store) Roster(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.roster_version, `+itemColumns+`
		FROM users u LEFT JOIN roster_items r ON r.owner = u.jid WHERE u.jid = $1 ORDER BY r.contact`, owner)
	if err != nil {
		return nil, 0, fmt.Errorf("read roster of %q: %w", owner, err)
	}
	defer rows.Close()
	var (
		items []storage.RosterItem
		ver   int64
	)
	for rows.Next() {
		it, ok, err := scanItem(rows, &ver)
		if err != nil {
			return nil, 0, fmt.Errorf("read roster of %q: %w", owner, err)
		}
		if ok {
			items = append(items, it)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read roster of %q: %w", owner, err)
	}
	return items, ver, nil
}

// RosterItem implements storage.Rosters.
func (s *Store) RosterItem(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+itemColumns+` FROM roster_items r WHERE r.owner = $1 AND r.contact = $2`, owner, contact)
	it, _, err := scanItem(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.RosterItem{}, fmt.Errorf("roster item %q of %q: %w", contact, owner, storage.ErrNotFound)
	}
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("roster item %q of %q: %w", contact, owner, err)
	}
	return it, nil
}

// bumpVersion increases the owner's roster version and returns it. The
// UPDATE locks the account row, serialising the owner's roster writers.
func bumpVersion(ctx context.Context, tx pgx.Tx, owner string) (int64, error) {
	var ver int64
	err := tx.QueryRow(ctx, `UPDATE users SET roster_version = roster_version + 1 WHERE jid = $1 RETURNING roster_version`, owner).Scan(&ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("user %q: %w", owner, storage.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("bump roster version: %w", err)
	}
	return ver, nil
}

// PutRosterItem implements storage.Rosters.
func (s *Store) PutRosterItem(ctx context.Context, owner string, it storage.RosterItem) (int64, error) {
	if err := storage.CheckRosterItem(it); err != nil {
		return 0, fmt.Errorf("put roster item of %q: %w", owner, err)
	}
	groups := it.Groups
	if groups == nil {
		groups = []string{}
	}
	var ver int64
	err := s.tx(ctx, "put roster item "+it.Contact+" of "+owner, func(tx pgx.Tx) error {
		var err error
		if ver, err = bumpVersion(ctx, tx, owner); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO roster_items (owner, contact, name, groups, subscription, pending_out, pending_in, pending_in_stanza, pre_approved)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (owner, contact) DO UPDATE SET name = excluded.name, groups = excluded.groups,
				subscription = excluded.subscription, pending_out = excluded.pending_out, pending_in = excluded.pending_in,
				pending_in_stanza = excluded.pending_in_stanza, pre_approved = excluded.pre_approved`,
			owner, it.Contact, it.Name, groups, it.Subscription, it.PendingOut, it.PendingIn, nilIfEmpty(it.PendingInStanza), it.PreApproved)
		return err
	})
	if err != nil {
		return 0, err
	}
	return ver, nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// DeleteRosterItem implements storage.Rosters. The version is bumped first
// so that the account row is locked before the item, the same order as in
// PutRosterItem; a missing item rolls the bump back.
func (s *Store) DeleteRosterItem(ctx context.Context, owner, contact string) (int64, error) {
	var ver int64
	err := s.tx(ctx, "delete roster item "+contact+" of "+owner, func(tx pgx.Tx) error {
		var err error
		if ver, err = bumpVersion(ctx, tx, owner); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM roster_items WHERE owner = $1 AND contact = $2`, owner, contact)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return ver, nil
}

// RosterVersion implements storage.Rosters.
func (s *Store) RosterVersion(ctx context.Context, owner string) (int64, error) {
	var ver int64
	err := s.pool.QueryRow(ctx, `SELECT roster_version FROM users WHERE jid = $1`, owner).Scan(&ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read roster version of %q: %w", owner, err)
	}
	return ver, nil
}
