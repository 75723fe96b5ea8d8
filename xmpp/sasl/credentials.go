package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/text/secure/precis"
)

// Bounds on credentials. They keep a hostile peer or a corrupt store from
// making either side spend unbounded time or memory.
const (
	// DefaultIterations is the PBKDF2 iteration count used when none is
	// given: the minimum RFC 7677 asks for.
	DefaultIterations = 4096
	// MaxIterations bounds the iteration count accepted anywhere, so a
	// server cannot make a client (or a stored record make the server) run
	// PBKDF2 for minutes.
	MaxIterations = 10_000_000
	// SaltSize is the length of the random salts NewCredentials makes.
	SaltSize = 16
	// MaxSaltSize bounds accepted salts.
	MaxSaltSize = 256
	// MaxPasswordSize bounds passwords, in bytes after preparation.
	MaxPasswordSize = 1024
	// MaxUsernameSize bounds usernames (XMPP localparts are at most 1023
	// bytes, RFC 7622 §3.3.1).
	MaxUsernameSize = 1023
)

// Credentials are what the server stores for one user and one hash: enough
// to check a SCRAM proof or a PLAIN password, never the password itself.
type Credentials struct {
	Hash       Hash
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// Validate reports an error when c cannot be used: an unknown hash, an
// empty or oversized salt, an iteration count out of range, or keys of the
// wrong length.
func (c Credentials) Validate() error {
	if !c.Hash.Valid() {
		return fmt.Errorf("sasl: credentials: unknown hash %q", c.Hash)
	}
	if len(c.Salt) == 0 || len(c.Salt) > MaxSaltSize {
		return fmt.Errorf("sasl: credentials: salt length %d not in 1..%d", len(c.Salt), MaxSaltSize)
	}
	if c.Iterations < 1 || c.Iterations > MaxIterations {
		return fmt.Errorf("sasl: credentials: iteration count %d not in 1..%d", c.Iterations, MaxIterations)
	}
	if n := c.Hash.Size(); len(c.StoredKey) != n || len(c.ServerKey) != n {
		return fmt.Errorf("sasl: credentials: %s keys must be %d bytes, got %d and %d",
			c.Hash, n, len(c.StoredKey), len(c.ServerKey))
	}
	return nil
}

// DeriveCredentials computes the stored form of password for hash h with the
// given salt and iteration count. The password is prepared with the PRECIS
// OpaqueString profile first.
func DeriveCredentials(h Hash, password string, salt []byte, iterations int) (Credentials, error) {
	if !h.Valid() {
		return Credentials{}, fmt.Errorf("sasl: derive credentials: unknown hash %q", h)
	}
	if len(salt) == 0 || len(salt) > MaxSaltSize {
		return Credentials{}, fmt.Errorf("sasl: derive credentials: salt length %d not in 1..%d", len(salt), MaxSaltSize)
	}
	if iterations < 1 || iterations > MaxIterations {
		return Credentials{}, fmt.Errorf("sasl: derive credentials: iteration count %d not in 1..%d", iterations, MaxIterations)
	}
	p, err := PreparePassword(password)
	if err != nil {
		return Credentials{}, fmt.Errorf("sasl: derive credentials: %w", err)
	}
	k, err := deriveKeys(h, p, salt, iterations)
	if err != nil {
		return Credentials{}, fmt.Errorf("sasl: derive credentials: %w", err)
	}
	return Credentials{
		Hash:       h,
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  k.storedKey,
		ServerKey:  k.serverKey,
	}, nil
}

// NewCredentials derives credentials for every supported hash (strongest
// first), each with its own random salt of SaltSize bytes. An iteration
// count of 0 means DefaultIterations.
func NewCredentials(password string, iterations int) ([]Credentials, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	out := make([]Credentials, 0, 3)
	for _, h := range Hashes() {
		salt := make([]byte, SaltSize)
		if _, err := rand.Read(salt); err != nil {
			return nil, fmt.Errorf("sasl: new credentials: read random salt: %w", err)
		}
		c, err := DeriveCredentials(h, password, salt, iterations)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// VerifyPlain reports whether password matches c. It runs PBKDF2 with c's
// salt and iteration count and compares both keys in constant time. Invalid
// credentials or an invalid password never match.
func VerifyPlain(c Credentials, password string) bool {
	if c.Validate() != nil {
		return false
	}
	p, err := PreparePassword(password)
	if err != nil {
		return false
	}
	k, err := deriveKeys(c.Hash, p, c.Salt, c.Iterations)
	if err != nil {
		return false
	}
	// Both comparisons run before the results are combined, so the time
	// taken does not depend on which key differs.
	a := hmac.Equal(k.storedKey, c.StoredKey)
	b := hmac.Equal(k.serverKey, c.ServerKey)
	return a && b
}

// keys are the values a SCRAM client derives from SaltedPassword.
type keys struct {
	clientKey, storedKey, serverKey []byte
}

// deriveKeys runs PBKDF2 on an already prepared password and derives the
// SCRAM keys from the result (RFC 5802 §3).
func deriveKeys(h Hash, prepared string, salt []byte, iterations int) (keys, error) {
	salted, err := pbkdf2.Key(h.newFunc(), prepared, salt, iterations, h.Size())
	if err != nil {
		return keys{}, fmt.Errorf("pbkdf2: %w", err)
	}
	return keysFromSalted(h, salted), nil
}

// keysFromSalted derives ClientKey, StoredKey and ServerKey from
// SaltedPassword.
func keysFromSalted(h Hash, salted []byte) keys {
	ck := hmacSum(h, salted, []byte("Client Key"))
	return keys{
		clientKey: ck,
		storedKey: h.sum(ck),
		serverKey: hmacSum(h, salted, []byte("Server Key")),
	}
}

// hmacSum returns HMAC-h(key, msg).
func hmacSum(h Hash, key, msg []byte) []byte {
	m := hmac.New(h.newFunc(), key)
	m.Write(msg)
	return m.Sum(nil)
}

// errEmpty is returned for empty usernames and passwords.
var errEmpty = errors.New("empty")

// PreparePassword applies the PRECIS OpaqueString profile (RFC 8265 §4.2),
// which both ends must use so that the derived keys agree.
func PreparePassword(password string) (string, error) {
	if password == "" {
		return "", fmt.Errorf("prepare password: %w", errEmpty)
	}
	if len(password) > MaxPasswordSize {
		return "", fmt.Errorf("prepare password: longer than %d bytes", MaxPasswordSize)
	}
	p, err := precis.OpaqueString.String(password)
	if err != nil {
		return "", fmt.Errorf("prepare password: %w", err)
	}
	if len(p) > MaxPasswordSize {
		return "", fmt.Errorf("prepare password: longer than %d bytes", MaxPasswordSize)
	}
	return p, nil
}

// PrepareUsername applies the PRECIS UsernameCaseMapped profile (RFC 8265
// §3.3), the form in which the server looks users up.
func PrepareUsername(username string) (string, error) {
	if username == "" {
		return "", fmt.Errorf("prepare username: %w", errEmpty)
	}
	if len(username) > MaxUsernameSize {
		return "", fmt.Errorf("prepare username: longer than %d bytes", MaxUsernameSize)
	}
	u, err := precis.UsernameCaseMapped.String(username)
	if err != nil {
		return "", fmt.Errorf("prepare username: %w", err)
	}
	if len(u) > MaxUsernameSize {
		return "", fmt.Errorf("prepare username: longer than %d bytes", MaxUsernameSize)
	}
	return u, nil
}
