package xmppclient

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// Mechanism is the client side of one SASL exchange. It is the seam where
// the project's xmpp/sasl client replaces this package's own once it lands.
type Mechanism interface {
	// Name is the IANA mechanism name, e.g. "SCRAM-SHA-256".
	Name() string
	// Start returns the initial response.
	Start() ([]byte, error)
	// Next answers a server challenge.
	Next(challenge []byte) ([]byte, error)
	// Finish checks the additional data carried by <success/>.
	Finish(data []byte) error
}

// NewMechanism returns a mechanism by name for the given credentials.
// cache may be nil; SCRAM then derives the salted password every time.
func NewMechanism(name, user, password string, cache *SaltCache) (Mechanism, error) {
	switch name {
	case "PLAIN":
		return &plain{user: user, password: password}, nil
	case "SCRAM-SHA-1":
		return &scram{name: name, h: sha1.New, size: sha1.Size, user: user, password: password, cache: cache}, nil
	case "SCRAM-SHA-256":
		return &scram{name: name, h: sha256.New, size: sha256.Size, user: user, password: password, cache: cache}, nil
	}
	return nil, fmt.Errorf("unsupported SASL mechanism %q", name)
}

type plain struct{ user, password string }

func (p *plain) Name() string { return "PLAIN" }
func (p *plain) Start() ([]byte, error) {
	return []byte("\x00" + p.user + "\x00" + p.password), nil
}
func (p *plain) Next([]byte) ([]byte, error) {
	return nil, errors.New("PLAIN: unexpected challenge")
}
func (p *plain) Finish([]byte) error { return nil }

// SaltCache remembers SCRAM salted passwords so that repeated logins of the
// same account cost the generator one HMAC chain, not a PBKDF2 run: the load
// generator must not be the bottleneck of a login-rate measurement.
type SaltCache struct {
	mu sync.Mutex
	m  map[string][]byte
	// Hits and Misses count lookups, to show in results that the cache worked.
	hits, misses int64
}

// NewSaltCache returns an empty cache.
func NewSaltCache() *SaltCache { return &SaltCache{m: make(map[string][]byte)} }

// Stats returns the number of hits and misses so far.
func (c *SaltCache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

func (c *SaltCache) get(key string, derive func() []byte) []byte {
	if c == nil {
		return derive()
	}
	c.mu.Lock()
	v, ok := c.m[key]
	if ok {
		c.hits++
		c.mu.Unlock()
		return v
	}
	c.misses++
	c.mu.Unlock()
	v = derive()
	c.mu.Lock()
	c.m[key] = v
	c.mu.Unlock()
	return v
}

type scram struct {
	name           string
	h              func() hash.Hash
	size           int
	user, password string
	cache          *SaltCache

	clientFirstBare string
	nonce           string
	serverSig       []byte
}

func (s *scram) Name() string { return s.name }

func (s *scram) Start() ([]byte, error) {
	if s.nonce == "" { // tests preset it to replay RFC vectors
		var nb [18]byte
		if _, err := rand.Read(nb[:]); err != nil {
			return nil, fmt.Errorf("SCRAM nonce: %w", err)
		}
		s.nonce = base64.RawStdEncoding.EncodeToString(nb[:])
	}
	user := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	s.clientFirstBare = "n=" + user + ",r=" + s.nonce
	return []byte("n,," + s.clientFirstBare), nil
}

func (s *scram) Next(challenge []byte) ([]byte, error) {
	var nonce, salt []byte
	iter := 0
	for _, f := range bytes.Split(challenge, []byte(",")) {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		switch f[0] {
		case 'r':
			nonce = f[2:]
		case 's':
			var err error
			salt, err = base64.StdEncoding.DecodeString(string(f[2:]))
			if err != nil {
				return nil, fmt.Errorf("%s: bad salt: %w", s.name, err)
			}
		case 'i':
			n, err := strconv.Atoi(string(f[2:]))
			if err != nil {
				return nil, fmt.Errorf("%s: bad iteration count: %w", s.name, err)
			}
			iter = n
		case 'm':
			return nil, fmt.Errorf("%s: server requires unsupported extension", s.name)
		}
	}
	if !bytes.HasPrefix(nonce, []byte(s.nonce)) || len(nonce) == len(s.nonce) {
		return nil, fmt.Errorf("%s: server nonce does not extend ours", s.name)
	}
	if len(salt) == 0 || iter < 1 || iter > 1<<20 {
		return nil, fmt.Errorf("%s: bad salt or iteration count %d", s.name, iter)
	}
	key := s.name + "\x00" + s.password + "\x00" + string(salt) + "\x00" + strconv.Itoa(iter)
	salted := s.cache.get(key, func() []byte {
		k, err := pbkdf2.Key(s.h, s.password, salt, iter, s.size)
		if err != nil {
			// Only reachable with a key length the FIPS module refuses; size is fixed.
			panic(err)
		}
		return k
	})
	clientFinalBare := "c=biws,r=" + string(nonce)
	authMsg := s.clientFirstBare + "," + string(challenge) + "," + clientFinalBare
	clientKey := s.hmac(salted, "Client Key")
	h := s.h()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	sig := s.hmac(storedKey, authMsg)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ sig[i]
	}
	s.serverSig = s.hmac(s.hmac(salted, "Server Key"), authMsg)
	return []byte(clientFinalBare + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (s *scram) hmac(key []byte, msg string) []byte {
	m := hmac.New(s.h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (s *scram) Finish(data []byte) error {
	if s.serverSig == nil {
		return fmt.Errorf("%s: success before the final message", s.name)
	}
	if !bytes.HasPrefix(data, []byte("v=")) {
		return fmt.Errorf("%s: server final message lacks a verifier", s.name)
	}
	v, err := base64.StdEncoding.DecodeString(string(data[2:]))
	if err != nil {
		return fmt.Errorf("%s: bad server verifier: %w", s.name, err)
	}
	if !hmac.Equal(v, s.serverSig) {
		return fmt.Errorf("%s: server signature does not match", s.name)
	}
	return nil
}
