package version

import (
	"encoding/xml"
	"runtime/debug"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
)

type query struct {
	Name    string  `xml:"query>name"`
	Version string  `xml:"query>version"`
	OS      *string `xml:"query>os"`
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		in         string
		typ, cond  string
		wantV      string
		wantOS     string
		checkQuery bool
	}{
		{"server", Options{Version: "1.2.3"}, "<iq type='get' id='1' to='example.com'><query xmlns='jabber:iq:version'/></iq>", "result", "", "1.2.3", "", true},
		{"os configured", Options{Version: "1.2.3", OS: "Linux <6>"}, "<iq type='get' id='1' to='example.com'><query xmlns='jabber:iq:version'/></iq>", "result", "", "1.2.3", "Linux <6>", true},
		{"build version", Options{}, "<iq type='get' id='1' to='example.com'><query xmlns='jabber:iq:version'/></iq>", "result", "", BuildVersion(debug.ReadBuildInfo), "", true},
		{"own account", Options{Version: "1"}, "<iq type='get' id='1'><query xmlns='jabber:iq:version'/></iq>", "error", "service-unavailable", "", "", false},
		{"other account", Options{Version: "1"}, "<iq type='get' id='1' to='bob@example.com'><query xmlns='jabber:iq:version'/></iq>", "error", "service-unavailable", "", "", false},
		{"set", Options{Version: "1"}, "<iq type='set' id='1' to='example.com'><query xmlns='jabber:iq:version'/></iq>", "error", "bad-request", "", "", false},
		{"wrong element", Options{Version: "1"}, "<iq type='get' id='1' to='example.com'><version xmlns='jabber:iq:version'/></iq>", "error", "service-unavailable", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := router.New(router.Options{Domains: []string{"example.com"}})
			Register(r, tt.opts)
			got := routertest.Bind(t, r, "alice@example.com/phone").Do(t, tt.in)
			if got.Type != tt.typ || got.Condition() != tt.cond || got.ID != "1" {
				t.Fatalf("reply %s: want type %q condition %q", got.Raw, tt.typ, tt.cond)
			}
			if !tt.checkQuery {
				return
			}
			var q query
			if err := xml.Unmarshal(got.Raw, &q); err != nil {
				t.Fatal(err)
			}
			if q.Name != "Starling" || q.Version != tt.wantV {
				t.Errorf("name %q version %q, want Starling %q", q.Name, q.Version, tt.wantV)
			}
			switch {
			case tt.wantOS == "" && q.OS != nil:
				t.Errorf("os %q announced though not configured", *q.OS)
			case tt.wantOS != "" && (q.OS == nil || *q.OS != tt.wantOS):
				t.Errorf("os %v, want %q", q.OS, tt.wantOS)
			}
		})
	}
}

func TestBuildVersion(t *testing.T) {
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no info", nil, false, "devel"},
		{"tagged", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}}, true, "v0.3.1"},
		{"devel without vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "devel"},
		{"revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}, true, "devel-0123456789ab"},
		{"dirty", &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}}, true, "devel-abc+dirty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BuildVersion(func() (*debug.BuildInfo, bool) { return tt.info, tt.ok })
			if got != tt.want {
				t.Errorf("BuildVersion = %q, want %q", got, tt.want)
			}
		})
	}
}
