package sasl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// scramFirst builds a client-first-message for user with a fixed nonce.
func scramFirst(gs2, user string) string { return gs2 + "n=" + user + ",r=abcdefgh" }

// TestFailureConditions drives the server into each RFC 6120 §6.5 condition
// it can produce.
func TestFailureConditions(t *testing.T) {
	ctx := context.Background()
	errStorage := errors.New("disk on fire")
	cbFunc := func(cbType string) ([]byte, bool) {
		if cbType == TLSExporter {
			return []byte("0123456789abcdef0123456789abcdef"), true
		}
		return nil, false
	}
	tests := []struct {
		name     string
		mech     string
		cfg      func(*store) ServerConfig
		client   ClientConfig
		setup    func(*store)
		want     string
		wantText string
	}{
		{
			name:   "wrong password",
			mech:   "SCRAM-SHA-256",
			client: ClientConfig{Username: "juliet", Password: "wrong"},
			want:   NotAuthorized,
		},
		{
			name:   "unknown user",
			mech:   "SCRAM-SHA-256",
			client: ClientConfig{Username: "nobody", Password: "secret"},
			want:   NotAuthorized,
		},
		{
			name:   "PLAIN wrong password",
			mech:   Plain,
			client: ClientConfig{Username: "juliet", Password: "wrong"},
			want:   NotAuthorized,
		},
		{
			name:   "PLAIN unknown user",
			mech:   Plain,
			client: ClientConfig{Username: "nobody", Password: "secret"},
			want:   NotAuthorized,
		},
		{
			name:   "account disabled, right password",
			mech:   "SCRAM-SHA-1",
			client: ClientConfig{Username: "juliet", Password: "secret"},
			setup:  func(s *store) { s.errs["juliet"] = fmt.Errorf("banned: %w", ErrAccountDisabled) },
			want:   AccountDisabled,
		},
		{
			name:   "account disabled, wrong password",
			mech:   "SCRAM-SHA-1",
			client: ClientConfig{Username: "juliet", Password: "guess"},
			setup:  func(s *store) { s.errs["juliet"] = ErrAccountDisabled },
			want:   NotAuthorized, // the condition is for the account's owner only
		},
		{
			name:   "account disabled without credentials",
			mech:   "SCRAM-SHA-1",
			client: ClientConfig{Username: "romeo", Password: "secret"},
			setup:  func(s *store) { s.errs["romeo"] = ErrAccountDisabled },
			want:   NotAuthorized,
		},
		{
			name:   "credentials expired",
			mech:   Plain,
			client: ClientConfig{Username: "juliet", Password: "secret"},
			setup:  func(s *store) { s.errs["juliet"] = ErrCredentialsExpired },
			want:   CredentialsExpired,
		},
		{
			name:   "mechanism too weak",
			mech:   "SCRAM-SHA-1",
			client: ClientConfig{Username: "juliet", Password: "secret"},
			setup: func(s *store) {
				s.creds["juliet"] = s.creds["juliet"][:2] // SHA-512 and SHA-256 only
				s.errs["juliet"] = ErrMechanismTooWeak
			},
			want: MechanismTooWeak,
		},
		{
			name:   "storage failure",
			mech:   "SCRAM-SHA-512",
			client: ClientConfig{Username: "juliet", Password: "secret"},
			setup:  func(s *store) { s.errs["juliet"] = errStorage },
			want:   TemporaryAuthFailure,
		},
		{
			name:   "corrupt stored credentials",
			mech:   "SCRAM-SHA-512",
			client: ClientConfig{Username: "juliet", Password: "secret"},
			setup:  func(s *store) { s.creds["juliet"][0].StoredKey = []byte("short") },
			want:   TemporaryAuthFailure,
		},
		{
			name:   "authzid without policy",
			mech:   "SCRAM-SHA-256",
			client: ClientConfig{Username: "juliet", Password: "secret", Authzid: "juliet@example.org"},
			want:   InvalidAuthzid,
		},
		{
			name: "authzid refused by policy",
			mech: Plain,
			cfg: func(s *store) ServerConfig {
				return ServerConfig{Lookup: s.lookup, TLS: true, Authorize: func(context.Context, string, string) error {
					return errors.New("no")
				}}
			},
			client: ClientConfig{Username: "juliet", Password: "secret", Authzid: "romeo@example.org"},
			want:   InvalidAuthzid,
		},
		{
			name: "policy returns its own failure",
			mech: "SCRAM-SHA-256",
			cfg: func(s *store) ServerConfig {
				return ServerConfig{Lookup: s.lookup, Authorize: func(context.Context, string, string) error {
					return &Failure{Condition: AccountDisabled, Text: "ask the admin"}
				}}
			},
			client:   ClientConfig{Username: "juliet", Password: "secret", Authzid: "juliet@example.org"},
			want:     AccountDisabled,
			wantText: "ask the admin",
		},
		{
			name: "downgrade: client could bind, server offered -PLUS",
			mech: "SCRAM-SHA-256",
			cfg: func(s *store) ServerConfig {
				return ServerConfig{Lookup: s.lookup, ChannelBinding: cbFunc, AdvertisedPlus: true}
			},
			client: ClientConfig{Username: "juliet", Password: "secret", ChannelBinding: cbFunc},
			want:   NotAuthorized,
		},
		{
			name: "unsupported channel-binding type",
			mech: "SCRAM-SHA-256-PLUS",
			cfg: func(s *store) ServerConfig {
				return ServerConfig{Lookup: s.lookup, ChannelBinding: cbFunc, AdvertisedPlus: true}
			},
			client: ClientConfig{Username: "juliet", Password: "secret", CBType: "tls-unique",
				ChannelBinding: func(string) ([]byte, bool) { return []byte("x"), true }},
			want: NotAuthorized,
		},
		{
			name: "channel-binding data differs (man in the middle)",
			mech: "SCRAM-SHA-256-PLUS",
			cfg: func(s *store) ServerConfig {
				return ServerConfig{Lookup: s.lookup, ChannelBinding: cbFunc, AdvertisedPlus: true}
			},
			client: ClientConfig{Username: "juliet", Password: "secret",
				ChannelBinding: func(string) ([]byte, bool) { return []byte("another TLS session"), true }},
			want: NotAuthorized,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t, "juliet", "secret")
			if tt.setup != nil {
				tt.setup(st)
			}
			cfg := ServerConfig{Lookup: st.lookup, TLS: true}
			if tt.cfg != nil {
				cfg = tt.cfg(st)
			}
			srv, err := NewServer(tt.mech, cfg)
			if err != nil {
				t.Fatalf("NewServer: %v", err)
			}
			cl, err := NewClient(tt.mech, tt.client)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			err = exchange(ctx, srv, cl)
			if got := failureOf(err); got != tt.want {
				t.Fatalf("exchange error %v, want condition %s", err, tt.want)
			}
			var f *Failure
			errors.As(err, &f)
			if tt.wantText != "" && f.Text != tt.wantText {
				t.Errorf("text %q, want %q", f.Text, tt.wantText)
			}
			if tt.want == TemporaryAuthFailure && f.Unwrap() == nil {
				t.Errorf("temporary-auth-failure lost its cause")
			}
			if tt.name == "storage failure" && !errors.Is(err, errStorage) {
				t.Errorf("cause not wrapped: %v", err)
			}
			// The exchange is over: any further step fails.
			if _, _, err := srv.Step(ctx, []byte("n,,n=juliet,r=x")); failureOf(err) != MalformedRequest {
				t.Errorf("step after failure: %v", err)
			}
		})
	}
}

// TestNewServerFailures covers the conditions decided before any data.
func TestNewServerFailures(t *testing.T) {
	st := newStore(t)
	cb := func(string) ([]byte, bool) { return nil, false }
	tests := []struct {
		mech string
		cfg  ServerConfig
		want string
	}{
		{"DIGEST-MD5", ServerConfig{Lookup: st.lookup}, InvalidMechanism},
		{"scram-sha-256", ServerConfig{Lookup: st.lookup}, InvalidMechanism},
		{"SCRAM-SHA-384", ServerConfig{Lookup: st.lookup}, InvalidMechanism},
		{"SCRAM-SHA-256-PLUS", ServerConfig{Lookup: st.lookup}, InvalidMechanism}, // no TLS
		{"SCRAM-SHA-256-PLUS", ServerConfig{Lookup: st.lookup, TLS: true}, InvalidMechanism},
		{Plain, ServerConfig{Lookup: st.lookup}, EncryptionRequired},
		{Plain, ServerConfig{Lookup: st.lookup, ChannelBinding: cb}, ""},
		{Plain, ServerConfig{Lookup: st.lookup, TLS: true}, ""},
		{"SCRAM-SHA-1-PLUS", ServerConfig{Lookup: st.lookup, ChannelBinding: cb}, ""},
	}
	for _, tt := range tests {
		_, err := NewServer(tt.mech, tt.cfg)
		if got := failureOf(err); got != tt.want || (tt.want == "" && err != nil) {
			t.Errorf("NewServer(%q) = %v, want %q", tt.mech, err, tt.want)
		}
	}
	for _, cfg := range []ServerConfig{
		{},
		{Lookup: st.lookup, FakeIterations: -1},
		{Lookup: st.lookup, FakeIterations: MaxIterations + 1},
		{Lookup: st.lookup, PlainHash: "MD5"},
	} {
		if _, err := NewServer("SCRAM-SHA-1", cfg); err == nil || failureOf(err) != "" {
			t.Errorf("NewServer with bad config %+v: %v", cfg, err)
		}
	}
}

// TestAbort checks that an aborted exchange cannot continue.
func TestAbort(t *testing.T) {
	st := newStore(t, "juliet", "secret")
	srv, err := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: st.lookup})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := srv.Step(ctx, []byte(scramFirst("n,,", "juliet"))); err != nil {
		t.Fatal(err)
	}
	if f := srv.Abort(); f.Condition != Aborted {
		t.Fatalf("Abort = %v", f)
	}
	if _, _, err := srv.Step(ctx, []byte("c=biws,r=abcdefgh,p=AAAA")); failureOf(err) != MalformedRequest {
		t.Errorf("step after abort: %v", err)
	}
}

// TestUnknownUser checks that an unknown user looks like a known one: a
// salt that is stable per name and per secret, the configured iteration
// count, and the same failure as a wrong password.
func TestUnknownUser(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "juliet", "secret")
	first := func(secret string, user string) serverFirst {
		t.Helper()
		srv, err := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: st.lookup, Secret: []byte(secret), FakeIterations: 64})
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := srv.Step(ctx, []byte(scramFirst("n,,", user)))
		if err != nil {
			t.Fatalf("unknown user rejected at the first step: %v", err)
		}
		sf, err := parseServerFirst(string(out))
		if err != nil {
			t.Fatal(err)
		}
		return sf
	}
	a1, a2 := first("s1", "nobody"), first("s1", "nobody")
	if string(a1.salt) != string(a2.salt) || a1.iterations != 64 || len(a1.salt) != SaltSize {
		t.Errorf("fake salt not stable: %x/%d vs %x/%d", a1.salt, a1.iterations, a2.salt, a2.iterations)
	}
	if a1.nonce == a2.nonce {
		t.Error("server nonce repeated")
	}
	if b := first("s1", "somebody"); string(b.salt) == string(a1.salt) {
		t.Error("two unknown users share a salt")
	}
	if c := first("s2", "nobody"); string(c.salt) == string(a1.salt) {
		t.Error("fake salt does not depend on the secret")
	}
	real := first("s1", "juliet")
	if len(real.salt) != len(a1.salt) || real.iterations != a1.iterations {
		t.Errorf("real %d/%d vs fake %d/%d salt/iterations differ in shape", len(real.salt), real.iterations, len(a1.salt), a1.iterations)
	}

	// Wrong password and unknown user end with identical failures.
	fail := func(user string) *Failure {
		srv, _ := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: st.lookup})
		cl, _ := NewClient("SCRAM-SHA-256", ClientConfig{Username: user, Password: "guess"})
		var f *Failure
		if !errors.As(exchange(ctx, srv, cl), &f) {
			t.Fatalf("%s: no failure", user)
		}
		return f
	}
	if a, b := fail("juliet"), fail("nobody"); *a != *b {
		t.Errorf("wrong password %+v, unknown user %+v", a, b)
	}
}

// TestMalformedClientFirst feeds broken client-first-messages to a server.
func TestMalformedClientFirst(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, mech, msg, want string
	}{
		{"empty initial response", "SCRAM-SHA-256", "", MalformedRequest},
		{"no GS2 header", "SCRAM-SHA-256", "n=juliet,r=abc", MalformedRequest},
		{"bad flag", "SCRAM-SHA-256", "x,,n=juliet,r=abc", MalformedRequest},
		{"flag without comma", "SCRAM-SHA-256", "n", MalformedRequest},
		{"incomplete header", "SCRAM-SHA-256", "n,", MalformedRequest},
		{"bad authzid attribute", "SCRAM-SHA-256", "n,b=x,n=juliet,r=abc", MalformedRequest},
		{"bad authzid escape", "SCRAM-SHA-256", "n,a=x=41,n=juliet,r=abc", MalformedRequest},
		{"empty authzid value", "SCRAM-SHA-256", "n,a=,n=juliet,r=abc", MalformedRequest},
		{"mandatory extension", "SCRAM-SHA-256", "n,,m=ext,n=juliet,r=abc", MalformedRequest},
		{"no username", "SCRAM-SHA-256", "n,,r=abc", MalformedRequest},
		{"empty username", "SCRAM-SHA-256", "n,,n=,r=abc", MalformedRequest},
		{"bad username escape", "SCRAM-SHA-256", "n,,n=jul=2Diet,r=abc", MalformedRequest},
		{"username not UTF-8", "SCRAM-SHA-256", "n,,n=jul\xffiet,r=abc", MalformedRequest},
		{"username with NUL", "SCRAM-SHA-256", "n,,n=jul\x00iet,r=abc", MalformedRequest},
		{"username fails PRECIS", "SCRAM-SHA-256", "n,,n=jul iet,r=abc", MalformedRequest},
		{"no nonce", "SCRAM-SHA-256", "n,,n=juliet", MalformedRequest},
		{"empty nonce", "SCRAM-SHA-256", "n,,n=juliet,r=", MalformedRequest},
		{"nonce with space", "SCRAM-SHA-256", "n,,n=juliet,r=a b", MalformedRequest},
		{"nonce too long", "SCRAM-SHA-256", "n,,n=juliet,r=" + strings.Repeat("a", maxNonceSize+1), MalformedRequest},
		{"bad extension", "SCRAM-SHA-256", "n,,n=juliet,r=abc,1=x", MalformedRequest},
		{"empty extension", "SCRAM-SHA-256", "n,,n=juliet,r=abc,", MalformedRequest},
		{"message too long", "SCRAM-SHA-256", "n,,n=juliet,r=abc,x=" + strings.Repeat("a", MaxMessageSize), MalformedRequest},
		{"bad cb name", "SCRAM-SHA-256-PLUS", "p=tls_exporter,,n=juliet,r=abc", MalformedRequest},
		{"n with -PLUS", "SCRAM-SHA-256-PLUS", "n,,n=juliet,r=abc", MalformedRequest},
		{"y with -PLUS", "SCRAM-SHA-256-PLUS", "y,,n=juliet,r=abc", MalformedRequest},
		{"p without -PLUS", "SCRAM-SHA-256", "p=tls-exporter,,n=juliet,r=abc", MalformedRequest},
		{"PLAIN one field", Plain, "juliet", MalformedRequest},
		{"PLAIN two fields", Plain, "\x00juliet", MalformedRequest},
		{"PLAIN four fields", Plain, "\x00juliet\x00secret\x00x", MalformedRequest},
		{"PLAIN empty password", Plain, "\x00juliet\x00", MalformedRequest},
		{"PLAIN empty user", Plain, "\x00\x00secret", MalformedRequest},
		{"PLAIN field too long", Plain, "\x00juliet\x00" + strings.Repeat("s", 256), MalformedRequest},
		{"PLAIN not UTF-8", Plain, "\x00juliet\x00s\xffs", IncorrectEncoding},
		{"PLAIN empty", Plain, "", MalformedRequest},
	}
	cb := func(string) ([]byte, bool) { return []byte("data"), true }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t, "juliet", "secret")
			srv, err := NewServer(tt.mech, ServerConfig{Lookup: st.lookup, ChannelBinding: cb})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = srv.Step(ctx, []byte(tt.msg))
			if got := failureOf(err); got != tt.want {
				t.Errorf("Step(%q) = %v, want %s", tt.msg, err, tt.want)
			}
			if st.calls != 0 {
				t.Errorf("malformed message reached the store")
			}
		})
	}
}

// TestMalformedClientFinal feeds broken client-final-messages to a server
// that accepted a good client-first-message "n,,n=juliet,r=abcdefgh".
func TestMalformedClientFinal(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "juliet", "secret")
	start := func(t *testing.T) (*Server, string) {
		srv, err := NewServer("SCRAM-SHA-1", ServerConfig{Lookup: st.lookup})
		if err != nil {
			t.Fatal(err)
		}
		srv.newNonce = func() string { return "SRV" }
		if _, _, err := srv.Step(ctx, []byte(scramFirst("n,,", "juliet"))); err != nil {
			t.Fatal(err)
		}
		return srv, "abcdefghSRV"
	}
	proof := b64.EncodeToString(make([]byte, 20))
	tests := []struct {
		name, msg, want string
	}{
		{"empty", "", MalformedRequest},
		{"no proof", "c=biws,r=abcdefghSRV", MalformedRequest},
		{"proof not base64", "c=biws,r=abcdefghSRV,p=!!!!", IncorrectEncoding},
		{"proof empty", "c=biws,r=abcdefghSRV,p=", IncorrectEncoding},
		{"proof wrong length", "c=biws,r=abcdefghSRV,p=AAAA", MalformedRequest},
		{"attribute after proof", "c=biws,r=abcdefghSRV,p=" + proof + ",x=y", MalformedRequest},
		{"no channel binding", "r=abcdefghSRV,p=" + proof, MalformedRequest},
		{"channel binding not base64", "c=bi*s,r=abcdefghSRV,p=" + proof, IncorrectEncoding},
		{"non-canonical base64", "c=bix=,r=abcdefghSRV,p=" + proof, IncorrectEncoding},
		{"channel binding differs from header", "c=eSws,r=abcdefghSRV,p=" + proof, NotAuthorized},
		{"extra binding data", "c=" + b64.EncodeToString([]byte("n,,x")) + ",r=abcdefghSRV,p=" + proof, NotAuthorized},
		{"no nonce", "c=biws,p=" + proof, MalformedRequest},
		{"wrong nonce", "c=biws,r=abcdefghSRX,p=" + proof, MalformedRequest},
		{"client nonce only", "c=biws,r=abcdefgh,p=" + proof, MalformedRequest},
		{"bad extension", "c=biws,r=abcdefghSRV,=x,p=" + proof, MalformedRequest},
		{"wrong proof", "c=biws,r=abcdefghSRV,p=" + proof, NotAuthorized},
		{"wrong proof with extension", "c=biws,r=abcdefghSRV,x=y,p=" + proof, NotAuthorized},
		{"too long", "c=biws,r=abcdefghSRV,x=" + strings.Repeat("y", MaxMessageSize) + ",p=" + proof, MalformedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := start(t)
			_, _, err := srv.Step(ctx, []byte(tt.msg))
			if got := failureOf(err); got != tt.want {
				t.Errorf("Step(%q) = %v, want %s", tt.msg, err, tt.want)
			}
		})
	}
}

// TestNoInitialResponse checks the empty challenge sent when <auth/> carried
// no data, and that it is sent only once.
func TestNoInitialResponse(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "juliet", "secret")
	for _, mech := range []string{"SCRAM-SHA-256", Plain} {
		srv, err := NewServer(mech, ServerConfig{Lookup: st.lookup, TLS: true})
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := srv.Step(ctx, nil)
		if err != nil || done || out == nil || len(out) != 0 {
			t.Fatalf("%s: first Step(nil) = %q, %v, %v; want an empty challenge", mech, out, done, err)
		}
		cl, _ := NewClient(mech, ClientConfig{Username: "juliet", Password: "secret"})
		if err := exchange(ctx, srv, cl); err != nil {
			t.Errorf("%s: exchange after empty challenge: %v", mech, err)
		}

		srv, _ = NewServer(mech, ServerConfig{Lookup: st.lookup, TLS: true})
		srv.Step(ctx, nil)
		if _, _, err := srv.Step(ctx, nil); failureOf(err) != MalformedRequest {
			t.Errorf("%s: second empty response: %v", mech, err)
		}
	}
}

// TestFailureXML checks the <failure/> element.
func TestFailureXML(t *testing.T) {
	tests := []struct {
		f    Failure
		want string
	}{
		{Failure{Condition: NotAuthorized}, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"},
		{Failure{Condition: Aborted, Text: "a<b & 'c'"}, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/><text xml:lang='en'>a&lt;b &amp; &apos;c&apos;</text></failure>"},
		{Failure{Condition: "bogus"}, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"},
	}
	for _, tt := range tests {
		if got := string(tt.f.AppendXML(nil)); got != tt.want {
			t.Errorf("AppendXML(%+v) = %s, want %s", tt.f, got, tt.want)
		}
	}
	f := &Failure{Condition: TemporaryAuthFailure, Text: "later", cause: errors.New("db down")}
	if got := f.Error(); got != "sasl: temporary-auth-failure: later: db down" {
		t.Errorf("Error() = %q", got)
	}
}
