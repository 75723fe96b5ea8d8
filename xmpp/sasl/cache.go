package sasl

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// defaultCacheSize is the capacity of a zero SaltCache.
const defaultCacheSize = 100_000

// SaltCache remembers the keys a client derived from SaltedPassword per
// (hash, password, salt, iteration count), so a load generator logging the
// same accounts in again and again pays PBKDF2 once per account. Its zero
// value is ready to use and holds up to 100 000 entries; it is safe for
// concurrent use. Passwords are not kept: entries are indexed by a SHA-256
// digest of the inputs.
type SaltCache struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]keys
}

// NewSaltCache returns a cache holding at most max entries (0 means the
// default of 100 000). When full, an arbitrary entry makes room.
func NewSaltCache(max int) *SaltCache {
	if max <= 0 {
		max = defaultCacheSize
	}
	return &SaltCache{max: max}
}

// Len returns the number of cached entries.
func (c *SaltCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// cacheKey digests the inputs with length prefixes, so no two different
// inputs share an encoding.
func cacheKey(h Hash, password string, salt []byte, iterations int) [sha256.Size]byte {
	d := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(h), []byte(password), salt} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		d.Write(n[:])
		d.Write(part)
	}
	binary.BigEndian.PutUint64(n[:], uint64(iterations))
	d.Write(n[:])
	var k [sha256.Size]byte
	d.Sum(k[:0])
	return k
}

// get returns the cached keys for the inputs.
func (c *SaltCache) get(h Hash, password string, salt []byte, iterations int) (keys, bool) {
	k := cacheKey(h, password, salt, iterations)
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	return v, ok
}

// put stores keys for the inputs, evicting an arbitrary entry when full.
func (c *SaltCache) put(h Hash, password string, salt []byte, iterations int, v keys) {
	k := cacheKey(h, password, salt, iterations)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]keys)
	}
	max := c.max
	if max <= 0 {
		max = defaultCacheSize
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}
