package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/starling-xmpp/starling/node/storage"
)

// rowScanner is the Scan of *sql.Row and *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// groupSep joins group names in the groups column; storage.CheckRosterItem
// keeps it out of names.
const groupSep = "\x1f"

// itemColumns are read by scanItem, in order.
const itemColumns = `contact, name, groups, subscription, pending_out, pending_in, pending_in_stanza, pre_approved`

// scanItem reads itemColumns after the lead columns.
func scanItem(sc rowScanner, lead ...any) (storage.RosterItem, error) {
	var it storage.RosterItem
	var groups string
	dest := append(lead, &it.Contact, &it.Name, &groups, &it.Subscription, &it.PendingOut, &it.PendingIn, &it.PendingInStanza, &it.PreApproved)
	if err := sc.Scan(dest...); err != nil {
		return it, err
	}
	if groups != "" {
		it.Groups = strings.Split(groups, groupSep)
	}
	if len(it.PendingInStanza) == 0 {
		it.PendingInStanza = nil
	}
	return it, nil
}

// Roster implements storage.Rosters. The version rides on every item row
// (an uncorrelated subquery, evaluated once), so items and version come
// from one snapshot without a transaction. Only an empty roster needs a
// second look, inside a read transaction for the same reason.
func (s *Store) Roster(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	items, ver, err := readRoster(ctx, s.stRoster, owner)
	if err != nil || len(items) > 0 {
		return items, ver, err
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("read roster of %q: begin: %w", owner, err)
	}
	defer tx.Rollback()
	if items, ver, err = readRoster(ctx, tx.StmtContext(ctx, s.stRoster), owner); err != nil || len(items) > 0 {
		return items, ver, err
	}
	err = tx.StmtContext(ctx, s.stRosterVer).QueryRowContext(ctx, owner).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read roster version of %q: %w", owner, err)
	}
	return nil, ver, nil
}

func readRoster(ctx context.Context, st *sql.Stmt, owner string) ([]storage.RosterItem, int64, error) {
	rows, err := st.QueryContext(ctx, owner)
	if err != nil {
		return nil, 0, fmt.Errorf("read roster of %q: %w", owner, err)
	}
	defer rows.Close()
	var (
		items []storage.RosterItem
		ver   int64
	)
	for rows.Next() {
		it, err := scanItem(rows, &ver)
		if err != nil {
			return nil, 0, fmt.Errorf("read roster of %q: %w", owner, err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read roster of %q: %w", owner, err)
	}
	return items, ver, nil
}

// RosterItem implements storage.Rosters.
func (s *Store) RosterItem(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	it, err := scanItem(s.stRosterItem.QueryRowContext(ctx, owner, contact))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.RosterItem{}, fmt.Errorf("roster item %q of %q: %w", contact, owner, storage.ErrNotFound)
	}
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("roster item %q of %q: %w", contact, owner, err)
	}
	return it, nil
}

// bumpVersion increases the owner's roster version and returns it; an
// unknown owner yields ErrNotFound.
func bumpVersion(ctx context.Context, tx *sql.Tx, owner string) (int64, error) {
	var ver int64
	err := tx.QueryRowContext(ctx, `UPDATE users SET roster_version = roster_version + 1 WHERE jid = ? RETURNING roster_version`, owner).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
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
	groups := strings.Join(it.Groups, groupSep)
	var ver int64
	err := s.tx(ctx, "put roster item "+it.Contact+" of "+owner, func(tx *sql.Tx) error {
		var err error
		if ver, err = bumpVersion(ctx, tx, owner); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO roster_items (owner, contact, name, groups, subscription, pending_out, pending_in, pending_in_stanza, pre_approved)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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

// DeleteRosterItem implements storage.Rosters.
func (s *Store) DeleteRosterItem(ctx context.Context, owner, contact string) (int64, error) {
	var ver int64
	err := s.tx(ctx, "delete roster item "+contact+" of "+owner, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM roster_items WHERE owner = ? AND contact = ?`, owner, contact)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return storage.ErrNotFound
		}
		ver, err = bumpVersion(ctx, tx, owner)
		return err
	})
	if err != nil {
		return 0, err
	}
	return ver, nil
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
