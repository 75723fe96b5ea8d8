package sasl

import (
	"context"
	"testing"
)

// TestRFCVectors replays the exchanges of RFC 5802 §5 (SHA-1) and RFC 7677
// §3 (SHA-256) through both the client and the server, plus two exchanges
// computed independently with Python's hashlib and hmac: SHA-512 (no RFC
// gives a vector) and SHA-256-PLUS over fixed tls-exporter data.
func TestRFCVectors(t *testing.T) {
	tests := []struct {
		name                     string
		plus                     bool // bound with tls-exporter data 00 01 … 1f
		hash                     Hash
		cnonce, snonce, salt     string
		clientFirst, serverFirst string
		clientFinal, serverFinal string
	}{
		{
			name:        "RFC 5802",
			hash:        SHA1,
			cnonce:      "fyko+d2lbbFgONRv9qkxdawL",
			snonce:      "3rfcNHYJY1ZVvWVs7j",
			salt:        "QSXCR+Q6sek8bf92",
			clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			name:        "RFC 7677",
			hash:        SHA256,
			cnonce:      "rOprNGfwEbeRWgbNEkqO",
			snonce:      "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			salt:        "W22ZaJ0SNY7soEsUEjb6gQ==",
			clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
		{
			name:        "hashlib",
			hash:        SHA512,
			cnonce:      "rOprNGfwEbeRWgbNEkqO",
			snonce:      "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			salt:        "W22ZaJ0SNY7soEsUEjb6gQ==",
			clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==",
			serverFinal: "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==",
		},
		{
			name:        "hashlib",
			plus:        true,
			hash:        SHA256,
			cnonce:      "clientnonce",
			snonce:      "servernonce",
			salt:        "W22ZaJ0SNY7soEsUEjb6gQ==",
			clientFirst: "p=tls-exporter,,n=user,r=clientnonce",
			serverFirst: "r=clientnonceservernonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=cD10bHMtZXhwb3J0ZXIsLAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f,r=clientnonceservernonce,p=KJcw6ubjwELMEIc781jZJ+Bdh1Co/2LGvc0HGKpZITQ=",
			serverFinal: "v=Lr8IFytBMy9qe1/k5zlHXY6pOn1igPtXGw70okVZwws=",
		},
	}
	for _, tt := range tests {
		mech := tt.hash.Mechanism(tt.plus)
		var cb func(string) ([]byte, bool)
		if tt.plus {
			data := make([]byte, 32)
			for i := range data {
				data[i] = byte(i)
			}
			cb = func(t string) ([]byte, bool) { return data, t == TLSExporter }
		}
		t.Run(tt.name+"/mech="+mech, func(t *testing.T) {
			salt, err := b64.DecodeString(tt.salt)
			if err != nil {
				t.Fatal(err)
			}
			creds, err := DeriveCredentials(tt.hash, "pencil", salt, 4096)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()

			cl, err := NewClient(mech, ClientConfig{Username: "user", Password: "pencil", ChannelBinding: cb})
			if err != nil {
				t.Fatal(err)
			}
			cl.newNonce = func() string { return tt.cnonce }
			step := func(in string, want string, wantDone bool) {
				t.Helper()
				out, done, err := cl.Step([]byte(in))
				if err != nil || string(out) != want || done != wantDone {
					t.Fatalf("client Step(%q) = %q, %v, %v; want %q, %v", in, out, done, err, want, wantDone)
				}
			}
			step("", tt.clientFirst, false)
			step(tt.serverFirst, tt.clientFinal, false)
			step(tt.serverFinal, "", true)

			srv, err := NewServer(mech, ServerConfig{
				ChannelBinding: cb,
				Lookup: func(_ context.Context, u string, h Hash) (Credentials, error) {
					if u != "user" || h != tt.hash {
						t.Errorf("Lookup(%q, %q)", u, h)
					}
					return creds, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			srv.newNonce = func() string { return tt.snonce }
			out, done, err := srv.Step(ctx, []byte(tt.clientFirst))
			if err != nil || done || string(out) != tt.serverFirst {
				t.Fatalf("server first = %q, %v, %v; want %q", out, done, err, tt.serverFirst)
			}
			out, done, err = srv.Step(ctx, []byte(tt.clientFinal))
			if err != nil || !done || string(out) != tt.serverFinal {
				t.Fatalf("server final = %q, %v, %v; want %q", out, done, err, tt.serverFinal)
			}
			if srv.Username() != "user" || srv.Authzid() != "" || srv.Mechanism() != mech {
				t.Errorf("server identity = %q %q %q", srv.Username(), srv.Authzid(), srv.Mechanism())
			}
		})
	}
}
