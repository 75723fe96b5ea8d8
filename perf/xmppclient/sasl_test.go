package xmppclient

import (
	"strings"
	"testing"
)

// TestSCRAMVectors replays the exchanges of RFC 5802 §5 and RFC 7677 §3.
func TestSCRAMVectors(t *testing.T) {
	tests := []struct {
		mech, user, pass, nonce, first, final, server string
	}{
		{"SCRAM-SHA-1", "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL",
			"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
		{"SCRAM-SHA-256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			cache := NewSaltCache()
			for round := range 2 {
				m, err := NewMechanism(tt.mech, tt.user, tt.pass, cache)
				if err != nil {
					t.Fatal(err)
				}
				m.(*scram).nonce = tt.nonce
				first, err := m.Start()
				if err != nil {
					t.Fatal(err)
				}
				if want := "n,,n=user,r=" + tt.nonce; string(first) != want {
					t.Fatalf("client-first = %q, want %q", first, want)
				}
				final, err := m.Next([]byte(tt.first))
				if err != nil {
					t.Fatal(err)
				}
				if string(final) != tt.final {
					t.Fatalf("client-final = %q, want %q", final, tt.final)
				}
				if err := m.Finish([]byte(tt.server)); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if h, m := cache.Stats(); h != 1 || m != 1 {
				t.Fatalf("cache hits/misses = %d/%d, want 1/1", h, m)
			}
		})
	}
}

func TestSCRAMRejects(t *testing.T) {
	tests := []struct{ name, challenge, final, want string }{
		{"foreign nonce", "r=other123,s=QSXCR+Q6sek8bf92,i=4096", "", "nonce"},
		{"nonce not extended", "r=abc,s=QSXCR+Q6sek8bf92,i=4096", "", "nonce"},
		{"bad salt", "r=abcdef,s=***,i=4096", "", "salt"},
		{"zero iterations", "r=abcdef,s=QSXCR+Q6sek8bf92,i=0", "", "iteration"},
		{"extension", "r=abcdef,m=x,s=QSXCR+Q6sek8bf92,i=1", "", "extension"},
		{"wrong verifier", "r=abcdef,s=QSXCR+Q6sek8bf92,i=16", "v=AAAA", "signature"},
		{"no verifier", "r=abcdef,s=QSXCR+Q6sek8bf92,i=16", "x=1", "verifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := NewMechanism("SCRAM-SHA-1", "u", "p", nil)
			m.(*scram).nonce = "abc"
			if _, err := m.Start(); err != nil {
				t.Fatal(err)
			}
			_, err := m.Next([]byte(tt.challenge))
			if err == nil && tt.final != "" {
				err = m.Finish([]byte(tt.final))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestPLAIN(t *testing.T) {
	m, err := NewMechanism("PLAIN", "alice", "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Start()
	if string(b) != "\x00alice\x00s3cret" {
		t.Fatalf("PLAIN = %q", b)
	}
	if _, err := NewMechanism("DIGEST-MD5", "a", "b", nil); err == nil {
		t.Fatal("unknown mechanism accepted")
	}
}
