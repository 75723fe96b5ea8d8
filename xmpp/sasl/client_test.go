package sasl

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestClientChecksServer checks that the client refuses a server that
// misbehaves or does not know the credentials.
func TestClientChecksServer(t *testing.T) {
	salt := b64.EncodeToString([]byte("0123456789abcdef"))
	tests := []struct {
		name        string
		serverFirst string // "" uses a good one
		serverFinal string // "" uses the real signature
		wantErr     string
	}{
		{name: "nonce not extended", serverFirst: "r=CLIENT,s=" + salt + ",i=64", wantErr: "does not extend"},
		{name: "nonce replaced", serverFirst: "r=OTHERxyz,s=" + salt + ",i=64", wantErr: "does not extend"},
		{name: "mandatory extension", serverFirst: "m=x,r=CLIENTxyz,s=" + salt + ",i=64", wantErr: "mandatory"},
		{name: "no salt", serverFirst: "r=CLIENTxyz,i=64", wantErr: "salt"},
		{name: "bad salt", serverFirst: "r=CLIENTxyz,s=***,i=64", wantErr: "salt"},
		{name: "no iterations", serverFirst: "r=CLIENTxyz,s=" + salt, wantErr: "iteration"},
		{name: "zero iterations", serverFirst: "r=CLIENTxyz,s=" + salt + ",i=0", wantErr: "iteration"},
		{name: "negative iterations", serverFirst: "r=CLIENTxyz,s=" + salt + ",i=-1", wantErr: "iteration"},
		{name: "huge iterations", serverFirst: "r=CLIENTxyz,s=" + salt + ",i=99999999", wantErr: "iteration"},
		{name: "iterations not a number", serverFirst: "r=CLIENTxyz,s=" + salt + ",i=4k", wantErr: "iteration"},
		{name: "bad extension", serverFirst: "r=CLIENTxyz,s=" + salt + ",i=64,9", wantErr: "extension"},
		{name: "server error", serverFinal: "e=invalid-proof", wantErr: "invalid-proof"},
		{name: "wrong signature", serverFinal: "v=" + b64.EncodeToString(make([]byte, 32)), wantErr: "signature mismatch"},
		{name: "no verifier", serverFinal: "x=y", wantErr: "verifier"},
		{name: "verifier not base64", serverFinal: "v=%%%", wantErr: "base64"},
		{name: "extension ignored", serverFinal: "+ext"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := NewClient("SCRAM-SHA-256", ClientConfig{Username: "juliet", Password: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			cl.newNonce = func() string { return "CLIENT" }
			if _, _, err := cl.Step(nil); err != nil {
				t.Fatal(err)
			}
			sf := tt.serverFirst
			if sf == "" {
				sf = "r=CLIENTxyz,s=" + salt + ",i=64"
			}
			_, _, err = cl.Step([]byte(sf))
			if err == nil {
				sfin := tt.serverFinal
				switch sfin {
				case "":
					sfin = "v=" + b64.EncodeToString(cl.verifier)
				case "+ext":
					sfin = "v=" + b64.EncodeToString(cl.verifier) + ",x=ignored"
				}
				_, _, err = cl.Step([]byte(sfin))
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if _, _, err := cl.Step(nil); err == nil {
				t.Error("client went on after an error")
			}
		})
	}
}

// TestNewClientErrors covers configurations a client refuses.
func TestNewClientErrors(t *testing.T) {
	cb := func(t string) ([]byte, bool) { return []byte("d"), t == TLSExporter }
	tests := []struct {
		mech string
		cfg  ClientConfig
	}{
		{"CRAM-MD5", ClientConfig{Username: "a", Password: "b"}},
		{"SCRAM-SHA-1", ClientConfig{Username: "", Password: "b"}},
		{"SCRAM-SHA-1", ClientConfig{Username: "a b", Password: "b"}},
		{"SCRAM-SHA-1", ClientConfig{Username: "a", Password: ""}},
		{"SCRAM-SHA-1", ClientConfig{Username: "a", Password: "b\x07"}},
		{"SCRAM-SHA-1", ClientConfig{Username: "a", Password: "b", Authzid: "x\x00y"}},
		{"SCRAM-SHA-1-PLUS", ClientConfig{Username: "a", Password: "b"}},
		{"SCRAM-SHA-1-PLUS", ClientConfig{Username: "a", Password: "b", ChannelBinding: cb, CBType: TLSServerEndPoint}},
		{"SCRAM-SHA-1-PLUS", ClientConfig{Username: "a", Password: "b", ChannelBinding: cb, CBType: "bad,name"}},
		{Plain, ClientConfig{Username: "a", Password: strings.Repeat("b", 256)}},
	}
	for _, tt := range tests {
		if _, err := NewClient(tt.mech, tt.cfg); err == nil {
			t.Errorf("NewClient(%q, %+v) succeeded", tt.mech, tt.cfg)
		}
	}
}

// TestClientMessages checks the GS2 header the client chooses and the
// escaping of names.
func TestClientMessages(t *testing.T) {
	cb := func(string) ([]byte, bool) { return []byte("d"), true }
	tests := []struct {
		mech string
		cfg  ClientConfig
		want string
	}{
		{"SCRAM-SHA-1", ClientConfig{Username: "juliet", Password: "x"}, "n,,n=juliet,r=N"},
		{"SCRAM-SHA-1", ClientConfig{Username: "a,b=c", Password: "x", Authzid: "j=1,2"}, "n,a=j=3D1=2C2,n=a=2Cb=3Dc,r=N"},
		{"SCRAM-SHA-1", ClientConfig{Username: "Juliet", Password: "x", ChannelBinding: cb}, "y,,n=juliet,r=N"},
		{"SCRAM-SHA-1", ClientConfig{Username: "juliet", Password: "x", ChannelBinding: cb, PlusAdvertised: true}, "n,,n=juliet,r=N"},
		{"SCRAM-SHA-1-PLUS", ClientConfig{Username: "juliet", Password: "x", ChannelBinding: cb}, "p=tls-exporter,,n=juliet,r=N"},
		{"SCRAM-SHA-1-PLUS", ClientConfig{Username: "juliet", Password: "x", ChannelBinding: cb, CBType: TLSServerEndPoint}, "p=tls-server-end-point,,n=juliet,r=N"},
		{Plain, ClientConfig{Username: "Juliet", Password: "x", Authzid: "juliet@example.org"}, "juliet@example.org\x00juliet\x00x"},
	}
	for _, tt := range tests {
		cl, err := NewClient(tt.mech, tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		cl.newNonce = func() string { return "N" }
		out, _, err := cl.Step(nil)
		if err != nil || string(out) != tt.want {
			t.Errorf("%s %+v: first message %q, %v; want %q", tt.mech, tt.cfg, out, err, tt.want)
		}
	}
	// Escaped names survive a round trip through the server's decoder.
	name, err := decodeSASLName(encodeSASLName("a,b=c=2C"))
	if err != nil || name != "a,b=c=2C" {
		t.Errorf("saslname round trip = %q, %v", name, err)
	}
}

// TestSaltCache checks that a cached client skips PBKDF2 on the second
// login, stays correct, and stays within its bound.
func TestSaltCache(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "juliet", "secret", "romeo", "secret")
	cache := NewSaltCache(1)
	login := func(user, password string) error {
		srv, _ := NewServer("SCRAM-SHA-512", ServerConfig{Lookup: st.lookup})
		cl, err := NewClient("SCRAM-SHA-512", ClientConfig{Username: user, Password: password, Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return exchange(ctx, srv, cl)
	}
	for i := range 3 {
		if err := login("juliet", "secret"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	if cache.Len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", cache.Len())
	}
	// A wrong password must not hit the entry of the right one.
	if err := login("juliet", "wrong"); failureOf(err) != NotAuthorized {
		t.Fatalf("wrong password with cache: %v", err)
	}
	if err := login("romeo", "secret"); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 1 {
		t.Errorf("cache grew past its bound: %d", cache.Len())
	}
	var zero SaltCache
	zero.put(SHA1, "p", []byte("s"), 1, keys{})
	if _, ok := zero.get(SHA1, "p", []byte("s"), 1); !ok || zero.Len() != 1 {
		t.Error("zero SaltCache unusable")
	}
	if _, ok := zero.get(SHA1, "p", []byte("s"), 2); ok {
		t.Error("cache ignores the iteration count")
	}
}

// TestCredentials checks derivation, preparation and PLAIN verification.
func TestCredentials(t *testing.T) {
	cs, err := NewCredentials("pass wörd", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("%d credentials", len(cs))
	}
	for i, c := range cs {
		if c.Hash != Hashes()[i] || c.Iterations != DefaultIterations || len(c.Salt) != SaltSize || c.Validate() != nil {
			t.Errorf("credentials %d: %+v", i, c)
		}
		if !VerifyPlain(c, "pass wörd") {
			t.Errorf("%s: right password refused", c.Hash)
		}
		// OpaqueString maps non-ASCII spaces to ASCII and applies NFC.
		if !VerifyPlain(c, "pass\u00a0wo\u0308rd") {
			t.Errorf("%s: equivalent password refused", c.Hash)
		}
		for _, bad := range []string{"pass word", "Pass wörd", "", "pass wörd\x00"} {
			if VerifyPlain(c, bad) {
				t.Errorf("%s: %q accepted", c.Hash, bad)
			}
		}
		broken := c
		broken.Iterations = 0
		if VerifyPlain(broken, "pass wörd") {
			t.Errorf("%s: invalid credentials accepted", c.Hash)
		}
	}
	if cs[0].Salt[0] == cs[1].Salt[0] && string(cs[0].Salt) == string(cs[1].Salt) {
		t.Error("hashes share a salt")
	}
	for _, tt := range []struct {
		h    Hash
		pw   string
		salt []byte
		iter int
	}{
		{"MD5", "x", []byte("s"), 1},
		{SHA1, "x", nil, 1},
		{SHA1, "x", make([]byte, MaxSaltSize+1), 1},
		{SHA1, "x", []byte("s"), 0},
		{SHA1, "x", []byte("s"), MaxIterations + 1},
		{SHA1, "", []byte("s"), 1},
		{SHA1, strings.Repeat("x", MaxPasswordSize+1), []byte("s"), 1},
	} {
		if _, err := DeriveCredentials(tt.h, tt.pw, tt.salt, tt.iter); err == nil {
			t.Errorf("DeriveCredentials(%q, %q, %d bytes, %d) succeeded", tt.h, tt.pw, len(tt.salt), tt.iter)
		}
	}
	if _, err := NewCredentials("x", -1); err == nil {
		t.Error("NewCredentials with -1 iterations succeeded")
	}
}

// TestPrepareUsername checks the UsernameCaseMapped profile.
func TestPrepareUsername(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"juliet", "juliet", true},
		{"Juliet", "juliet", true},
		{"ＪＵＬＩＥＴ", "juliet", true}, // fullwidth is mapped to its decomposition
		{"ju liet", "", false},
		{"", "", false},
		{strings.Repeat("a", MaxUsernameSize+1), "", false},
	}
	for _, tt := range tests {
		got, err := PrepareUsername(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("PrepareUsername(%q) = %q, %v", tt.in, got, err)
		}
	}
}

// TestPayload checks the base64 and "=" rules of RFC 6120 §6.4.
func TestPayload(t *testing.T) {
	tests := []struct {
		text    string
		want    []byte
		wantErr string
	}{
		{"", nil, ""},
		{"=", []byte{}, ""},
		{"biws", []byte("n,,"), ""},
		{"AGp1bGlldABzZWNyZXQ=", []byte("\x00juliet\x00secret"), ""},
		{"b!ws", nil, IncorrectEncoding},
		{"==", nil, IncorrectEncoding},
		{"biw", nil, IncorrectEncoding},
		{strings.Repeat("A", maxEncodedPayload+4), nil, MalformedRequest},
	}
	for _, tt := range tests {
		got, err := DecodePayload([]byte(tt.text))
		if failureOf(err) != tt.wantErr || string(got) != string(tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("DecodePayload(%.20q) = %q, %v; want %q, %s", tt.text, got, err, tt.want, tt.wantErr)
		}
		if tt.wantErr == "" && tt.want != nil {
			enc := EncodePayload(tt.want)
			if enc != tt.text || string(AppendPayload([]byte("x"), tt.want)) != "x"+tt.text {
				t.Errorf("EncodePayload(%q) = %q, want %q", tt.want, enc, tt.text)
			}
		}
	}
}

// ExampleServer shows a whole SCRAM-SHA-256 exchange without TLS.
func ExampleServer() {
	creds, _ := NewCredentials("secret", 4096)
	srv, _ := NewServer("SCRAM-SHA-256", ServerConfig{
		Lookup: func(_ context.Context, user string, h Hash) (Credentials, error) {
			for _, c := range creds {
				if user == "juliet" && c.Hash == h {
					return c, nil
				}
			}
			return Credentials{}, ErrUnknownUser
		},
	})
	cl, _ := NewClient("SCRAM-SHA-256", ClientConfig{Username: "juliet", Password: "secret"})
	ctx := context.Background()
	msg, _, _ := cl.Step(nil)              // client-first-message, sent in <auth/>
	challenge, _, _ := srv.Step(ctx, msg)  // server-first-message, in <challenge/>
	msg, _, _ = cl.Step(challenge)         // client-final-message, in <response/>
	final, done, err := srv.Step(ctx, msg) // server-final-message, in <success/>
	_, verified, _ := cl.Step(final)       // the client checks the server's signature
	fmt.Println(done, err, verified, srv.Username())
	// Output: true <nil> true juliet
}
