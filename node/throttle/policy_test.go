package throttle

import (
	"errors"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/loader"
)

func TestParsePolicy(t *testing.T) {
	disc, drop := loader.ActionDisc, loader.ActionDrop
	tests := []struct {
		in   string
		want Policy
	}{
		// Tigase's documented cluster default and Starling's client default.
		{"xmpp:25k:0:disc,bin:200m:0:disc", Policy{XMPP: Rule{25600, 0, disc}, Bin: Rule{200 << 20, 0, disc}}},
		{"xmpp:2500:0:disc,bin:20m:0:disc", Policy{XMPP: Rule{2500, 0, disc}, Bin: Rule{20 << 20, 0, disc}}},
		{"bin:64k:0:disc", Policy{Bin: Rule{64 << 10, 0, disc}}},
		{"bin:1:2:drop", Policy{Bin: Rule{1, 2, drop}}},
		{"xmpp:0:0:drop", Policy{XMPP: Rule{0, 0, drop}}},
		{"bin:3K:7M:drop , xmpp:10:0:disc", Policy{XMPP: Rule{10, 0, disc}, Bin: Rule{3 << 10, 7 << 20, drop}}},
		{" bin:0:0:disc ", Policy{Bin: Rule{0, 0, disc}}},
		{"bin:0k:0m:disc", Policy{Bin: Rule{0, 0, disc}}},
	}
	for _, tt := range tests {
		got, err := ParsePolicy(tt.in)
		if err != nil {
			t.Errorf("ParsePolicy(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePolicy(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		in     string
		entry  int
		column int
		msg    string
	}{
		{"", 1, 1, "empty setting"},
		{"   ", 1, 1, "empty setting"},
		{"xmpp:25k:0:disc,", 2, 17, "empty entry"},
		{",bin:1:0:disc", 1, 1, "empty entry"},
		{"xmpp:25k:0:disc,,bin:1:0:disc", 2, 17, "empty entry"},
		{"bin:1:0", 1, 1, "3 fields"},
		{"bin:1:0:disc:x", 1, 1, "5 fields"},
		{"xmpp:1:0:disc, tcp:1:0:disc", 2, 16, `type "tcp"`},
		{"BIN:1:0:disc", 1, 1, `type "BIN"`},
		{"bin::0:disc", 1, 5, "max-per-minute"},
		{"bin:k:0:disc", 1, 5, "max-per-minute"},
		{"bin:-1:0:disc", 1, 5, "max-per-minute"},
		{"bin:+1:0:disc", 1, 5, "max-per-minute"},
		{"bin:1.5m:0:disc", 1, 5, "max-per-minute"},
		{"bin:1g:0:disc", 1, 5, "max-per-minute"},
		{"bin: 1:0:disc", 1, 5, "max-per-minute"},
		{"bin:1:x:disc", 1, 7, "max-lifetime"},
		{"bin:1:0:kick", 1, 9, `action "kick"`},
		{"bin:1:0:Disc", 1, 9, `action "Disc"`},
		{"bin:99999999999999999999:0:disc", 1, 5, "too large"},
		{"bin:9999999999999m:0:disc", 1, 5, "too large"},
		{"bin:1:0:disc,xmpp:1:0:drop,bin:2:0:drop", 3, 28, "type bin given again (first in entry 1)"},
	}
	for _, tt := range tests {
		_, err := ParsePolicy(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParsePolicy(%q): %v, want a SyntaxError", tt.in, err)
			continue
		}
		if se.Entry != tt.entry || se.Column != tt.column || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("ParsePolicy(%q): %v, want entry %d column %d mentioning %q", tt.in, err, tt.entry, tt.column, tt.msg)
		}
	}
}

func TestPolicyString(t *testing.T) {
	p, err := ParsePolicy("xmpp:25k:0:disc,bin:200m:1m:drop")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "xmpp:25600:0:disc,bin:209715200:1048576:drop"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	bp := p.BytePolicy()
	if bp != (loader.BytePolicy{PerWindow: 200 << 20, Lifetime: 1 << 20, Action: loader.ActionDrop}) {
		t.Errorf("BytePolicy() = %+v", bp)
	}
	if err := bp.Validate(); err != nil {
		t.Errorf("parsed policy refused by the loader: %v", err)
	}
	if (Policy{}).String() != "" || (Policy{}).Bin.Set() {
		t.Error("zero Policy is not empty")
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"xmpp:25k:0:disc,bin:200m:0:disc", "bin:64k:0:drop", "", ",", "bin:1:0:disc,bin:1:0:disc",
		"xmpp:18446744073709551615:0:disc", " xmpp:1k:1m:drop , bin:0:0:disc ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a SyntaxError", err)
			}
			if se.Entry < 1 || se.Column < 1 || se.Column > len(s)+1 {
				t.Fatalf("error %v points outside %q", err, s)
			}
			return
		}
		if !p.XMPP.Set() && !p.Bin.Set() {
			t.Fatalf("%q parsed to an empty policy", s)
		}
		if err := p.BytePolicy().Validate(); err != nil {
			t.Fatalf("%q: loader refuses %+v: %v", s, p.BytePolicy(), err)
		}
		back, err := ParsePolicy(p.String())
		if err != nil || back != p {
			t.Fatalf("%q -> %q -> %+v, %v", s, p.String(), back, err)
		}
	})
}
