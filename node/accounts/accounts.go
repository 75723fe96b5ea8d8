// Package accounts manages user accounts on top of the storage: it turns passwords into SCRAM
// credentials (salt, iterations, StoredKey, ServerKey for every hash) so that no caller ever stores a
// password, and looks credentials up for SASL. The CLI, the admin ad-hoc commands, in-band registration
// and the client listener all go through it.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/sasl"
)

// Store is the part of the storage accounts need.
type Store interface {
	CreateUser(ctx context.Context, user string, creds []storage.Credential) error
	SetCredentials(ctx context.Context, user string, creds []storage.Credential) error
	DeleteUser(ctx context.Context, user string) error
	Credential(ctx context.Context, user, hash string) (storage.Credential, error)
	UserExists(ctx context.Context, user string) (bool, error)
	ListUsers(ctx context.Context, domain string) ([]string, error)
	CountUsers(ctx context.Context, domain string) (int, error)
}

// DefaultIterations is the PBKDF2 iteration count for new credentials (RFC 7677 asks for at least 4096).
const DefaultIterations = 4096

// Accounts creates, changes and checks accounts.
type Accounts struct {
	store      Store
	iterations int

	mu        sync.Mutex
	onDeleted []func(bare string)
}

// New returns Accounts over store; iterations <= 0 means DefaultIterations.
func New(store Store, iterations int) *Accounts {
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	return &Accounts{store: store, iterations: iterations}
}

// ErrExists and ErrNotFound are returned for an account that exists or does not.
var (
	ErrExists   = storage.ErrExists
	ErrNotFound = storage.ErrNotFound
)

// ParseAccount checks that s is a bare JID with a localpart and returns its canonical form.
func ParseAccount(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("account %q: %w", s, err)
	}
	if j.Local() == "" || j.Resource() != "" {
		return jid.JID{}, fmt.Errorf("account %q: want a bare JID user@domain", s)
	}
	return j, nil
}

func (a *Accounts) credentials(password string) ([]storage.Credential, error) {
	if password == "" {
		return nil, errors.New("empty password")
	}
	cs, err := sasl.NewCredentials(password, a.iterations)
	if err != nil {
		return nil, fmt.Errorf("derive credentials: %w", err)
	}
	out := make([]storage.Credential, len(cs))
	for i, c := range cs {
		out[i] = storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	return out, nil
}

// Create creates an account with a password.
func (a *Accounts) Create(ctx context.Context, account jid.JID, password string) error {
	creds, err := a.credentials(password)
	if err != nil {
		return fmt.Errorf("create %s: %w", account, err)
	}
	if err := a.store.CreateUser(ctx, account.Bare().String(), creds); err != nil {
		return fmt.Errorf("create %s: %w", account, err)
	}
	return nil
}

// SetPassword replaces an account's credentials.
func (a *Accounts) SetPassword(ctx context.Context, account jid.JID, password string) error {
	creds, err := a.credentials(password)
	if err != nil {
		return fmt.Errorf("change password of %s: %w", account, err)
	}
	if err := a.store.SetCredentials(ctx, account.Bare().String(), creds); err != nil {
		return fmt.Errorf("change password of %s: %w", account, err)
	}
	return nil
}

// Delete removes an account with its roster and offline messages, then tells the OnDeleted functions.
func (a *Accounts) Delete(ctx context.Context, account jid.JID) error {
	bare := account.Bare().String()
	if err := a.store.DeleteUser(ctx, bare); err != nil {
		return fmt.Errorf("delete %s: %w", account, err)
	}
	a.mu.Lock()
	fs := a.onDeleted
	a.mu.Unlock()
	for _, f := range fs {
		f(bare)
	}
	return nil
}

// OnDeleted registers f to run after an account is deleted through a, with its bare JID: what the node
// caches about an account (its blocklist) must not outlive it, or an account created later under the
// same name would inherit it.
func (a *Accounts) OnDeleted(f func(bare string)) {
	a.mu.Lock()
	a.onDeleted = append(a.onDeleted[:len(a.onDeleted):len(a.onDeleted)], f)
	a.mu.Unlock()
}

// Exists reports whether the account exists.
func (a *Accounts) Exists(ctx context.Context, bare string) (bool, error) {
	return a.store.UserExists(ctx, bare)
}

// UserExists is Exists under the name the router asks for.
func (a *Accounts) UserExists(ctx context.Context, bare string) (bool, error) {
	return a.store.UserExists(ctx, bare)
}

// List returns the accounts of a domain ("" for all).
func (a *Accounts) List(ctx context.Context, domain string) ([]string, error) {
	return a.store.ListUsers(ctx, domain)
}

// Count counts the accounts of a domain ("" for all).
func (a *Accounts) Count(ctx context.Context, domain string) (int, error) {
	return a.store.CountUsers(ctx, domain)
}

// Lookup returns a SASL credential lookup for one domain: SASL names the user by its prepared localpart.
func (a *Accounts) Lookup(domain string) sasl.Lookup {
	return func(ctx context.Context, username string, h sasl.Hash) (sasl.Credentials, error) {
		c, err := a.store.Credential(ctx, username+"@"+domain, string(h))
		if errors.Is(err, storage.ErrNotFound) {
			return sasl.Credentials{}, sasl.ErrUnknownUser
		}
		if err != nil {
			return sasl.Credentials{}, err
		}
		return sasl.Credentials{Hash: sasl.Hash(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}, nil
	}
}
