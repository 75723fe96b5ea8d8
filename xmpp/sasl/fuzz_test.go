package sasl

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fuzzStore returns a lookup knowing "user" (password "pencil") at a tiny
// iteration count, so fuzzing spends its time in the parsers.
func fuzzStore(f *testing.F) Lookup {
	cs, err := NewCredentials("pencil", 1)
	if err != nil {
		f.Fatal(err)
	}
	return func(_ context.Context, u string, h Hash) (Credentials, error) {
		for _, c := range cs {
			if u == "user" && c.Hash == h {
				return c, nil
			}
		}
		return Credentials{}, ErrUnknownUser
	}
}

// checkFailure fails the test unless err is a *Failure with a known
// condition.
func checkFailure(t *testing.T, err error) {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) || !knownCondition(f.Condition) {
		t.Fatalf("error %v is not a SASL failure", err)
	}
}

// FuzzServer feeds arbitrary client-first-messages (and PLAIN messages) to
// the server: it must never panic, must answer with a well-formed
// server-first-message or a SASL failure, and must keep its answer bounded.
func FuzzServer(f *testing.F) {
	for _, s := range []string{
		"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"y,,n=user,r=abc",
		"p=tls-exporter,,n=user,r=abc",
		"p=tls-server-end-point,a=admin,n=user,r=abc,x=ext",
		"n,a=a=2Cb=3D,n=us=2Cer,r=abc",
		"n,,m=x,n=user,r=abc",
		"n,,n=user,r=abc,",
		"\x00user\x00pencil",
		"admin\x00user\x00pencil",
		"",
	} {
		f.Add(s)
	}
	lookup := fuzzStore(f)
	cb := func(t string) ([]byte, bool) { return []byte("binding"), t == TLSExporter }
	f.Fuzz(func(t *testing.T, msg string) {
		ctx := context.Background()
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", Plain} {
			srv, err := NewServer(mech, ServerConfig{Lookup: lookup, ChannelBinding: cb, AdvertisedPlus: true, FakeIterations: 1})
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := srv.Step(ctx, []byte(msg))
			if err != nil {
				checkFailure(t, err)
				continue
			}
			if mech == Plain {
				if !done && len(msg) > 0 {
					t.Fatalf("PLAIN neither failed nor finished on %q", msg)
				}
				continue
			}
			if done || len(out) > MaxMessageSize {
				t.Fatalf("%s: bad answer %q (done %v) to %q", mech, out, done, msg)
			}
			sf, perr := parseServerFirst(string(out))
			if perr != nil {
				t.Fatalf("%s: server-first %q does not parse: %v", mech, out, perr)
			}
			cf, ferr := parseClientFirst(msg)
			if ferr != nil || !strings.HasPrefix(sf.nonce, cf.nonce) {
				t.Fatalf("%s: accepted %q (%v) and answered nonce %q", mech, msg, ferr, sf.nonce)
			}
		}
	})
}

// FuzzServerFinal feeds arbitrary client-final-messages to a server that
// accepted a valid client-first-message. Without the password no input may
// succeed; every failure must be a SASL failure.
func FuzzServerFinal(f *testing.F) {
	for _, s := range []string{
		"c=biws,r=abcSRV,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"c=biws,r=abcSRV,x=y,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws,r=abcSRV,p=AAAA",
		"c=biws,r=abcSRV,p=",
		"c=biws,r=abcSRV",
		",p=,p=,p=",
		"",
	} {
		f.Add(s)
	}
	lookup := fuzzStore(f)
	f.Fuzz(func(t *testing.T, msg string) {
		ctx := context.Background()
		for _, user := range []string{"user", "unknown"} {
			srv, err := NewServer("SCRAM-SHA-1", ServerConfig{Lookup: lookup})
			if err != nil {
				t.Fatal(err)
			}
			srv.newNonce = func() string { return "SRV" }
			if _, _, err := srv.Step(ctx, []byte("n,,n="+user+",r=abc")); err != nil {
				t.Fatal(err)
			}
			out, done, err := srv.Step(ctx, []byte(msg))
			if err == nil || done || out != nil {
				t.Fatalf("client-final %q accepted without the password: %q %v %v", msg, out, done, err)
			}
			checkFailure(t, err)
		}
	})
}

// FuzzClient feeds arbitrary server messages to a client: it must never
// panic, and must not accept a server that did not prove the password.
func FuzzClient(f *testing.F) {
	f.Add("r=CLIENTxyz,s=QSXCR+Q6sek8bf92,i=1", "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
	f.Add("r=CLIENTxyz,s=QSXCR+Q6sek8bf92,i=1,x=1", "e=invalid-proof")
	f.Add("m=1,r=CLIENT", "v=")
	f.Fuzz(func(t *testing.T, first, final string) {
		cl, err := NewClient("SCRAM-SHA-1", ClientConfig{Username: "user", Password: "pencil"})
		if err != nil {
			t.Fatal(err)
		}
		cl.newNonce = func() string { return "CLIENT" }
		if _, _, err := cl.Step(nil); err != nil {
			t.Fatal(err)
		}
		if sf, err := parseServerFirst(first); err == nil && sf.iterations > 16 {
			return // keep PBKDF2 cheap; the parser already ran
		}
		out, _, err := cl.Step([]byte(first))
		if err != nil {
			return
		}
		if len(out) > MaxMessageSize {
			t.Fatalf("client-final of %d bytes", len(out))
		}
		want := "v=" + b64.EncodeToString(cl.verifier)
		_, done, err := cl.Step([]byte(final))
		if err == nil && (!done || final != want && !strings.HasPrefix(final, want+",")) {
			t.Fatalf("client accepted server-final %q", final)
		}
	})
}

// FuzzDecodePayload checks that payload decoding never panics and inverts
// EncodePayload.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"", "=", "biws", "b!ws", "===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		data, err := DecodePayload([]byte(text))
		if err != nil {
			checkFailure(t, err)
			return
		}
		if data == nil {
			return
		}
		back, err := DecodePayload([]byte(EncodePayload(data)))
		if err != nil || string(back) != string(data) {
			t.Fatalf("round trip of %q: %q, %v", data, back, err)
		}
	})
}
