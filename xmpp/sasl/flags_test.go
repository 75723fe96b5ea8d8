package sasl

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestChannelBindingFlags checks the GS2 flag rules of RFC 5802 §6 for each
// combination of what the client can do and what the server offered.
func TestChannelBindingFlags(t *testing.T) {
	ctx := context.Background()
	cb := func(t string) ([]byte, bool) { return []byte("exporter-bytes"), t == TLSExporter }
	tests := []struct {
		name           string
		mech           string
		clientCB       bool // the client has channel-binding data
		clientSawPlus  bool
		serverAdvPlus  bool
		wantFailure    string
		wantFirstBytes string
	}{
		{"plain SCRAM, no TLS", "SCRAM-SHA-256", false, false, false, "", "n,,"},
		{"client could bind, server cannot", "SCRAM-SHA-256", true, false, false, "", "y,,"},
		{"client could bind, -PLUS stripped", "SCRAM-SHA-256", true, false, true, NotAuthorized, "y,,"},
		{"client chose not to bind", "SCRAM-SHA-256", true, true, true, "", "n,,"},
		{"client cannot bind, server offered -PLUS", "SCRAM-SHA-256", false, false, true, "", "n,,"},
		{"bound", "SCRAM-SHA-256-PLUS", true, true, true, "", "p=tls-exporter,,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t, "juliet", "secret")
			srv, err := NewServer(tt.mech, ServerConfig{Lookup: st.lookup, ChannelBinding: cb, AdvertisedPlus: tt.serverAdvPlus})
			if err != nil {
				t.Fatal(err)
			}
			ccfg := ClientConfig{Username: "juliet", Password: "secret", PlusAdvertised: tt.clientSawPlus}
			if tt.clientCB {
				ccfg.ChannelBinding = cb
			}
			cl, err := NewClient(tt.mech, ccfg)
			if err != nil {
				t.Fatal(err)
			}
			if cl.gs2 != tt.wantFirstBytes {
				t.Errorf("GS2 header %q, want %q", cl.gs2, tt.wantFirstBytes)
			}
			if got := failureOf(exchange(ctx, srv, cl)); got != tt.wantFailure {
				t.Errorf("failure %q, want %q", got, tt.wantFailure)
			}
		})
	}
}

// TestLookupContext checks that a cancelled lookup is a temporary failure
// that keeps its cause.
func TestLookupContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv, err := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: func(ctx context.Context, _ string, _ Hash) (Credentials, error) {
		return Credentials{}, ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = srv.Step(ctx, []byte("n,,n=juliet,r=abc"))
	if failureOf(err) != TemporaryAuthFailure || !errors.Is(err, context.Canceled) {
		t.Fatalf("Step with cancelled context: %v", err)
	}
}

// TestSaltCacheConcurrent logs in from several goroutines sharing one
// cache, as the load generator does (run with -race).
func TestSaltCacheConcurrent(t *testing.T) {
	st := newStore(t, "juliet", "secret", "romeo", "montague")
	cache := NewSaltCache(8)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, pw := "juliet", "secret"
			if i%2 == 1 {
				user, pw = "romeo", "montague"
			}
			for range 5 {
				srv, _ := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: st.lookup})
				cl, _ := NewClient("SCRAM-SHA-256", ClientConfig{Username: user, Password: pw, Cache: cache})
				if err := exchange(context.Background(), srv, cl); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := cache.Len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
}

// TestChannelBindingFeature checks the XEP-0440 feature element.
func TestChannelBindingFeature(t *testing.T) {
	tests := []struct {
		types []string
		want  string
	}{
		{nil, ""},
		{[]string{TLSExporter, TLSServerEndPoint}, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/><channel-binding type='tls-server-end-point'/></sasl-channel-binding>"},
		{[]string{"bad'type", TLSExporter}, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/></sasl-channel-binding>"},
	}
	for _, tt := range tests {
		if got := string(AppendChannelBindingFeature(nil, tt.types)); got != tt.want {
			t.Errorf("AppendChannelBindingFeature(%v) = %s", tt.types, got)
		}
	}
}
