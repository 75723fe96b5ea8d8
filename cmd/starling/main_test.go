package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/loader"
	"github.com/starling-xmpp/starling/node/throttle"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "starling.tdsl")
	if err := os.WriteFile(p, []byte("'data-dir' = '"+dir+"'\n'default-virtual-host' = 'example.test'\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommands(t *testing.T) {
	cfg := writeConfig(t, "")
	steps := []struct {
		args    []string
		stdin   string
		wantErr string
		wantOut string
	}{
		{args: []string{"version"}, wantOut: "starling "},
		{args: []string{"help"}, wantOut: "starling user add JID"},
		{args: []string{}, wantErr: "bad usage"},
		{args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`},
		{args: []string{"user", "add", "alice@example.test", "--config", cfg, "--password", "pw1"}, wantOut: "alice@example.test: created"},
		{args: []string{"user", "add", "--config", cfg, "bob@example.test"}, stdin: "pw2\n", wantOut: "bob@example.test: created"},
		{args: []string{"user", "add", "alice@example.test", "--config", cfg, "--password", "x"}, wantErr: "already exists"},
		{args: []string{"user", "add", "not a jid@@", "--config", cfg, "--password", "x"}, wantErr: "account"},
		{args: []string{"user", "add", "carol@example.test", "--config", cfg}, stdin: "", wantErr: "password"},
		{args: []string{"user", "list", "--config", cfg}, wantOut: "alice@example.test\nbob@example.test\n"},
		{args: []string{"user", "passwd", "alice@example.test", "--config", cfg, "--password", "new"}, wantOut: "password changed"},
		{args: []string{"user", "passwd", "nobody@example.test", "--config", cfg, "--password", "new"}, wantErr: "not found"},
		{args: []string{"user", "del", "bob@example.test", "--config", cfg}, wantOut: "deleted"},
		{args: []string{"user", "list", "example.test", "--config", cfg}, wantOut: "alice@example.test\n"},
		{args: []string{"config", "check", cfg}, wantOut: "OK"},
		{args: []string{"config", "check", writeConfig(t, "'cluster-mode' = 'maybe'\n")}, wantErr: "configuration has errors", wantOut: ":3:"},
		{args: []string{"config", "check", writeConfig(t, "'no-such-key' = 1\n")}, wantOut: "warning:"},
		{args: []string{"config", "check", writeConfig(t, "'cm-ht-traffic-throttling' = 'xmpp:25k:0:disc,bin:200m:0:explode'\n")}, wantErr: "configuration has errors", wantOut: ":3:"},
		{args: []string{"throttle", "status", "--config", cfg}, wantErr: "no HTTP listener"},
	}
	for _, s := range steps {
		var out, errOut bytes.Buffer
		err := run(context.Background(), s.args, strings.NewReader(s.stdin), &out, &errOut)
		name := strings.Join(s.args, " ")
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Errorf("%s: err %v, want %q", name, err, s.wantErr)
			}
		} else if err != nil {
			t.Errorf("%s: %v (%s)", name, err, errOut.String())
		}
		if s.wantOut != "" && !strings.Contains(out.String(), s.wantOut) {
			t.Errorf("%s: output %q lacks %q", name, out.String(), s.wantOut)
		}
	}
}

func TestThrottleStatusTable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/throttle" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(throttle.Status{Mode: "ebpf", Window: "1m0s", Conns: []throttle.ConnStatus{{
			ID: 7, Listener: "c2s", Port: 5222, Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
			In: loader.DirStats{WindowBytes: 100, TotalBytes: 300}, Out: loader.DirStats{WindowBytes: 50, TotalBytes: 60},
			Stanzas: throttle.StanzaStats{Window: 3, Total: 9}, State: "ok",
		}}})
	}))
	defer srv.Close()
	var out bytes.Buffer
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := run(context.Background(), []string{"throttle", "status", "--http", addr}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mode: ebpf", "1 policed connections", "127.0.0.1:40000", "300", "c2s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"throttle", "status", "--http", "127.0.0.1:1"}, nil, &out, io.Discard); err == nil {
		t.Fatal("no error for a node that is not there")
	}
}
