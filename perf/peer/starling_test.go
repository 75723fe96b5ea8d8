package peer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStarlingMeterConfig(t *testing.T) {
	base := NewStarling(Options{Dir: t.TempDir()}, "", "", 28222, 28223)
	base.HTTPPort = 28280
	tests := []struct {
		meter   Meter
		name    string
		want    []string
		notWant []string
	}{
		{MeterDefault, "starling", []string{"'cm-traffic-throttling' = 'xmpp:0:0:disc,bin:0:0:disc'", "port = 28280"}, []string{"'none'"}},
		{MeterEBPF, "starling", []string{"'cm-traffic-throttling' = 'xmpp:0:0:disc,bin:0:0:disc'"}, []string{"'none'"}},
		{MeterUserspace, "starling-userspace", []string{"'cm-traffic-throttling' = 'xmpp:0:0:disc,bin:0:0:disc'"}, []string{"'none'"}},
		{MeterNone, "starling-unmetered", []string{"'cm-traffic-throttling' = 'none'", "port = 28280"}, []string{"xmpp:0:0"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.meter), func(t *testing.T) {
			s := base.WithMeter(tc.meter)
			if s.Name() != tc.name || s.Meter() != tc.meter || s.HTTPPort != base.HTTPPort {
				t.Errorf("WithMeter(%q): name %q meter %q http %d", tc.meter, s.Name(), s.Meter(), s.HTTPPort)
			}
			if err := s.writeConfig(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(s.dir, "config.tdsl"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("config lacks %q:\n%s", w, b)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(b), w) {
					t.Errorf("config has %q:\n%s", w, b)
				}
			}
		})
	}
	// Without an HTTP listener the meter cannot be verified: refuse rather than mislabel.
	s := NewStarling(Options{Dir: t.TempDir()}, "", "/bin/true", 1, 2).WithMeter(MeterNone)
	if err := s.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP port") {
		t.Errorf("Check without an HTTP port = %v", err)
	}
}
