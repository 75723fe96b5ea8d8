package sasl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"testing"
)

// TestRoundTrip runs every mechanism between our client and server, without
// TLS, and over real TLS 1.3 and TLS 1.2 connections with each channel-binding
// type.
func TestRoundTrip(t *testing.T) {
	cert := newCert(t, "p256", 0)
	conns := map[string]*tlsPair{"none": nil}
	for name, v := range map[string]uint16{"tls13": tls.VersionTLS13, "tls12": tls.VersionTLS12} {
		p := handshake(t, cert, v)
		conns[name] = &p
	}
	ctx := context.Background()
	for _, conn := range []string{"none", "tls13", "tls12"} {
		p := conns[conn]
		var srvTypes, clTypes []string
		var srvCB, clCB func(string) ([]byte, bool)
		if p != nil {
			srvTypes, srvCB = ServerBinding(&p.server, p.cert)
			clTypes, clCB = ClientBinding(&p.client)
			// Go always negotiates extended master secret on TLS 1.2,
			// so both types are available on both versions.
			want := []string{TLSExporter, TLSServerEndPoint}
			if !slices.Equal(srvTypes, want) || !slices.Equal(clTypes, want) {
				t.Fatalf("%s: types server %v client %v, want %v", conn, srvTypes, clTypes, want)
			}
		}
		mechs := Mechanisms(p != nil, srvTypes)
		for _, mech := range mechs {
			cbTypes := []string{""}
			if m, _ := parseMechanism(mech); m.plus {
				cbTypes = srvTypes
			}
			for _, cbType := range cbTypes {
				t.Run(fmt.Sprintf("conn=%s/mech=%s/cb=%s", conn, mech, cbType), func(t *testing.T) {
					st := newStore(t, "juliet", "r0m€o")
					srv, err := NewServer(mech, ServerConfig{
						Lookup:         st.lookup,
						ChannelBinding: srvCB,
						AdvertisedPlus: len(srvTypes) > 0,
						Authorize: func(_ context.Context, u, a string) error {
							if a != u+"@example.org" {
								return fmt.Errorf("%q may not act as %q", u, a)
							}
							return nil
						},
					})
					if err != nil {
						t.Fatalf("NewServer: %v", err)
					}
					cl, err := NewClient(mech, ClientConfig{
						Username:       "Juliet", // prepared to "juliet"
						Password:       "r0m€o",
						Authzid:        "juliet@example.org",
						ChannelBinding: clCB,
						CBType:         cbType,
						PlusAdvertised: len(srvTypes) > 0,
					})
					if err != nil {
						t.Fatalf("NewClient: %v", err)
					}
					if err := exchange(ctx, srv, cl); err != nil {
						t.Fatalf("exchange: %v", err)
					}
					if srv.Username() != "juliet" || srv.Authzid() != "juliet@example.org" {
						t.Errorf("identity %q/%q", srv.Username(), srv.Authzid())
					}
					if srv.ChannelBinding() != cbType {
						t.Errorf("bound to %q, want %q", srv.ChannelBinding(), cbType)
					}
				})
			}
		}
	}
}

// TestBindingData checks that both ends compute the same binding data and
// that tls-server-end-point follows the certificate's signature hash.
func TestBindingData(t *testing.T) {
	for _, tt := range []struct {
		key  string
		alg  x509.SignatureAlgorithm
		size int // 0: no tls-server-end-point binding defined
	}{
		{"p256", x509.ECDSAWithSHA256, 32},
		{"p256", x509.ECDSAWithSHA1, 32}, // SHA-1 is upgraded to SHA-256
		{"p384", x509.ECDSAWithSHA384, 48},
		{"p384", x509.ECDSAWithSHA512, 64},
		{"ed25519", x509.PureEd25519, 0},
	} {
		t.Run(fmt.Sprintf("alg=%v", tt.alg), func(t *testing.T) {
			cert := newCert(t, tt.key, tt.alg)
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				if tt.alg == x509.ECDSAWithSHA1 {
					// Go refuses SHA-1 signatures in handshakes; check
					// the hashing alone.
					b, err := ServerEndPoint(cert.Leaf)
					if err != nil || len(b) != tt.size {
						t.Fatalf("ServerEndPoint = %x, %v", b, err)
					}
					continue
				}
				p := handshake(t, cert, v)
				se, err := BindingData(&p.server, TLSExporter, true)
				if err != nil {
					t.Fatal(err)
				}
				ce, err := BindingData(&p.client, TLSExporter, false)
				if err != nil {
					t.Fatal(err)
				}
				if len(se) != 32 || string(se) != string(ce) {
					t.Errorf("tls-exporter server %x client %x", se, ce)
				}
				if _, err := BindingData(&p.server, TLSServerEndPoint, true); err != ErrNoServerCertificate {
					t.Errorf("server-side tls-server-end-point: %v", err)
				}
				cp, cerr := BindingData(&p.client, TLSServerEndPoint, false)
				sp, serr := ServerEndPoint(cert.Leaf)
				if tt.size == 0 {
					if cerr == nil || serr == nil {
						t.Errorf("Ed25519 binding should be undefined: %v %v", cerr, serr)
					}
					if slices.Contains(CBTypes(&p.client), TLSServerEndPoint) {
						t.Errorf("CBTypes lists tls-server-end-point for Ed25519")
					}
					continue
				}
				if cerr != nil || serr != nil || len(cp) != tt.size || string(cp) != string(sp) {
					t.Errorf("tls-server-end-point client %x (%v) server %x (%v)", cp, cerr, sp, serr)
				}
				if _, err := BindingData(&p.client, "tls-unique", false); err == nil {
					t.Errorf("tls-unique should be unsupported")
				}
			}
		})
	}
	if _, err := BindingData(nil, TLSExporter, false); err == nil {
		t.Error("BindingData(nil) succeeded")
	}
	if types, f := ServerBinding(nil, nil); types != nil || f != nil {
		t.Error("ServerBinding without TLS must give nil, or PLAIN would count the stream as encrypted")
	}
	if types, f := ClientBinding(&tls.ConnectionState{}); types != nil || f != nil {
		t.Error("ClientBinding without a handshake must give nil")
	}
	if CBTypes(nil) != nil {
		t.Error("CBTypes(nil) not empty")
	}
	// Hand-made states (no exporter inside) and old versions list nothing
	// and do not panic.
	for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		st := &tls.ConnectionState{Version: v, HandshakeComplete: true}
		if got := CBTypes(st); got != nil {
			t.Errorf("version %x: types %v", v, got)
		}
		if _, err := BindingData(st, TLSExporter, true); err == nil {
			t.Errorf("version %x: exporter data from a hand-made state", v)
		}
	}
}

// TestMechanisms checks the offer for each TLS state.
func TestMechanisms(t *testing.T) {
	tests := []struct {
		tls   bool
		types []string
		want  []string
	}{
		{false, nil, []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"}},
		{false, []string{TLSExporter}, []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"}},
		{true, nil, []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}},
		{true, []string{TLSExporter}, []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
			"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}},
	}
	for _, tt := range tests {
		if got := Mechanisms(tt.tls, tt.types); !slices.Equal(got, tt.want) {
			t.Errorf("Mechanisms(%v, %v) = %v, want %v", tt.tls, tt.types, got, tt.want)
		}
	}
}

// TestExporterUnsafeEKM checks that TLS 1.2 is not trusted for tls-exporter
// when GODEBUG lets Go export keying material without extended master
// secret, since the two cases can then no longer be told apart.
func TestExporterUnsafeEKM(t *testing.T) {
	cert := newCert(t, "p256", 0)
	p12 := handshake(t, cert, tls.VersionTLS12)
	p13 := handshake(t, cert, tls.VersionTLS13)
	t.Setenv("GODEBUG", "tlsunsafeekm=1")
	if slices.Contains(CBTypes(&p12.client), TLSExporter) {
		t.Error("TLS 1.2 offers tls-exporter under tlsunsafeekm=1")
	}
	if !slices.Contains(CBTypes(&p13.client), TLSExporter) {
		t.Error("TLS 1.3 lost tls-exporter")
	}
}
