// Package storage holds what the node keeps on disk: accounts and their SCRAM
// credentials, rosters, offline messages, per-account XML documents (private
// XML storage, vCards) and the cluster discovery table. It
// defines the record types, the repository interfaces the rest of the node
// consumes and the sentinel errors every backend returns, so that callers can
// test for "not found" without knowing which database is underneath.
//
// Addresses are bare JID strings ("local@domain") that the caller has already
// prepared (RFC 7622); the storage compares them byte for byte and never
// parses them beyond splitting off the domain of an account.
//
// The backends live below: [github.com/starling-xmpp/starling/node/storage/sqlite]
// (the embedded default) and [github.com/starling-xmpp/starling/node/storage/postgres];
// [github.com/starling-xmpp/starling/node/storage/backend] opens one of them
// from the configured data source URI. Both apply their own versioned schema
// migrations when opened.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Backends wrap them with what was being done, so test with
// [errors.Is].
var (
	// ErrNotFound reports that the user, roster item or row does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists reports that a user being created already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrQuotaExceeded reports that an owner's offline store is full.
	ErrQuotaExceeded = errors.New("storage: quota exceeded")
	// ErrSchemaTooNew reports that the database was migrated by a newer
	// binary than this one; running against it could corrupt data that the
	// newer schema expects, so the backend refuses to open.
	ErrSchemaTooNew = errors.New("storage: database schema is newer than this binary supports")
	// ErrInvalid reports an argument the storage cannot accept (an address
	// that is not local@domain, an unknown hash or subscription state).
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrTooLarge reports a document over MaxDocumentBytes.
	ErrTooLarge = errors.New("storage: document too large")
)

// SCRAM hash names accepted in [Credential.Hash], as named by the SASL
// mechanism (SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512).
const (
	HashSHA1   = "SHA-1"
	HashSHA256 = "SHA-256"
	HashSHA512 = "SHA-512"
)

// Credential is one SCRAM credential of a user (RFC 5802 §3): the server
// keeps the salted keys, never the password.
type Credential struct {
	Hash       string // HashSHA1, HashSHA256 or HashSHA512
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Users is the account repository.
type Users interface {
	// CreateUser creates the account with its credentials (possibly none).
	// It returns ErrExists if the account exists.
	CreateUser(ctx context.Context, user string, creds []Credential) error
	// SetCredentials replaces all credentials of the account. It returns
	// ErrNotFound if the account does not exist.
	SetCredentials(ctx context.Context, user string, creds []Credential) error
	// DeleteUser deletes the account with its credentials, its roster, its
	// offline messages and its documents in one transaction. Entries for the user in other
	// users' rosters are kept: they belong to those users. It returns
	// ErrNotFound if the account does not exist.
	DeleteUser(ctx context.Context, user string) error
	// Credential returns the user's credential for the hash. It returns
	// ErrNotFound if the user or that credential does not exist.
	Credential(ctx context.Context, user, hash string) (Credential, error)
	// UserExists reports whether the account exists.
	UserExists(ctx context.Context, user string) (bool, error)
	// ListUsers returns the accounts of domain, sorted; "" lists all domains.
	ListUsers(ctx context.Context, domain string) ([]string, error)
	// CountUsers counts the accounts of domain; "" counts all domains.
	CountUsers(ctx context.Context, domain string) (int, error)
}

// Subscription states of a roster item (RFC 6121 §2.1.2.5).
const (
	SubNone = "none"
	SubTo   = "to"
	SubFrom = "from"
	SubBoth = "both"
)

// RosterItem is one contact in a user's roster (RFC 6121 §2.1).
type RosterItem struct {
	Contact         string // bare JID
	Name            string
	Groups          []string
	Subscription    string // SubNone, SubTo, SubFrom or SubBoth
	PendingOut      bool   // ask='subscribe'
	PendingIn       bool   // the contact asked to subscribe and the user has not answered
	PendingInStanza []byte // the stored <presence type='subscribe'/> to redeliver at login (RFC 6121 §3.1.3)
	PreApproved     bool
}

// Rosters is the roster repository. Every change of an owner's roster
// increases that owner's roster version (RFC 6121 §2.6), which starts at 0.
// The owner must be an existing account: writes for an unknown owner return
// ErrNotFound.
type Rosters interface {
	// Roster returns the owner's items sorted by contact, and the roster
	// version. An unknown owner has an empty roster at version 0.
	Roster(ctx context.Context, owner string) (items []RosterItem, ver int64, err error)
	// RosterItem returns one item, or ErrNotFound.
	RosterItem(ctx context.Context, owner, contact string) (RosterItem, error)
	// PutRosterItem inserts or replaces the item and returns the new version.
	PutRosterItem(ctx context.Context, owner string, it RosterItem) (ver int64, err error)
	// DeleteRosterItem removes the item and returns the new version, or
	// ErrNotFound if there was no such item (the version is then unchanged).
	DeleteRosterItem(ctx context.Context, owner, contact string) (ver int64, err error)
	// RosterVersion returns the owner's roster version; 0 for a roster that
	// never changed or an unknown owner.
	RosterVersion(ctx context.Context, owner string) (int64, error)
}

// OfflineMessage is a stanza kept for a user who was offline (XEP-0160).
type OfflineMessage struct {
	ID     int64 // increases with every stored message; order of storage
	Stanza []byte
	Stored time.Time
}

// Offline is the offline message repository.
type Offline interface {
	// StoreOffline appends the stanza to the owner's store. It returns
	// ErrQuotaExceeded when the owner already has limit or more messages
	// (limit <= 0 means no limit), and ErrNotFound for an unknown owner.
	StoreOffline(ctx context.Context, owner string, stanza []byte, limit int) error
	// OfflineMessages returns the owner's messages, oldest first.
	OfflineMessages(ctx context.Context, owner string) ([]OfflineMessage, error)
	// DeleteOffline deletes the owner's messages with ID <= upToID. Call it
	// once delivery was written, so that nothing is lost; messages stored
	// after the ones delivered keep their place.
	DeleteOffline(ctx context.Context, owner string, upToID int64) error
	// CountOffline counts the owner's messages.
	CountOffline(ctx context.Context, owner string) (int, error)
}

// ClusterNode is one row of the cluster discovery table (DESIGN §3; Tigase's
// tig_cluster_nodes).
type ClusterNode struct {
	Hostname   string
	Secondary  string
	Password   string
	Port       int
	LastUpdate time.Time
	CPUUsage   float64
	MemUsage   float64
}

// ClusterNodes is the cluster discovery repository. Times are the
// database's clock, so that nodes whose clocks disagree still agree on
// which rows are fresh.
type ClusterNodes interface {
	// UpsertClusterNode inserts or replaces the node's row; LastUpdate is
	// set to the database's now and n.LastUpdate is ignored.
	UpsertClusterNode(ctx context.Context, n ClusterNode) error
	// ClusterNodes returns the rows updated within freshWithin of now,
	// sorted by hostname; freshWithin <= 0 returns every row.
	ClusterNodes(ctx context.Context, freshWithin time.Duration) ([]ClusterNode, error)
	// DeleteStaleClusterNodes deletes rows not updated within olderThan and
	// returns how many it deleted.
	DeleteStaleClusterNodes(ctx context.Context, olderThan time.Duration) (int, error)
	// DeleteClusterNode deletes the node's row. Deleting a row that is not
	// there is not an error: a clean shutdown must not fail because a peer
	// already expired the row.
	DeleteClusterNode(ctx context.Context, hostname string) error
}

// Document kinds used by the node's features. A kind groups one feature's
// documents so that their quotas are counted apart.
const (
	// KindPrivate holds XEP-0049 private XML; the key is the stored
	// element's "{namespace}name".
	KindPrivate = "private"
	// KindVCard holds the XEP-0054 vCard of the account; the key is "".
	KindVCard = "vcard"
)

// Document limits. Both bound what one client can make the server keep:
// at most MaxDocumentsPerKind × MaxDocumentBytes per account and kind.
const (
	// MaxDocumentBytes is the largest document PutDocument accepts. 64 KiB
	// holds a vCard with a typical avatar (XEP-0153) and any bookmark list
	// a person keeps by hand.
	MaxDocumentBytes = 64 << 10
	// MaxDocumentsPerKind is how many documents of one kind an account may
	// hold; a PutDocument that would add one more returns ErrQuotaExceeded.
	MaxDocumentsPerKind = 128
	// MaxDocumentKeyBytes bounds a key (a namespace URI and a name).
	MaxDocumentKeyBytes = 1024
)

// Documents is the repository of per-account XML documents: opaque bytes
// the server returns as they were stored, addressed by owner, kind and key.
// They are deleted with the account.
type Documents interface {
	// Document returns the stored bytes, or ErrNotFound if the owner has no
	// such document (or does not exist).
	Document(ctx context.Context, owner, kind, key string) ([]byte, error)
	// PutDocument inserts or replaces the document. It returns ErrNotFound
	// for an unknown owner, ErrTooLarge for a document over
	// MaxDocumentBytes, ErrQuotaExceeded when the owner already holds
	// MaxDocumentsPerKind documents of the kind and key is a new one, and
	// ErrInvalid for an empty document or a malformed kind or key.
	PutDocument(ctx context.Context, owner, kind, key string, xml []byte) error
	// DeleteDocument deletes the document. Deleting a document that is not
	// there is not an error: the caller wanted it gone, and it is.
	DeleteDocument(ctx context.Context, owner, kind, key string) error
}

// Store is everything the node keeps, on one database.
type Store interface {
	Users
	Rosters
	Offline
	Documents
	ClusterNodes
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database; the Store is unusable afterwards.
	Close() error
}

// SplitUser returns the domain of a bare JID "local@domain". Backends store
// it beside the account so that listing a domain's users is an index scan.
// It checks only the shape the storage relies on; preparing the address is
// the caller's job.
func SplitUser(user string) (domain string, err error) {
	local, domain, ok := strings.Cut(user, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "@/") {
		return "", fmt.Errorf("%w: user %q is not a bare JID local@domain", ErrInvalid, user)
	}
	return domain, nil
}

// CheckCredentials validates credentials before they are written: a known
// hash, at most one credential per hash, positive iterations and non-empty
// salt and keys.
func CheckCredentials(creds []Credential) error {
	seen := make(map[string]bool, len(creds))
	for _, c := range creds {
		switch c.Hash {
		case HashSHA1, HashSHA256, HashSHA512:
		default:
			return fmt.Errorf("%w: unknown credential hash %q (want %s, %s or %s)", ErrInvalid, c.Hash, HashSHA1, HashSHA256, HashSHA512)
		}
		if seen[c.Hash] {
			return fmt.Errorf("%w: two credentials for hash %s", ErrInvalid, c.Hash)
		}
		seen[c.Hash] = true
		if c.Iterations <= 0 {
			return fmt.Errorf("%w: credential %s has %d iterations", ErrInvalid, c.Hash, c.Iterations)
		}
		if len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0 {
			return fmt.Errorf("%w: credential %s lacks salt, stored key or server key", ErrInvalid, c.Hash)
		}
	}
	return nil
}

// CheckRosterItem validates an item before it is written.
func CheckRosterItem(it RosterItem) error {
	if it.Contact == "" {
		return fmt.Errorf("%w: roster item without contact", ErrInvalid)
	}
	switch it.Subscription {
	case SubNone, SubTo, SubFrom, SubBoth:
	default:
		return fmt.Errorf("%w: roster item %q has subscription %q (want none, to, from or both)", ErrInvalid, it.Contact, it.Subscription)
	}
	for _, g := range it.Groups {
		// RFC 6121 §2.3.3 forbids empty group names; control characters
		// other than tab and newlines cannot travel in XML 1.0, so a name
		// with one did not come from a client.
		if g == "" || strings.ContainsFunc(g, isXMLForbidden) {
			return fmt.Errorf("%w: roster item %q has group %q: empty or with a control character", ErrInvalid, it.Contact, g)
		}
	}
	return nil
}

// NormalizeRosterItem returns it with empty Groups and PendingInStanza set
// to nil, the form backends return, so that what is read back equals what
// was written.
func NormalizeRosterItem(it RosterItem) RosterItem {
	if len(it.Groups) == 0 {
		it.Groups = nil
	}
	if len(it.PendingInStanza) == 0 {
		it.PendingInStanza = nil
	}
	return it
}

// isXMLForbidden reports whether r is a C0 control character that XML 1.0
// cannot carry.
func isXMLForbidden(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' && r != '\r'
}

// CheckDocument validates a document before it is written: a kind of 1 to
// 32 lower-case ASCII letters, digits or '-', a key of valid UTF-8 without
// NUL of at most MaxDocumentKeyBytes, and a non-empty document of at most
// MaxDocumentBytes (ErrTooLarge).
func CheckDocument(kind, key string, xml []byte) error {
	if err := CheckDocumentKey(kind, key); err != nil {
		return err
	}
	if len(xml) == 0 {
		return fmt.Errorf("%w: empty %s document %q", ErrInvalid, kind, key)
	}
	if len(xml) > MaxDocumentBytes {
		return fmt.Errorf("%w: %s document %q is %d bytes, limit %d", ErrTooLarge, kind, key, len(xml), MaxDocumentBytes)
	}
	return nil
}

// CheckDocumentKey validates the kind and key of a document (see
// CheckDocument).
func CheckDocumentKey(kind, key string) error {
	if kind == "" || len(kind) > 32 || strings.ContainsFunc(kind, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) {
		return fmt.Errorf("%w: document kind %q is not 1 to 32 of a-z, 0-9, '-'", ErrInvalid, kind)
	}
	// PostgreSQL text cannot hold NUL or invalid UTF-8; XML names and
	// namespaces never contain either, so such a key did not come from XML.
	if len(key) > MaxDocumentKeyBytes || !utf8.ValidString(key) || strings.ContainsRune(key, 0) {
		return fmt.Errorf("%w: %s document key of %d bytes: longer than %d, invalid UTF-8 or with NUL", ErrInvalid, kind, len(key), MaxDocumentKeyBytes)
	}
	return nil
}
