// Package storagetest is the one test suite every storage backend passes:
// the same table-driven cases run against SQLite and PostgreSQL, so that the
// node behaves the same whichever database the operator configured.
//
// A backend's test calls [Run] with a function that returns a fresh, empty
// Store, and [RunMigrations] with a function that creates a fresh database
// it can open several times.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/node/storage"
)

// Run runs the repository suite. open must return a fresh, empty Store for
// each call; Run closes it.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Users", testUsers},
		{"InvalidArguments", testInvalid},
		{"Credentials", testCredentials},
		{"ListUsers", testListUsers},
		{"Roster", testRoster},
		{"RosterUnknownOwner", testRosterUnknownOwner},
		{"OfflineOrder", testOfflineOrder},
		{"OfflineQuota", testOfflineQuota},
		{"DeleteUserCascade", testDeleteUserCascade},
		{"Documents", testDocuments},
		{"DocumentLimits", testDocumentLimits},
		{"DocumentQuotaConcurrent", testDocumentQuotaConcurrent},
		{"ClusterNodes", testClusterNodes},
		{"StaleClusterNodes", testStaleClusterNodes},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CancelledContext", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// cred returns a distinct, valid credential for hash.
func cred(hash string, seed byte) storage.Credential {
	return storage.Credential{
		Hash:       hash,
		Salt:       []byte{seed, 1, 2, 3},
		Iterations: 4096 + int(seed),
		StoredKey:  bytes.Repeat([]byte{seed, 0xaa}, 16),
		ServerKey:  bytes.Repeat([]byte{seed, 0x55}, 16),
	}
}

func mustCreate(t *testing.T, s storage.Store, user string, creds ...storage.Credential) {
	t.Helper()
	if err := s.CreateUser(ctx(t), user, creds); err != nil {
		t.Fatalf("CreateUser(%q): %v", user, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

func testUsers(t *testing.T, s storage.Store) {
	const u = "juliet@capulet.lit"
	if ok, err := s.UserExists(ctx(t), u); err != nil || ok {
		t.Fatalf("UserExists before create = %v, %v; want false, nil", ok, err)
	}
	mustCreate(t, s, u, cred(storage.HashSHA256, 1))
	if ok, err := s.UserExists(ctx(t), u); err != nil || !ok {
		t.Fatalf("UserExists after create = %v, %v; want true, nil", ok, err)
	}
	wantErr(t, "CreateUser twice", s.CreateUser(ctx(t), u, nil), storage.ErrExists)
	// The failed second create must not have touched the credentials.
	if _, err := s.Credential(ctx(t), u, storage.HashSHA256); err != nil {
		t.Fatalf("Credential after failed re-create: %v", err)
	}
	// Addresses are compared byte for byte: preparing them is the caller's job.
	if ok, err := s.UserExists(ctx(t), "Juliet@capulet.lit"); err != nil || ok {
		t.Fatalf("UserExists(other case) = %v, %v; want false, nil", ok, err)
	}
	mustCreate(t, s, "nocreds@capulet.lit")
	wantErr(t, "DeleteUser unknown", s.DeleteUser(ctx(t), "romeo@montague.lit"), storage.ErrNotFound)
	if err := s.DeleteUser(ctx(t), u); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if ok, err := s.UserExists(ctx(t), u); err != nil || ok {
		t.Fatalf("UserExists after delete = %v, %v; want false, nil", ok, err)
	}
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testInvalid(t *testing.T, s storage.Store) {
	mustCreate(t, s, "a@example.org")
	good := cred(storage.HashSHA1, 1)
	noSalt := good
	noSalt.Salt = nil
	noIter := good
	noIter.Iterations = 0
	tests := []struct {
		name string
		call func() error
	}{
		{"user without domain", func() error { return s.CreateUser(ctx(t), "alice", nil) }},
		{"user without local part", func() error { return s.CreateUser(ctx(t), "@example.org", nil) }},
		{"full JID", func() error { return s.CreateUser(ctx(t), "alice@example.org/phone", nil) }},
		{"empty user", func() error { return s.CreateUser(ctx(t), "", nil) }},
		{"unknown hash", func() error {
			return s.CreateUser(ctx(t), "b@example.org", []storage.Credential{{Hash: "MD5", Salt: []byte{1}, Iterations: 1, StoredKey: []byte{1}, ServerKey: []byte{1}}})
		}},
		{"duplicate hash", func() error { return s.SetCredentials(ctx(t), "a@example.org", []storage.Credential{good, good}) }},
		{"no salt", func() error { return s.SetCredentials(ctx(t), "a@example.org", []storage.Credential{noSalt}) }},
		{"no iterations", func() error { return s.SetCredentials(ctx(t), "a@example.org", []storage.Credential{noIter}) }},
		{"roster item without contact", func() error {
			_, err := s.PutRosterItem(ctx(t), "a@example.org", storage.RosterItem{Subscription: storage.SubNone})
			return err
		}},
		{"unknown subscription", func() error {
			_, err := s.PutRosterItem(ctx(t), "a@example.org", storage.RosterItem{Contact: "b@example.org", Subscription: "all"})
			return err
		}},
		{"empty group name", func() error {
			_, err := s.PutRosterItem(ctx(t), "a@example.org", storage.RosterItem{Contact: "b@example.org", Subscription: storage.SubNone, Groups: []string{"ok", ""}})
			return err
		}},
		{"control character in group", func() error {
			_, err := s.PutRosterItem(ctx(t), "a@example.org", storage.RosterItem{Contact: "b@example.org", Subscription: storage.SubNone, Groups: []string{"a\x1fb"}})
			return err
		}},
		{"empty offline stanza", func() error { return s.StoreOffline(ctx(t), "a@example.org", nil, 0) }},
		{"empty document", func() error { return s.PutDocument(ctx(t), "a@example.org", storage.KindVCard, "", []byte{}) }},
		{"unknown document kind syntax", func() error { return s.PutDocument(ctx(t), "a@example.org", "v card", "", []byte("<x/>")) }},
		{"cluster node without hostname", func() error { return s.UpsertClusterNode(ctx(t), storage.ClusterNode{Password: "x", Port: 5277}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.call(), storage.ErrInvalid)
		})
	}
	if ok, _ := s.UserExists(ctx(t), "b@example.org"); ok {
		t.Error("a rejected CreateUser created the user")
	}
}

func testCredentials(t *testing.T, s storage.Store) {
	const u = "romeo@montague.lit"
	c1, c256, c512 := cred(storage.HashSHA1, 1), cred(storage.HashSHA256, 2), cred(storage.HashSHA512, 3)
	mustCreate(t, s, u, c1, c256)
	tests := []struct {
		hash string
		want storage.Credential
		err  error
	}{
		{storage.HashSHA1, c1, nil},
		{storage.HashSHA256, c256, nil},
		{storage.HashSHA512, storage.Credential{}, storage.ErrNotFound},
		{"SHA-3", storage.Credential{}, storage.ErrNotFound},
	}
	for _, tt := range tests {
		got, err := s.Credential(ctx(t), u, tt.hash)
		if tt.err != nil {
			wantErr(t, "Credential "+tt.hash, err, tt.err)
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("Credential(%s) = %+v, %v; want %+v", tt.hash, got, err, tt.want)
		}
	}
	_, err := s.Credential(ctx(t), "nobody@montague.lit", storage.HashSHA1)
	wantErr(t, "Credential of unknown user", err, storage.ErrNotFound)

	// SetCredentials replaces all: SHA-1 goes, SHA-512 arrives, SHA-256 changes.
	c256b := cred(storage.HashSHA256, 9)
	if err := s.SetCredentials(ctx(t), u, []storage.Credential{c256b, c512}); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	_, err = s.Credential(ctx(t), u, storage.HashSHA1)
	wantErr(t, "Credential SHA-1 after replace", err, storage.ErrNotFound)
	for _, want := range []storage.Credential{c256b, c512} {
		if got, err := s.Credential(ctx(t), u, want.Hash); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Credential(%s) after replace = %+v, %v; want %+v", want.Hash, got, err, want)
		}
	}
	wantErr(t, "SetCredentials unknown user", s.SetCredentials(ctx(t), "nobody@montague.lit", []storage.Credential{c1}), storage.ErrNotFound)
	// A rejected replacement keeps the old credentials: it is one transaction.
	bad := c1
	bad.Iterations = -1
	wantErr(t, "SetCredentials invalid", s.SetCredentials(ctx(t), u, []storage.Credential{c1, bad}), storage.ErrInvalid)
	if _, err := s.Credential(ctx(t), u, storage.HashSHA512); err != nil {
		t.Fatalf("Credential after rejected replace: %v", err)
	}
}

func testListUsers(t *testing.T, s storage.Store) {
	// "_svc" sorts first in byte order but after "carol" in most locales'
	// collations, which ignore punctuation: the order must be byte order.
	for _, u := range []string{"zoe@b.example", "bob@a.example", "alice@b.example", "carol@a.example", "dave@ab.example", "_svc@a.example"} {
		mustCreate(t, s, u)
	}
	tests := []struct {
		domain string
		want   []string
	}{
		{"", []string{"_svc@a.example", "alice@b.example", "bob@a.example", "carol@a.example", "dave@ab.example", "zoe@b.example"}},
		{"a.example", []string{"_svc@a.example", "bob@a.example", "carol@a.example"}},
		{"b.example", []string{"alice@b.example", "zoe@b.example"}},
		{"c.example", nil},
	}
	for _, tt := range tests {
		got, err := s.ListUsers(ctx(t), tt.domain)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ListUsers(%q) = %q, %v; want %q", tt.domain, got, err, tt.want)
		}
		n, err := s.CountUsers(ctx(t), tt.domain)
		if err != nil || n != len(tt.want) {
			t.Errorf("CountUsers(%q) = %d, %v; want %d", tt.domain, n, err, len(tt.want))
		}
	}
}

func testRoster(t *testing.T, s storage.Store) {
	const owner = "juliet@capulet.lit"
	mustCreate(t, s, owner)
	items, ver, err := s.Roster(ctx(t), owner)
	if err != nil || len(items) != 0 || ver != 0 {
		t.Fatalf("Roster of new user = %v, %d, %v; want empty, 0", items, ver, err)
	}
	sub := []byte("<presence from='nurse@capulet.lit' to='juliet@capulet.lit' type='subscribe'/>")
	steps := []struct {
		name string
		put  storage.RosterItem
	}{
		{"add romeo", storage.RosterItem{Contact: "romeo@montague.lit", Name: "Romeo", Groups: []string{"Friends", "Lovers"}, Subscription: storage.SubNone, PendingOut: true}},
		{"add nurse pending in", storage.RosterItem{Contact: "nurse@capulet.lit", Subscription: storage.SubNone, PendingIn: true, PendingInStanza: sub}},
		{"add benvolio pre-approved, unicode group", storage.RosterItem{Contact: "benvolio@montague.lit", Groups: []string{"Montagues ♥", "a,b\"c", "tab\there", " spaced "}, Subscription: storage.SubFrom, PreApproved: true}},
		{"romeo answers", storage.RosterItem{Contact: "romeo@montague.lit", Name: "Romeo M.", Groups: []string{"Lovers"}, Subscription: storage.SubBoth}},
		{"nurse approved", storage.RosterItem{Contact: "nurse@capulet.lit", Name: "Nurse", Subscription: storage.SubFrom}},
	}
	want := map[string]storage.RosterItem{}
	var last int64
	for _, st := range steps {
		ver, err := s.PutRosterItem(ctx(t), owner, st.put)
		if err != nil {
			t.Fatalf("%s: PutRosterItem: %v", st.name, err)
		}
		if ver <= last {
			t.Fatalf("%s: version %d did not increase from %d", st.name, ver, last)
		}
		last = ver
		want[st.put.Contact] = st.put
		got, err := s.RosterItem(ctx(t), owner, st.put.Contact)
		if err != nil || !reflect.DeepEqual(got, st.put) {
			t.Fatalf("%s: RosterItem = %+v, %v; want %+v", st.name, got, err, st.put)
		}
	}
	items, ver, err = s.Roster(ctx(t), owner)
	if err != nil || ver != last {
		t.Fatalf("Roster = version %d, %v; want %d", ver, err, last)
	}
	wantItems := []storage.RosterItem{want["benvolio@montague.lit"], want["nurse@capulet.lit"], want["romeo@montague.lit"]}
	if !reflect.DeepEqual(items, wantItems) {
		t.Fatalf("Roster items =\n%+v\nwant (sorted by contact)\n%+v", items, wantItems)
	}
	if v, err := s.RosterVersion(ctx(t), owner); err != nil || v != last {
		t.Fatalf("RosterVersion = %d, %v; want %d", v, err, last)
	}

	_, err = s.RosterItem(ctx(t), owner, "tybalt@capulet.lit")
	wantErr(t, "RosterItem unknown contact", err, storage.ErrNotFound)
	_, err = s.DeleteRosterItem(ctx(t), owner, "tybalt@capulet.lit")
	wantErr(t, "DeleteRosterItem unknown contact", err, storage.ErrNotFound)
	if v, _ := s.RosterVersion(ctx(t), owner); v != last {
		t.Fatalf("a failed delete changed the version from %d to %d", last, v)
	}
	for _, c := range []string{"nurse@capulet.lit", "romeo@montague.lit", "benvolio@montague.lit"} {
		ver, err := s.DeleteRosterItem(ctx(t), owner, c)
		if err != nil || ver <= last {
			t.Fatalf("DeleteRosterItem(%s) = %d, %v; want a version above %d", c, ver, err, last)
		}
		last = ver
	}
	// An emptied roster keeps its version: a client holding an older one
	// must still be told about the removals.
	items, ver, err = s.Roster(ctx(t), owner)
	if err != nil || len(items) != 0 || ver != last {
		t.Fatalf("emptied Roster = %v, %d, %v; want empty, %d", items, ver, err, last)
	}
}

func testRosterUnknownOwner(t *testing.T, s storage.Store) {
	const owner = "ghost@example.org"
	items, ver, err := s.Roster(ctx(t), owner)
	if err != nil || len(items) != 0 || ver != 0 {
		t.Fatalf("Roster of unknown owner = %v, %d, %v; want empty, 0, nil", items, ver, err)
	}
	if v, err := s.RosterVersion(ctx(t), owner); err != nil || v != 0 {
		t.Fatalf("RosterVersion of unknown owner = %d, %v; want 0, nil", v, err)
	}
	_, err = s.PutRosterItem(ctx(t), owner, storage.RosterItem{Contact: "a@example.org", Subscription: storage.SubNone})
	wantErr(t, "PutRosterItem unknown owner", err, storage.ErrNotFound)
	wantErr(t, "StoreOffline unknown owner", s.StoreOffline(ctx(t), owner, []byte("<message/>"), 10), storage.ErrNotFound)
}

func testOfflineOrder(t *testing.T, s storage.Store) {
	const u, other = "juliet@capulet.lit", "romeo@montague.lit"
	mustCreate(t, s, u)
	mustCreate(t, s, other)
	if n, err := s.CountOffline(ctx(t), u); err != nil || n != 0 {
		t.Fatalf("CountOffline empty = %d, %v", n, err)
	}
	before := time.Now().Add(-time.Minute)
	for i := range 10 {
		if err := s.StoreOffline(ctx(t), u, fmt.Appendf(nil, "<message id='%d'/>", i), 0); err != nil {
			t.Fatalf("StoreOffline %d: %v", i, err)
		}
		// Interleave another owner's messages: ids are global, order per owner must hold.
		if err := s.StoreOffline(ctx(t), other, []byte("<message id='other'/>"), 0); err != nil {
			t.Fatalf("StoreOffline other: %v", err)
		}
	}
	msgs, err := s.OfflineMessages(ctx(t), u)
	if err != nil || len(msgs) != 10 {
		t.Fatalf("OfflineMessages = %d messages, %v; want 10", len(msgs), err)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("<message id='%d'/>", i); string(m.Stanza) != want {
			t.Errorf("message %d = %s, want %s", i, m.Stanza, want)
		}
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Errorf("message %d has id %d, not above %d", i, m.ID, msgs[i-1].ID)
		}
		if m.Stored.Before(before) || m.Stored.After(time.Now().Add(time.Minute)) {
			t.Errorf("message %d stored at %v, not about now", i, m.Stored)
		}
	}
	// Delete what was delivered; a message stored since keeps its place.
	if err := s.StoreOffline(ctx(t), u, []byte("<message id='late'/>"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOffline(ctx(t), u, msgs[4].ID); err != nil {
		t.Fatalf("DeleteOffline: %v", err)
	}
	rest, err := s.OfflineMessages(ctx(t), u)
	if err != nil || len(rest) != 6 || rest[0].ID != msgs[5].ID || string(rest[5].Stanza) != "<message id='late'/>" {
		t.Fatalf("after DeleteOffline up to %d: %d messages (%v), first id %v", msgs[4].ID, len(rest), err, rest)
	}
	if n, err := s.CountOffline(ctx(t), u); err != nil || n != 6 {
		t.Fatalf("CountOffline = %d, %v; want 6", n, err)
	}
	if n, err := s.CountOffline(ctx(t), other); err != nil || n != 10 {
		t.Fatalf("CountOffline(other) = %d, %v; want 10 (untouched)", n, err)
	}
	if err := s.DeleteOffline(ctx(t), u, rest[5].ID); err != nil {
		t.Fatal(err)
	}
	if msgs, err := s.OfflineMessages(ctx(t), u); err != nil || len(msgs) != 0 {
		t.Fatalf("OfflineMessages after deleting all = %d, %v", len(msgs), err)
	}
}

func testOfflineQuota(t *testing.T, s storage.Store) {
	const u = "juliet@capulet.lit"
	mustCreate(t, s, u)
	const limit = 3
	tests := []struct {
		name  string
		limit int
		err   error
	}{
		{"first", limit, nil},
		{"second", limit, nil},
		{"third", limit, nil},
		{"fourth over quota", limit, storage.ErrQuotaExceeded},
		{"fifth over quota", limit, storage.ErrQuotaExceeded},
		{"lower limit", 1, storage.ErrQuotaExceeded},
		{"no limit", 0, nil},
		{"higher limit", 5, nil},
		{"higher limit full", 5, storage.ErrQuotaExceeded},
	}
	want := 0
	for _, tt := range tests {
		err := s.StoreOffline(ctx(t), u, []byte("<message/>"), tt.limit)
		if tt.err == nil && err != nil {
			t.Fatalf("%s: StoreOffline: %v", tt.name, err)
		}
		if tt.err != nil {
			wantErr(t, tt.name, err, tt.err)
		} else {
			want++
		}
		if n, err := s.CountOffline(ctx(t), u); err != nil || n != want {
			t.Fatalf("%s: CountOffline = %d, %v; want %d", tt.name, n, err, want)
		}
	}
}

func testDeleteUserCascade(t *testing.T, s storage.Store) {
	const a, b = "juliet@capulet.lit", "romeo@montague.lit"
	mustCreate(t, s, a, cred(storage.HashSHA256, 1))
	mustCreate(t, s, b, cred(storage.HashSHA256, 2))
	item := func(c string) storage.RosterItem {
		return storage.RosterItem{Contact: c, Subscription: storage.SubBoth, Groups: []string{"g"}}
	}
	for _, step := range []func() error{
		func() error { _, err := s.PutRosterItem(ctx(t), a, item(b)); return err },
		func() error { _, err := s.PutRosterItem(ctx(t), a, item("nurse@capulet.lit")); return err },
		func() error { _, err := s.PutRosterItem(ctx(t), b, item(a)); return err },
		func() error { return s.StoreOffline(ctx(t), a, []byte("<message/>"), 0) },
		func() error { return s.StoreOffline(ctx(t), b, []byte("<message/>"), 0) },
		func() error {
			return s.PutDocument(ctx(t), a, storage.KindVCard, "", []byte("<vCard xmlns='vcard-temp'/>"))
		},
		func() error { return s.PutDocument(ctx(t), a, storage.KindPrivate, "{p}q", []byte("<q xmlns='p'/>")) },
		func() error {
			return s.PutDocument(ctx(t), b, storage.KindVCard, "", []byte("<vCard xmlns='vcard-temp'/>"))
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	bItems, bVer, err := s.Roster(ctx(t), b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx(t), a); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = s.Credential(ctx(t), a, storage.HashSHA256)
	wantErr(t, "Credential of deleted user", err, storage.ErrNotFound)
	if items, ver, err := s.Roster(ctx(t), a); err != nil || len(items) != 0 || ver != 0 {
		t.Errorf("Roster of deleted user = %v, %d, %v; want empty, 0", items, ver, err)
	}
	if n, err := s.CountOffline(ctx(t), a); err != nil || n != 0 {
		t.Errorf("CountOffline of deleted user = %d, %v; want 0", n, err)
	}
	// The other user's roster still lists the deleted contact, unchanged.
	if items, ver, err := s.Roster(ctx(t), b); err != nil || ver != bVer || !reflect.DeepEqual(items, bItems) {
		t.Errorf("Roster of other user = %v, %d, %v; want unchanged %v, %d", items, ver, err, bItems, bVer)
	}
	if n, err := s.CountOffline(ctx(t), b); err != nil || n != 1 {
		t.Errorf("CountOffline of other user = %d, %v; want 1", n, err)
	}
	for _, k := range [][2]string{{storage.KindVCard, ""}, {storage.KindPrivate, "{p}q"}} {
		if _, err := s.Document(ctx(t), a, k[0], k[1]); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s document of deleted user: %v, want ErrNotFound", k[0], err)
		}
	}
	if _, err := s.Document(ctx(t), b, storage.KindVCard, ""); err != nil {
		t.Errorf("vCard of other user after delete: %v", err)
	}
	// Re-creating the account starts clean.
	mustCreate(t, s, a)
	if items, _, err := s.Roster(ctx(t), a); err != nil || len(items) != 0 {
		t.Errorf("Roster of re-created user = %v, %v; want empty", items, err)
	}
	if _, err := s.Document(ctx(t), a, storage.KindVCard, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("vCard of re-created user: %v, want ErrNotFound", err)
	}
}

func testClusterNodes(t *testing.T, s storage.Store) {
	if nodes, err := s.ClusterNodes(ctx(t), 0); err != nil || len(nodes) != 0 {
		t.Fatalf("ClusterNodes empty = %v, %v", nodes, err)
	}
	n2 := storage.ClusterNode{Hostname: "node2.example.org", Password: "p2", Port: 5277, CPUUsage: 12.5, MemUsage: 40}
	n1 := storage.ClusterNode{Hostname: "node1.example.org", Secondary: "10.0.0.1", Password: "p1", Port: 5278, CPUUsage: 1, MemUsage: 2,
		LastUpdate: time.Unix(0, 0)} // ignored: the database stamps the row
	for _, n := range []storage.ClusterNode{n2, n1} {
		if err := s.UpsertClusterNode(ctx(t), n); err != nil {
			t.Fatalf("UpsertClusterNode(%s): %v", n.Hostname, err)
		}
	}
	n1.Password, n1.CPUUsage = "p1-new", 99.5
	if err := s.UpsertClusterNode(ctx(t), n1); err != nil {
		t.Fatalf("UpsertClusterNode again: %v", err)
	}
	for _, fresh := range []time.Duration{0, time.Hour} {
		nodes, err := s.ClusterNodes(ctx(t), fresh)
		if err != nil || len(nodes) != 2 {
			t.Fatalf("ClusterNodes(%v) = %v, %v; want 2", fresh, nodes, err)
		}
		for i, want := range []storage.ClusterNode{n1, n2} {
			got := nodes[i]
			if d := time.Since(got.LastUpdate).Abs(); d > time.Minute {
				t.Errorf("%s: LastUpdate %v is %v from now", got.Hostname, got.LastUpdate, d)
			}
			got.LastUpdate, want.LastUpdate = time.Time{}, time.Time{}
			if got != want {
				t.Errorf("ClusterNodes[%d] = %+v, want %+v", i, got, want)
			}
		}
	}
	if err := s.DeleteClusterNode(ctx(t), n1.Hostname); err != nil {
		t.Fatalf("DeleteClusterNode: %v", err)
	}
	if err := s.DeleteClusterNode(ctx(t), n1.Hostname); err != nil {
		t.Fatalf("DeleteClusterNode of a missing row: %v", err)
	}
	if nodes, err := s.ClusterNodes(ctx(t), 0); err != nil || len(nodes) != 1 || nodes[0].Hostname != n2.Hostname {
		t.Fatalf("ClusterNodes after delete = %v, %v; want only %s", nodes, err, n2.Hostname)
	}
}

// testStaleClusterNodes waits for the database's clock, not for another
// goroutine: row ages come from the database, which the test cannot set.
func testStaleClusterNodes(t *testing.T, s storage.Store) {
	const age = 300 * time.Millisecond
	old := storage.ClusterNode{Hostname: "old.example.org", Password: "x", Port: 5277}
	if err := s.UpsertClusterNode(ctx(t), old); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteStaleClusterNodes(ctx(t), time.Hour); err != nil || n != 0 {
		t.Fatalf("DeleteStaleClusterNodes(1h) = %d, %v; want 0", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		nodes, err := s.ClusterNodes(ctx(t), age)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("row still fresh within %v after 10 s: %+v", age, nodes)
		}
		time.Sleep(age / 10)
	}
	// Older rows are ignored but stay until someone expires them.
	if nodes, err := s.ClusterNodes(ctx(t), 0); err != nil || len(nodes) != 1 {
		t.Fatalf("ClusterNodes(all) = %v, %v; want the stale row", nodes, err)
	}
	fresh := storage.ClusterNode{Hostname: "fresh.example.org", Password: "y", Port: 5277}
	if err := s.UpsertClusterNode(ctx(t), fresh); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteStaleClusterNodes(ctx(t), age)
	if err != nil || n != 1 {
		t.Fatalf("DeleteStaleClusterNodes(%v) = %d, %v; want 1", age, n, err)
	}
	nodes, err := s.ClusterNodes(ctx(t), 0)
	if err != nil || len(nodes) != 1 || nodes[0].Hostname != fresh.Hostname {
		t.Fatalf("ClusterNodes after expiry = %+v, %v; want only %s", nodes, err, fresh.Hostname)
	}
}

// testConcurrentWriters puts roster items and stores offline messages from
// many goroutines at once: every call must succeed (no SQLITE_BUSY, no lost
// update), versions must count every change, and the quota must hold.
func testConcurrentWriters(t *testing.T, s storage.Store) {
	const (
		owners  = 4
		workers = 16
		perWork = 20
		quota   = 50 // below the 80 messages each owner receives, so it bites mid-run
	)
	owner := func(i int) string { return fmt.Sprintf("user%d@example.org", i) }
	for i := range owners {
		mustCreate(t, s, owner(i), cred(storage.HashSHA256, byte(i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWork*3)
	var quotaHits sync.Map
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWork {
				o := owner((w + i) % owners)
				c := fmt.Sprintf("contact-%d-%d@example.net", w, i)
				if _, err := s.PutRosterItem(ctx(t), o, storage.RosterItem{Contact: c, Subscription: storage.SubTo}); err != nil {
					errs <- fmt.Errorf("put roster item: %w", err)
				}
				err := s.StoreOffline(ctx(t), o, fmt.Appendf(nil, "<message from='%s'/>", c), quota)
				if errors.Is(err, storage.ErrQuotaExceeded) {
					quotaHits.Store(o, true)
				} else if err != nil {
					errs <- fmt.Errorf("store offline: %w", err)
				}
				// Readers run beside the writers, as logins do.
				if _, err := s.Credential(ctx(t), o, storage.HashSHA256); err != nil {
					errs <- fmt.Errorf("read credential: %w", err)
				}
				if _, _, err := s.Roster(ctx(t), o); err != nil {
					errs <- fmt.Errorf("read roster: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	total := 0
	for i := range owners {
		items, ver, err := s.Roster(ctx(t), owner(i))
		if err != nil {
			t.Fatal(err)
		}
		total += len(items)
		// Each item was put once, so the version counts exactly the puts.
		if ver != int64(len(items)) {
			t.Errorf("%s: roster version %d after %d puts", owner(i), ver, len(items))
		}
		n, err := s.CountOffline(ctx(t), owner(i))
		if err != nil {
			t.Fatal(err)
		}
		want := workers * perWork / owners
		if want > quota {
			want = quota
		}
		if n != want {
			t.Errorf("%s: %d offline messages, want %d (quota %d)", owner(i), n, want, quota)
		}
	}
	for i := range owners {
		if _, ok := quotaHits.Load(owner(i)); !ok {
			t.Errorf("%s: quota never reported", owner(i))
		}
	}
	if total != workers*perWork {
		t.Errorf("%d roster items in all, want %d", total, workers*perWork)
	}
}

func testCancelled(t *testing.T, s storage.Store) {
	mustCreate(t, s, "a@example.org")
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := s.PutRosterItem(c, "a@example.org", storage.RosterItem{Contact: "b@example.org", Subscription: storage.SubNone}); !errors.Is(err, context.Canceled) {
		t.Errorf("PutRosterItem with cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.Credential(c, "a@example.org", storage.HashSHA1); !errors.Is(err, context.Canceled) {
		t.Errorf("Credential with cancelled context: %v, want context.Canceled", err)
	}
	if v, err := s.RosterVersion(ctx(t), "a@example.org"); err != nil || v != 0 {
		t.Errorf("RosterVersion after cancelled put = %d, %v; want 0", v, err)
	}
}
