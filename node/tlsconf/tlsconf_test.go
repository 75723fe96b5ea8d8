package tlsconf

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSelfSignedOnceThenReused(t *testing.T) {
	dir := t.TempDir()
	cfg, leaf, err := Load(Options{DataDir: dir, Domains: []string{"example.org", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Certificates) != 1 || leaf.DNSNames[0] != "example.org" || len(leaf.IPAddresses) != 1 {
		t.Fatalf("leaf names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if err := leaf.VerifyHostname("example.org"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "tls", "key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	_, again, err := Load(Options{DataDir: dir, Domains: []string{"other.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatal("a second start wrote a new certificate instead of reusing the first")
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"cert without key", Options{CertFile: "x.pem"}},
		{"missing files", Options{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}},
		{"no domains", Options{DataDir: t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Load(tt.o); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
