package sasl

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// store is an in-memory account store for tests.
type store struct {
	mu    sync.Mutex
	creds map[string][]Credentials
	errs  map[string]error // returned along with the credentials
	calls int
}

// newStore makes a store with one account per (username, password) pair,
// with credentials for every hash at a low iteration count to keep tests fast.
func newStore(t testing.TB, accounts ...string) *store {
	t.Helper()
	s := &store{creds: map[string][]Credentials{}, errs: map[string]error{}}
	for i := 0; i+1 < len(accounts); i += 2 {
		cs, err := NewCredentials(accounts[i+1], 64)
		if err != nil {
			t.Fatalf("NewCredentials: %v", err)
		}
		s.creds[accounts[i]] = cs
	}
	return s
}

func (s *store) lookup(ctx context.Context, username string, h Hash) (Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, c := range s.creds[username] {
		if c.Hash == h {
			return c, s.errs[username]
		}
	}
	if err := s.errs[username]; err != nil {
		return Credentials{}, err
	}
	return Credentials{}, ErrUnknownUser
}

// exchange runs a whole exchange between cl and srv and returns the first
// error of either side. The server's error, a *Failure, is returned as is.
func exchange(ctx context.Context, srv *Server, cl *Client) error {
	out, cdone, err := cl.Step(nil)
	if err != nil {
		return err
	}
	for range 4 {
		sout, sdone, err := srv.Step(ctx, out)
		if err != nil {
			return err
		}
		if sdone {
			if cdone && len(sout) == 0 {
				return nil // PLAIN: nothing more to verify
			}
			_, cdone, err = cl.Step(sout)
			if err != nil {
				return err
			}
			if !cdone {
				return errors.New("server succeeded but the client is not done")
			}
			return nil
		}
		out, cdone, err = cl.Step(sout)
		if err != nil {
			return err
		}
	}
	return errors.New("exchange did not finish")
}

// failureOf returns the condition of err if it is a *Failure, or "".
func failureOf(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Condition
	}
	return ""
}

// tlsPair holds both ends' view of one real TLS connection.
type tlsPair struct {
	server, client tls.ConnectionState
	cert           *x509.Certificate
}

// newCert makes a self-signed certificate with the given key type and
// signature algorithm (0 lets crypto/x509 choose).
func newCert(t testing.TB, key string, alg x509.SignatureAlgorithm) tls.Certificate {
	t.Helper()
	var priv any
	var pub any
	switch key {
	case "p256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	case "p384":
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	case "ed25519":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, p
	default:
		t.Fatalf("unknown key type %q", key)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(1),
		Subject:            pkix.Name{CommonName: "localhost"},
		DNSNames:           []string{"localhost"},
		NotBefore:          time.Now().Add(-time.Hour),
		NotAfter:           time.Now().Add(time.Hour),
		SignatureAlgorithm: alg,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
}

// handshake runs a real TLS handshake over net.Pipe with the given version
// and returns both connection states.
func handshake(t testing.TB, cert tls.Certificate, version uint16) tlsPair {
	t.Helper()
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close(); c2.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	srv := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version})
	cl := tls.Client(c2, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: version, MaxVersion: version})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.HandshakeContext(ctx) }()
	if err := cl.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return tlsPair{server: srv.ConnectionState(), client: cl.ConnectionState(), cert: cert.Leaf}
}
