package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/node/config/tdsl"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

func env(vars map[string]string) tdsl.Options {
	return tdsl.Options{Env: func(n string) (string, bool) { v, ok := vars[n]; return v, ok }}
}

func mustParse(t *testing.T, src string) (*Config, []Warning) {
	t.Helper()
	c, w, err := Parse("test.tdsl", []byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse:\n%s", Caret(err))
	}
	return c, w
}

func TestDefault(t *testing.T) {
	c := Default()
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"config-type", c.ConfigType, "default"},
		{"default host", c.DefaultVirtualHost, "localhost"},
		{"hosts", c.VirtualHosts, []string{"localhost"}},
		{"admins", len(c.Admins), 0},
		{"data dir", c.DataDir, "/var/lib/starling"},
		{"database", c.Database, Database{URI: "sqlite:/var/lib/starling/starling.db", Driver: DriverSQLite, DSN: "/var/lib/starling/starling.db"}},
		{"log level", c.LogLevel, slog.LevelInfo},
		{"node name", c.NodeName, host},
		{"cluster mode", c.ClusterMode, false},
		{"cluster nodes", len(c.ClusterNodes), 0},
		{"cluster listeners", c.Cluster.Listeners, []Listener{{Port: 5277, Ifc: []string{"*"}, Socket: SocketPlain}}},
		{"connections per node", c.Cluster.ConnectionsPerNode, 5},
		{"throttling", c.TrafficThrottling.Value, "xmpp:2500:0:disc,bin:20m:0:disc"},
		{"ht throttling", c.HTTrafficThrottling.Value, "xmpp:25k:0:disc,bin:200m:0:disc"},
		{"c2s listeners", c.C2S.Listeners, []Listener{
			{Port: 5222, Ifc: []string{"*"}, Socket: SocketPlain, TLSRequired: true},
			{Port: 5223, Ifc: []string{"*"}, Socket: SocketTLS, TLSRequired: true},
		}},
		{"see other host off", c.C2S.SeeOtherHost.Active, false},
		{"see other host strategy", c.C2S.SeeOtherHost.Strategy, SeeOtherHostHashed},
		{"max stanza", c.C2S.MaxStanzaSize, 256 * 1024},
		{"idle", c.C2S.IdleTimeout, 5 * time.Minute},
		{"ping", c.C2S.PingAfter, time.Minute},
		{"pending", c.C2S.MaxPendingOutput, 1 << 20},
		{"per ip", c.C2S.MaxConnectionsPerIP, 100},
		{"auth per conn", c.C2S.MaxAuthAttempts, 5},
		{"auth per ip", c.C2S.MaxAuthAttemptsPerIP, 30},
		{"resources per account", c.C2S.MaxResources, 64},
		{"resumption timeout", c.C2S.ResumptionTimeout, 5 * time.Minute},
		{"http off", c.HTTP.Enabled, false},
		{"http port", c.HTTP.Port, 5280},
		{"tls", c.TLS, TLS{}},
		{"registration off", c.Registration, false},
		{"offline limit", c.OfflineMessagesLimit, 1000},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	// An empty file is the default configuration.
	empty, w := mustParse(t, "# nothing\n")
	empty.File = ""
	if len(w) != 0 || !reflect.DeepEqual(empty, c) {
		t.Errorf("empty file differs from Default():\n%#v\n%#v", empty, c)
	}
}

// TestReferenceFile is the golden test for etc/starling.tdsl: it must load
// without a single warning and describe the documented single node.
func TestReferenceFile(t *testing.T) {
	c, warnings, err := Load("../../etc/starling.tdsl", env(nil))
	if err != nil {
		t.Fatalf("Load:\n%s", Caret(err))
	}
	for _, w := range warnings {
		t.Errorf("warning: %s", w)
	}
	want := []struct {
		name      string
		got, want any
	}{
		{"host", c.VirtualHosts, []string{"localhost"}},
		{"admins", c.Admins, []jid.JID{jid.MustParse("admin@localhost")}},
		{"data dir", c.DataDir, "data"},
		{"database", c.Database.DSN, "data/starling.db"},
		{"cluster off", c.ClusterMode, false},
		{"c2s", c.C2S.Listeners, []Listener{
			{Port: 5222, Ifc: []string{"*"}, Socket: SocketPlain, TLSRequired: true, Pos: c.C2S.Listeners[0].Pos},
			{Port: 5223, Ifc: []string{"*"}, Socket: SocketTLS, TLSRequired: true, Pos: c.C2S.Listeners[1].Pos},
		}},
		{"c2s addrs", c.C2S.Listeners[0].Addrs(), []string{":5222"}},
		{"http", c.HTTP.Enabled, true},
		{"http addrs", c.HTTP.Addrs(), []string{"127.0.0.1:5280"}},
		{"idle", c.C2S.IdleTimeout, 5 * time.Minute},
		{"ping", c.C2S.PingAfter, time.Minute},
		{"registration", c.Registration, false},
		{"see other host off without cluster", c.C2S.SeeOtherHost.Active, false},
	}
	for _, w := range want {
		if !reflect.DeepEqual(w.got, w.want) {
			t.Errorf("%s = %#v, want %#v", w.name, w.got, w.want)
		}
	}
	if c.C2S.Listeners[0].Pos.Line == 0 {
		t.Error("listener position not recorded")
	}
}

// TestTigaseSample loads a Tigase-style file: keys Starling does not know
// give warnings with their lines, never errors.
func TestTigaseSample(t *testing.T) {
	c, warnings, err := Load("testdata/tigase-sample.tdsl", env(nil))
	if err != nil {
		t.Fatalf("Load:\n%s", Caret(err))
	}
	got := map[string]Warning{}
	for _, w := range warnings {
		got[w.Key] = w
		if !strings.HasPrefix(w.String(), "testdata/tigase-sample.tdsl:") {
			t.Errorf("warning without file position: %s", w)
		}
	}
	wantKeys := map[string]int{ // key → line
		"debug":                        5,
		"dataSource/default/pool-size": 10,
		"cl-comp/connect-all":          19,
		"certificate-container":        29,
		"c2s/connections/5222/new-connections-throttling": 35,
		"c2s/urn:xmpp:sm:3":       42,
		"http/setup":              48,
		"pubsub":                  56,
		"muc":                     59,
		"sess-man":                60,
		"stats":                   65,
		"vhost-anonymous-enabled": 68,
	}
	for key, line := range wantKeys {
		w, ok := got[key]
		if !ok {
			t.Errorf("no warning for %s", key)
			continue
		}
		if w.Pos.Line != line {
			t.Errorf("warning for %s at line %d, want %d", key, w.Pos.Line, line)
		}
	}
	if len(got) != len(wantKeys) {
		for k, w := range got {
			if _, ok := wantKeys[k]; !ok {
				t.Errorf("unexpected warning: %s", w)
			}
		}
	}
	if w := got["certificate-container"]; !strings.Contains(w.Msg, "tls-cert-file") {
		t.Errorf("certificate-container warning lacks a hint: %s", w)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"admins", len(c.Admins), 2},
		{"cluster mode from string", c.ClusterMode, true},
		{"nodes", c.ClusterNodes, []ClusterNode{
			{Host: "node1.example.com", Password: "pass", Port: 5277, Pos: c.ClusterNodes[0].Pos},
			{Host: "node2.example.com", Password: "pass", Port: 5277, Pos: c.ClusterNodes[1].Pos},
			{Host: "node3.example.com", Port: 5277, Pos: c.ClusterNodes[2].Pos},
		}},
		{"node name", c.NodeName, "node1.example.com"},
		{"db", c.Database.Driver, DriverPostgres},
		{"see other host on", c.C2S.SeeOtherHost.Active, true},
		{"phases", c.C2S.SeeOtherHost.Phases, []string{"OPEN"}},
		{"c2s listeners kept", len(c.C2S.Listeners), 2},
		{"idle from c2s", c.C2S.IdleTimeout, 150 * time.Second},
		{"ping from top level string", c.C2S.PingAfter, 30 * time.Second},
		{"log", c.LogLevel, slog.LevelWarn},
		{"http on", c.HTTP.Enabled, true},
		{"ht throttle pos", c.HTTrafficThrottling.Pos.Line, 28},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(c *Config) any // returns got
		want  any
	}{
		{"virtual hosts", "'virtual-hosts' = [ 'a.example', 'B.example' ]", func(c *Config) any { return []any{c.DefaultVirtualHost, c.VirtualHosts} }, []any{"a.example", []string{"a.example", "b.example"}}},
		{"default host first", "'default-virtual-host' = 'z.example'\n'virtual-hosts' = [ 'a.example', 'z.example' ]", func(c *Config) any { return c.VirtualHosts }, []string{"z.example", "a.example"}},
		{"virtual hosts as comma string", "'virtual-hosts' = 'a.example, b.example'", func(c *Config) any { return c.VirtualHosts }, []string{"a.example", "b.example"}},
		{"admins", "admins = [ 'Admin@Example.com' ]", func(c *Config) any { return c.Admins[0].String() }, "admin@example.com"},
		{"config type setup", "'config-type' = 'setup'", func(c *Config) any { return c.ConfigType }, "setup"},
		{"data dir", "'data-dir' = '/srv/starling/'", func(c *Config) any { return []string{c.DataDir, c.Database.DSN} }, []string{"/srv/starling", "/srv/starling/starling.db"}},
		{"sqlite uri", "dataSource { default () { uri = 'sqlite:/tmp/x.db' } }", func(c *Config) any { return c.Database }, Database{URI: "sqlite:/tmp/x.db", Driver: DriverSQLite, DSN: "/tmp/x.db", Pos: tdsl.Pos{File: "test.tdsl", Line: 1, Col: 33, Offset: 32}}},
		{"postgres uri", "dataSource { default () { uri = 'postgres://u:p@h:5432/d' } }", func(c *Config) any { return []string{c.Database.Driver, c.Database.DSN} }, []string{DriverPostgres, "postgres://u:p@h:5432/d"}},
		{"postgres uri from env", "dataSource { default () { uri = 'postgresql://u:' + env('PW') + '@h/d' } }", func(c *Config) any { return c.Database.DSN }, "postgresql://u:pw@h/d"},
		{"log level slog name", "logging { rootLevel = 'debug' }", func(c *Config) any { return c.LogLevel }, slog.LevelDebug},
		{"log level java", "logging { rootLevel = 'SEVERE' }", func(c *Config) any { return c.LogLevel }, slog.LevelError},
		{"node name", "'dns-resolver' { 'tigase-primary-address' = 'n2.example' }", func(c *Config) any { return c.NodeName }, "n2.example"},
		{"cluster mode", "'cluster-mode' = true", func(c *Config) any { return []bool{c.ClusterMode, c.C2S.SeeOtherHost.Active} }, []bool{true, true}},
		{"cluster nodes default port from listener", "'cl-comp' { connections { ports = [ 5300 ] } }\n'cluster-nodes' = [ 'a', 'b:pw', 'c:pw:6000' ]",
			func(c *Config) any {
				var s []string
				for _, n := range c.ClusterNodes {
					s = append(s, fmt.Sprintf("%s|%s|%d", n.Host, n.Password, n.Port))
				}
				return s
			}, []string{"a||5300", "b|pw|5300", "c|pw|6000"}},
		{"cluster listeners", "'cl-comp' { connections { 5277 () { ifc = [ '10.0.0.1' ], socket = 'tls' } }, 'connections-per-node' = 2 }",
			func(c *Config) any {
				return []any{c.Cluster.Listeners[0].Ifc, c.Cluster.Listeners[0].Socket, c.Cluster.ConnectionsPerNode, c.ClusterAddr()}
			}, []any{[]string{"10.0.0.1"}, SocketTLS, 2, "10.0.0.1:5277"}},
		{"cluster addr falls back to node name", "'dns-resolver' { 'tigase-primary-address' = 'n1.example' }", func(c *Config) any { return c.ClusterAddr() }, "n1.example:5277"},
		{"two cluster ports", "'cl-comp' { connections { 5278 () {} } }", func(c *Config) any { return len(c.Cluster.Listeners) }, 2},
		{"ports list replaces defaults", "c2s { connections { ports = [ 5400 ] } }", func(c *Config) any { return c.C2S.Listeners[0].Port }, 5400},
		{"listener switched off", "c2s { connections { 5223 (active: false) {} } }", func(c *Config) any { return len(c.C2S.Listeners) }, 1},
		{"extra listener", "c2s { connections { 5224 () { socket = 'tls' } } }", func(c *Config) any { return len(c.C2S.Listeners) }, 3},
		{"c2s off", "c2s (active: false) {}", func(c *Config) any { return len(c.C2S.Listeners) }, 0},
		{"tls not required globally", "'vhost-tls-required' = false", func(c *Config) any { return []bool{c.C2S.Listeners[0].TLSRequired, c.C2S.Listeners[1].TLSRequired} }, []bool{false, true}},
		{"tls not required on one listener", "c2s { connections { 5222 () { 'tls-required' = false } } }", func(c *Config) any { return c.C2S.Listeners[0].TLSRequired }, false},
		{"ssl is tls", "c2s { connections { 5222 () { socket = ssl } } }", func(c *Config) any { return []any{c.C2S.Listeners[0].Socket, c.C2S.Listeners[0].TLSRequired} }, []any{SocketTLS, true}},
		{"throttling", "'cm-traffic-throttling' = 'xmpp:10:0:drop'", func(c *Config) any { return []any{c.TrafficThrottling.Value, c.TrafficThrottling.Pos} }, []any{"xmpp:10:0:drop", tdsl.Pos{File: "test.tdsl", Line: 1, Col: 27, Offset: 26}}},
		{"ht throttling", "'cm-ht-traffic-throttling' = 'bin:1m:0:drop'", func(c *Config) any { return c.HTTrafficThrottling.Value }, "bin:1m:0:drop"},
		{"see other host off", "'cluster-mode' = true\nc2s { seeOtherHost (active: false) {} }", func(c *Config) any { return c.C2S.SeeOtherHost.Active }, false},
		{"see other host class none", "'cluster-mode' = true\nc2s { seeOtherHost (class: none) {} }", func(c *Config) any { return c.C2S.SeeOtherHost.Active }, false},
		{"see other host least loaded", "c2s { seeOtherHost (class: 'least-loaded') { defaultHost = [ 'a.example' ] } }", func(c *Config) any {
			return []any{c.C2S.SeeOtherHost.Active, c.C2S.SeeOtherHost.Strategy, c.C2S.SeeOtherHost.DefaultHost}
		}, []any{true, SeeOtherHostLeastLoaded, []string{"a.example"}}},
		{"see other host active in body", "c2s { seeOtherHost { active = false } }", func(c *Config) any { return c.C2S.SeeOtherHost.Active }, false},
		{"xml limits", "c2s { 'max-stanza-size' = '64k', 'max-xml-depth' = 16, 'max-attributes' = 10, 'elements-number-limit' = 500 }", func(c *Config) any {
			return []int{c.C2S.MaxStanzaSize, c.C2S.MaxDepth, c.C2S.MaxAttributes, c.C2S.MaxElements}
		}, []int{65536, 16, 10, 500}},
		{"size in m", "c2s { 'max-pending-output' = '2m' }", func(c *Config) any { return c.C2S.MaxPendingOutput }, 2 << 20},
		{"watchdog in c2s", "c2s { watchdog_timeout = 120000L, watchdog_delay = 30000, watchdog_ping_type = 'XMPP' }", func(c *Config) any { return []any{c.C2S.IdleTimeout, c.C2S.PingAfter, c.C2S.PingType} }, []any{2 * time.Minute, 30 * time.Second, "xmpp"}},
		{"c2s overrides top level", "watchdog_timeout = 60000\nc2s { watchdog_timeout = 120000 }", func(c *Config) any { return c.C2S.IdleTimeout }, 2 * time.Minute},
		{"connection limits", "c2s { 'max-connections-per-ip' = 10, 'max-auth-attempts' = 3, 'max-auth-attempts-per-ip' = 12, 'max-resources-per-account' = 7 }", func(c *Config) any {
			return []int{c.C2S.MaxConnectionsPerIP, c.C2S.MaxAuthAttempts, c.C2S.MaxAuthAttemptsPerIP, c.C2S.MaxResources}
		}, []int{10, 3, 12, 7}},
		{"http default port", "http () {}", func(c *Config) any { return []any{c.HTTP.Enabled, c.HTTP.Addrs()} }, []any{true, []string{":5280"}}},
		{"http address", "http () { port = 8080, address = '::1' }", func(c *Config) any { return c.HTTP.Addrs() }, []string{"[::1]:8080"}},
		{"http inactive", "http (active: false) { port = 8080 }", func(c *Config) any { return c.HTTP.Enabled }, false},
		{"tls files", "'tls-cert-file' = 'c.pem'\n'tls-key-file' = 'k.pem'", func(c *Config) any { return c.TLS }, TLS{CertFile: "c.pem", KeyFile: "k.pem"}},
		{"registration", "'vhost-register-enabled' = true", func(c *Config) any { return c.Registration }, true},
		{"offline limit", "'offline-messages-limit' = 0", func(c *Config) any { return c.OfflineMessagesLimit }, 0},
		{"same port different ifc", "c2s { connections { 5222 () { ifc = [ '127.0.0.1' ] } } }\nhttp () { port = 5222, ifc = [ '127.0.0.2' ] }", func(c *Config) any { return c.HTTP.Port }, 5222},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, w, err := Parse("test.tdsl", []byte(tt.src), env(map[string]string{"PW": "pw"}))
			if err != nil {
				t.Fatalf("Parse:\n%s", Caret(err))
			}
			for _, x := range w {
				t.Errorf("unexpected warning: %s", x)
			}
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		pos  string // line:col of the first error
		msg  string
	}{
		{"syntax", "a = 1; b = 2", "1:6", "';' is not a separator"},
		{"cluster mode yes", "'cluster-mode' = 'yes'", "1:18", "'cluster-mode' must be true or false, found string 'yes'"},
		{"cluster mode number", "'cluster-mode' = 1", "1:18", "must be true or false, found integer 1"},
		{"config type", "'config-type' = 'weird'", "1:17", "is not one of"},
		{"bad host", "'default-virtual-host' = 'not a host'", "1:26", "is not a domain name"},
		{"host with local part", "'virtual-hosts' = [ 'u@example.com' ]", "1:21", "is not a domain name"},
		{"two default hosts", "'default-virtual-host' = 'a.example,b.example'", "1:26", "single domain"},
		{"admin not bare", "admins = [ 'a@example.com/res' ]", "1:12", "must be a bare JID"},
		{"admin without local", "admins = [ 'example.com' ]", "1:12", "must be a bare JID"},
		{"admin invalid", "admins = [ 'a@@b' ]", "1:12", "not a valid JID"},
		{"admins not list", "admins = 5", "1:10", "must be a list of strings"},
		{"admins item type", "admins = [ 'a@b.c', 5 ]", "1:21", "must be a list of strings, found integer 5"},
		{"jdbc postgres", "dataSource { default () { uri = 'jdbc:postgresql://db.example/tigase?user=t&password=p' } }", "1:33", "write 'postgresql://t:p@db.example/tigase'"},
		{"jdbc mysql", "dataSource { default () { uri = 'jdbc:mysql://localhost/tigasedb?user=tigase' } }", "1:33", "JDBC URL"},
		{"mongodb", "dataSource { default () { uri = 'mongodb://u:p@h/db' } }", "1:33", "is not supported"},
		{"sqlite empty", "dataSource { default () { uri = 'sqlite:' } }", "1:33", "names no file"},
		{"no uri", "dataSource { default () { } }", "1:14", "needs uri"},
		{"datasource off", "dataSource { default (active: false) { uri = 'sqlite:x' } }", "1:14", "cannot be switched off"},
		{"data source not map", "dataSource = 'x'", "1:14", "must be a block"},
		{"log level", "logging { rootLevel = 'LOUD' }", "1:23", "is not a level"},
		{"node name", "'dns-resolver' { 'tigase-primary-address' = 'a b' }", "1:45", "is not a host name"},
		{"cluster node port", "'cluster-nodes' = [ 'a:pw:99999' ]", "1:21", "port '99999' is not a number"},
		{"cluster node parts", "'cluster-nodes' = [ 'a:b:1:2' ]", "1:21", "is not host[:password[:port]]"},
		{"cluster node empty host", "'cluster-nodes' = [ ':pw:5277' ]", "1:21", "must not be empty"},
		{"cluster node twice", "'cluster-nodes' = [ 'a:x:5277',\n 'a:y:5277' ]", "2:2", "lists a:5277 twice (lines 1 and 2)"},
		{"connections per node", "'cl-comp' { 'connections-per-node' = 0 }", "1:38", "out of range [1, 64]"},
		{"listener port name", "c2s { connections { http () {} } }", "1:21", "named by its port number"},
		{"listener port range", "c2s { connections { 70000 () {} } }", "1:21", "named by its port number"},
		{"listener not map", "c2s { connections { 5222 = 1 } }", "1:28", "must be a block"},
		{"listener socket", "c2s { connections { 5222 () { socket = 'quic' } } }", "1:40", "is not one of 'plain', 'ssl', 'tls'"},
		{"listener ifc", "c2s { connections { 5222 () { ifc = [ 'not an address' ] } } }", "1:39", "is not an address"},
		{"listener ifc empty", "c2s { connections { 5222 () { ifc = [] } } }", "1:37", "at least one address"},
		{"ports not list", "c2s { connections { ports = 5222 } }", "1:29", "must be a list of port numbers"},
		{"ports entry", "c2s { connections { ports = [ 0 ] } }", "1:31", "out of range [1, 65535]"},
		{"tls-required type", "c2s { connections { 5222 () { 'tls-required' = 'no' } } }", "1:48", "must be true or false"},
		{"throttling empty", "'cm-traffic-throttling' = ''", "1:27", "must not be empty"},
		{"throttling type", "'cm-traffic-throttling' = 5", "1:27", "must be a string"},
		{"see other host class", "c2s { seeOtherHost (class: tigase.server.xmppclient.SeeOtherHostDualIP) {} }", "1:28", "is not supported"},
		{"see other host phase", "c2s { seeOtherHost () { phases = [ 'AUTHENTICATE' ] } }", "1:36", "is not one of 'OPEN', 'LOGIN'"},
		{"stanza size", "c2s { 'max-stanza-size' = '1q' }", "1:27", "must be a size"},
		{"stanza size range", "c2s { 'max-stanza-size' = '1g' }", "1:27", "must be a size"},
		{"stanza size too small", "c2s { 'max-stanza-size' = 10 }", "1:27", "out of range"},
		{"stanza size float", "c2s { 'max-stanza-size' = 1.5 }", "1:27", "must be an integer"},
		{"watchdog type", "c2s { watchdog_ping_type = 'icmp' }", "1:28", "'c2s/watchdog_ping_type' = 'icmp' is not one of"},
		{"watchdog not number", "watchdog_timeout = 'soon'", "1:20", "must be an integer"},
		{"http port", "http () { port = 'x' }", "1:18", "must be an integer"},
		{"http both ifc and address", "http () { ifc = [ '*' ]\n address = '127.0.0.1' }", "2:2", "either ifc or address"},
		{"tls half", "'tls-cert-file' = 'c.pem'", "1:1", "must be set together"},
		{"port clash", "http () { port = 5222 }", "1:1", "port 5222 is used by both c2s and http"},
		{"cluster port clash", "'cluster-mode' = true\n'cl-comp' { connections { 5222 () {} } }", "2:27", "port 5222 is used by both c2s and cl-comp"},
		{"offline limit negative", "'offline-messages-limit' = -1", "1:28", "out of range"},
		{"env missing", "dataSource { default () { uri = env('NOPE') } }", "1:33", "environment variable NOPE is not set"},
		{"bean active not bool", "c2s { seeOtherHost { active = 'maybe' } }", "1:31", "must be true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("test.tdsl", []byte(tt.src), env(nil))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.msg)
			}
			var e *tdsl.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v holds no *tdsl.Error", err)
			}
			if got := fmt.Sprintf("%d:%d", e.Pos.Line, e.Pos.Col); got != tt.pos {
				t.Errorf("position %s, want %s: %v", got, tt.pos, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err.Error(), tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "test.tdsl:") {
				t.Errorf("error %q lacks the file name", err.Error())
			}
			if c := Caret(err); !strings.Contains(c, "^") {
				t.Errorf("Caret form has no caret:\n%s", c)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	src := "'cluster-mode' = 'yes'\nadmins = [ 'bad' ]\nc2s { 'max-xml-depth' = 'deep' }\n"
	_, _, err := Parse("multi.tdsl", []byte(src), env(nil))
	if err == nil {
		t.Fatal("want errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 errors, got %d:\n%v", len(lines), err)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("multi.tdsl:%d:", i+1); !strings.HasPrefix(l, want) {
			t.Errorf("error %d = %q, want prefix %q", i, l, want)
		}
	}
	want := "multi.tdsl:1:18: 'cluster-mode' must be true or false, found string 'yes'\n'cluster-mode' = 'yes'\n                 ^"
	if got := strings.SplitN(Caret(err), "\nmulti.tdsl:2", 2)[0]; got != want {
		t.Errorf("Caret:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, _, err := Load("testdata/does-not-exist.tdsl", tdsl.Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
}

func TestListenerAddrs(t *testing.T) {
	tests := []struct {
		l    Listener
		want []string
	}{
		{Listener{Port: 5222, Ifc: []string{"*"}}, []string{":5222"}},
		{Listener{Port: 5222}, []string{":5222"}},
		{Listener{Port: 5277, Ifc: []string{"127.0.0.2", "::1"}}, []string{"127.0.0.2:5277", "[::1]:5277"}},
		{Listener{Port: 1, Ifc: []string{"node.example"}}, []string{"node.example:1"}},
	}
	for _, tt := range tests {
		if got := tt.l.Addrs(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%+v.Addrs() = %v, want %v", tt.l, got, tt.want)
		}
	}
}

func TestWarningsForUnknownKeys(t *testing.T) {
	src := "'cluster-mod' = true\nc2s {\n  'max-stanza-sise' = 1\n}\n'cl-comp' { connections { 5277 () { type = 'connect' } } }\n"
	_, w, err := Parse("w.tdsl", []byte(src), env(nil))
	if err != nil {
		t.Fatal(Caret(err))
	}
	want := []string{
		"w.tdsl:1:1: unknown key 'cluster-mod' is ignored",
		"w.tdsl:3:3: unknown key 'c2s/max-stanza-sise' is ignored",
		"w.tdsl:5:37: unknown key 'cl-comp/connections/5277/type' is ignored: Starling listeners only accept connections",
	}
	var got []string
	for _, x := range w {
		got = append(got, x.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWarningCaret(t *testing.T) {
	_, w, err := Parse("w.tdsl", []byte("c2s {\n\tfoo = 1\n}\n"), env(nil))
	if err != nil || len(w) != 1 {
		t.Fatalf("want one warning, got %v %v", w, err)
	}
	want := "w.tdsl:2:2: unknown key 'c2s/foo' is ignored\n\tfoo = 1\n\t^"
	if got := w[0].Caret(); got != want {
		t.Errorf("Caret:\n%s\nwant:\n%s", got, want)
	}
}

func TestCompatibilityWarnings(t *testing.T) {
	tests := []struct {
		src, key, msg string
	}{
		{"'config-type' = 'component'", "config-type", "always runs a complete server"},
		{"debug = [ 'server' ]", "debug", "rootLevel"},
		{"'sess-man' () { 'jabber:iq:register' () {} }", "sess-man", "not configured through beans"},
		{"c2s { connections { 5222 () { 'new-connections-throttling' = 100L } } }", "c2s/connections/5222/new-connections-throttling", "max-connections-per-ip"},
		{"'cl-comp' { 'connect-all' = true }", "cl-comp/connect-all", "dial every known peer"},
	}
	for _, tt := range tests {
		_, w, err := Parse("c.tdsl", []byte(tt.src), env(nil))
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if len(w) != 1 || w[0].Key != tt.key || !strings.Contains(w[0].Msg, tt.msg) {
			t.Errorf("%s: warnings %v, want one for %s mentioning %q", tt.src, w, tt.key, tt.msg)
		}
	}
}

func TestProperties(t *testing.T) {
	opts := tdsl.Options{Props: func(n string) (string, bool) {
		if n == "starling.node" {
			return "n7.example", true
		}
		return "", false
	}}
	c, _, err := Parse("p.tdsl", []byte("'dns-resolver' { 'tigase-primary-address' = prop('starling.node', 'x') }\n'data-dir' = prop('dir', '/d')"), opts)
	if err != nil {
		t.Fatal(Caret(err))
	}
	if c.NodeName != "n7.example" || c.DataDir != "/d" {
		t.Errorf("node %q dir %q", c.NodeName, c.DataDir)
	}
	// A missing property without default is null, which a string key rejects.
	_, _, err = Parse("p.tdsl", []byte("'data-dir' = prop('nope')"), opts)
	if err == nil || !strings.Contains(err.Error(), "p.tdsl:1:14: 'data-dir' must be a string, found null") {
		t.Errorf("err = %v", err)
	}
}

func TestSettingErrorf(t *testing.T) {
	tests := []struct {
		name string
		src  string
		off  int
		want string
	}{
		{"literal points inside the string", "'cm-traffic-throttling' = 'xmpp:2500:0:disc,bin:2x:0:disc'", 17,
			"s.tdsl:1:45: bad entry\n'cm-traffic-throttling' = 'xmpp:2500:0:disc,bin:2x:0:disc'\n                                            ^"},
		{"multibyte before the offset", "'cm-traffic-throttling' = 'é,x'", 3,
			"s.tdsl:1:30: bad entry\n'cm-traffic-throttling' = 'é,x'\n                             ^"},
		{"expression points at the value", "'cm-traffic-throttling' = 'xmpp:1:0:disc' + ',bin:1:0:disc'", 15,
			"s.tdsl:1:27: bad entry\n'cm-traffic-throttling' = 'xmpp:1:0:disc' + ',bin:1:0:disc'\n                          ^"},
		{"env value points at env", "'cm-traffic-throttling' = env('T', 'xmpp:1:0:x')", 2,
			"s.tdsl:1:27: bad entry\n'cm-traffic-throttling' = env('T', 'xmpp:1:0:x')\n                          ^"},
		{"default has no position", "", 0, "bad entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse("s.tdsl", []byte(tt.src), env(nil))
			if err != nil {
				t.Fatal(Caret(err))
			}
			if got := c.TrafficThrottling.Errorf(tt.off, "bad entry").Caret(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
