package config

import (
	"errors"
	"os"
	"testing"

	"github.com/starling-xmpp/starling/node/config/tdsl"
)

// FuzzParse checks that any text either loads or fails with positioned
// errors, and that warnings always point into the input.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"../../etc/starling.tdsl", "testdata/tigase-sample.tdsl"} {
		if src, err := os.ReadFile(path); err == nil {
			f.Add(src)
		}
	}
	for _, s := range []string{
		"'cluster-mode' = 'yes'",
		"c2s { connections { 5222 () { ifc = [ '127.0.0.1' ] } }, 'max-stanza-size' = '1m' }",
		"'cluster-nodes' = [ 'a:b:5277', 'c' ]\n'cl-comp' { connections { ports = [ 5300 ] } }",
		"http () { port = 5222 }",
		"dataSource { default () { uri = 'jdbc:postgresql://h/db?user=u&password=p' } }",
	} {
		f.Add([]byte(s))
	}
	opts := tdsl.Options{Env: func(string) (string, bool) { return "v", true }}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, warnings, err := Parse("fuzz", src, opts)
		for _, w := range warnings {
			if w.Pos.Offset < 0 || w.Pos.Offset > len(src) || w.Pos.Line < 1 {
				t.Fatalf("warning outside the input: %s", w)
			}
		}
		if err != nil {
			var e *tdsl.Error
			if !errors.As(err, &e) {
				t.Fatalf("error without position: %v", err)
			}
			if e.Pos.Offset < 0 || e.Pos.Offset > len(src) || e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("error outside the input: %v", err)
			}
			_ = Caret(err)
			return
		}
		if c.DefaultVirtualHost == "" || len(c.VirtualHosts) == 0 || c.VirtualHosts[0] != c.DefaultVirtualHost {
			t.Fatalf("virtual hosts inconsistent: %q %q", c.DefaultVirtualHost, c.VirtualHosts)
		}
		for _, l := range append(append([]Listener{}, c.C2S.Listeners...), c.Cluster.Listeners...) {
			if l.Port < 1 || l.Port > 65535 || (l.Socket != SocketPlain && l.Socket != SocketTLS) {
				t.Fatalf("invalid listener %+v", l)
			}
		}
	})
}

func BenchmarkLoadReference(b *testing.B) {
	src, err := os.ReadFile("../../etc/starling.tdsl")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, _, err := Parse("starling.tdsl", src, tdsl.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
