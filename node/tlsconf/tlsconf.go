// Package tlsconf gives the node its TLS configuration: the certificate and key named in the config or,
// when none is named, a self-signed certificate for the served domains that the first start writes into
// the data directory (and says so in the log), so that a fresh node speaks TLS from its first minute.
package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Options say where the certificate comes from.
type Options struct {
	CertFile, KeyFile string   // both set: load these
	DataDir           string   // otherwise: DataDir/tls/{cert,key}.pem, made if absent
	Domains           []string // names the self-signed certificate covers
	Logger            *slog.Logger
	// Now is the clock for certificate validity (tests); nil means time.Now.
	Now func() time.Time
}

// Load returns a server TLS configuration and its leaf certificate.
func Load(o Options) (*tls.Config, *x509.Certificate, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	certFile, keyFile := o.CertFile, o.KeyFile
	switch {
	case certFile != "" && keyFile != "":
	case certFile != "" || keyFile != "":
		return nil, nil, errors.New("tls: set both the certificate and the key file, or neither")
	default:
		dir := filepath.Join(o.DataDir, "tls")
		certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			if err := selfSigned(certFile, keyFile, o.Domains, o.Now()); err != nil {
				return nil, nil, err
			}
			o.Logger.Warn("no TLS certificate configured: wrote a self-signed one; clients will not trust it until you configure a real certificate",
				"cert", certFile, "domains", o.Domains)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("tls: parse certificate %s: %w", certFile, err)
		}
		pair.Leaf = leaf
	}
	if o.Now().After(leaf.NotAfter) {
		o.Logger.Warn("the TLS certificate has expired", "cert", certFile, "not_after", leaf.NotAfter)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		// XEP-0368: direct TLS clients may ask for xmpp-client.
		NextProtos: []string{"xmpp-client"},
	}
	return cfg, leaf, nil
}

func selfSigned(certFile, keyFile string, domains []string, now time.Time) error {
	if len(domains) == 0 {
		return errors.New("tls: no domain to write a self-signed certificate for")
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("tls: create %s: %w", filepath.Dir(certFile), err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return fmt.Errorf("tls: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: domains[0], Organization: []string{"Starling self-signed"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(825 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, d := range slices.Compact(slices.Sorted(slices.Values(domains))) {
		if ip := net.ParseIP(d); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, d)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("tls: create certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: marshal key: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("tls: write key: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("tls: write certificate: %w", err)
	}
	return nil
}
