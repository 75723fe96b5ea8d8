// Package config holds the typed configuration a Starling node runs on and
// reads it from a Tigase-style config.tdsl file.
//
// The DSL is parsed by the tdsl package; this package knows which keys
// Starling honours (Tigase's names wherever Tigase has one, see README.md),
// converts and validates their values, applies defaults, and reports every
// key it does not read as a Warning with its file:line, because Tigase
// ignores such keys silently. Errors carry file:line:col and a caret form
// (see Caret).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/starling-xmpp/starling/node/config/tdsl"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// Socket values of a listener.
const (
	// SocketPlain is a plain TCP listener (for c2s, STARTTLS is offered on it).
	SocketPlain = "plain"
	// SocketTLS is direct TLS from the first byte. Tigase calls it 'ssl';
	// both 'ssl' and 'tls' are read as this value.
	SocketTLS = "tls"
)

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// See-other-host strategies (Tigase's seeOtherHost bean class).
const (
	SeeOtherHostHashed      = "hashed"
	SeeOtherHostLeastLoaded = "least-loaded"
)

// Defaults that other packages may want to name.
const (
	DefaultDataDir          = "/var/lib/starling"
	DefaultClusterPort      = 5277
	DefaultHTTPPort         = 5280
	DefaultTrafficThrottle  = "xmpp:2500:0:disc,bin:20m:0:disc"
	DefaultHTTrafficThrotle = "xmpp:25k:0:disc,bin:200m:0:disc"
)

// Config is the configuration of one node. Every field names the DSL key it
// comes from and its default; Default returns a Config with all defaults.
type Config struct {
	// File is the path the configuration was read from; "" for Default().
	File string

	// ConfigType is 'config-type', accepted for compatibility with Tigase
	// files. Default 'default'.
	ConfigType string

	// DefaultVirtualHost is 'default-virtual-host', the main served domain.
	// Default 'localhost' (or the first of 'virtual-hosts' when only that
	// is set).
	DefaultVirtualHost string

	// VirtualHosts is 'virtual-hosts', every served domain, with
	// DefaultVirtualHost first. Default [ 'localhost' ].
	VirtualHosts []string

	// Admins is admins, bare JIDs with administrative rights (cluster disco,
	// ad-hoc commands, node up/down messages). Default [].
	Admins []jid.JID

	// DataDir is 'data-dir' (Starling), where the node keeps its SQLite
	// database and generated certificate. Relative paths are relative to
	// the process's working directory. Default '/var/lib/starling'.
	DataDir string

	// Database is dataSource { default () { uri = '...' } }. Default: SQLite
	// file starling.db in DataDir.
	Database Database

	// LogLevel is logging { rootLevel = '...' } (Tigase's key; Java level
	// names or debug/info/warn/error). Default INFO.
	LogLevel slog.Level

	// NodeName is 'dns-resolver' { 'tigase-primary-address' }, the node's
	// name in the cluster. Default: the machine's host name.
	NodeName string

	// ClusterMode is 'cluster-mode'. Default false.
	ClusterMode bool

	// ClusterNodes is 'cluster-nodes', static peers written
	// 'host[:password[:port]]'. Default none (discovery through the
	// database).
	ClusterNodes []ClusterNode

	// Cluster is the 'cl-comp' block: cluster listeners and link pool.
	Cluster Cluster

	// TrafficThrottling is 'cm-traffic-throttling', the policy for client
	// connections, kept as written for node/throttle to parse.
	// Default 'xmpp:2500:0:disc,bin:20m:0:disc'.
	TrafficThrottling Setting

	// HTTrafficThrottling is 'cm-ht-traffic-throttling', the policy for
	// cluster (high-throughput) connections.
	// Default 'xmpp:25k:0:disc,bin:200m:0:disc'.
	HTTrafficThrottling Setting

	// C2S is the c2s block: client listeners, limits and load balancing.
	C2S C2S

	// HTTP is http () { port; ifc }, the metrics/health/admin listener.
	// Default off.
	HTTP HTTP

	// TLS names the certificate and key files. Default none: the node
	// generates a self-signed certificate in DataDir.
	TLS TLS

	// Registration is 'vhost-register-enabled', in-band registration
	// (XEP-0077). Default false (Tigase's default is true; an open
	// registration on a fresh install invites spam accounts).
	Registration bool

	// OfflineMessagesLimit is 'offline-messages-limit' (Starling), the most
	// messages stored for one offline user; 0 disables offline storage.
	// Default 1000.
	OfflineMessagesLimit int
}

// Setting is a raw string value with where it was written, for settings
// parsed by another package that must still report file:line:col.
type Setting struct {
	Value string
	// Pos is the value's position; the zero Pos for a default.
	Pos tdsl.Pos
	// Line is the source line holding Pos, for caret output.
	Line string
	// literal is true when Value was written as one quoted string on one
	// line, so that an offset inside Value is a column in the file.
	literal bool
}

// Errorf reports a problem at byte offset off inside Value (for example
// the entry of a throttling policy that does not parse). When the value was
// written as a single quoted string on one line, the position points at
// that character; otherwise at the start of the value. For a default value
// the error has no position.
func (s Setting) Errorf(off int, format string, args ...any) *tdsl.Error {
	e := &tdsl.Error{Pos: s.Pos, Msg: fmt.Sprintf(format, args...), Line: s.Line}
	if s.literal && off >= 0 && off <= len(s.Value) {
		e.Pos.Offset += 1 + off
		e.Pos.Col += 1 + utf8.RuneCountInString(s.Value[:off])
	}
	return e
}

// Database says where the node stores its data.
type Database struct {
	// URI is the value as written (or the default's equivalent).
	URI string
	// Driver is DriverSQLite or DriverPostgres.
	Driver string
	// DSN is the SQLite file path, or the PostgreSQL URL.
	DSN string
	Pos tdsl.Pos
}

// ClusterNode is one entry of 'cluster-nodes'.
type ClusterNode struct {
	Host string
	// Password is the shared secret for links with this node; "" when not
	// given.
	Password string
	// Port is the peer's cluster port; when not written, the port of this
	// node's first cluster listener.
	Port int
	Pos  tdsl.Pos
}

// Cluster is the 'cl-comp' block.
type Cluster struct {
	// Listeners is 'cl-comp' { connections { PORT () { ifc; socket } } }.
	// Default one listener on port 5277, all interfaces, plain.
	Listeners []Listener
	// ConnectionsPerNode is 'cl-comp' { 'connections-per-node' }, sockets
	// dialled per peer. Default 5 (Tigase's value).
	ConnectionsPerNode int
}

// Listener is one listening port.
type Listener struct {
	// Port is the key of the listener's bean (5222 () { }).
	Port int
	// Ifc is ifc = [ ... ], the addresses to listen on; '*' means all
	// interfaces. Default [ '*' ].
	Ifc []string
	// Socket is SocketPlain or SocketTLS (socket = 'plain' | 'ssl' | 'tls').
	Socket string
	// TLSRequired is 'tls-required' (Starling) on a c2s plain listener:
	// clients must STARTTLS before authenticating. Default: the top-level
	// 'vhost-tls-required', itself default true. Always true for SocketTLS.
	TLSRequired bool
	// Pos is where the listener was defined; zero for a default listener.
	Pos tdsl.Pos
}

// Addrs returns the addresses to listen on, host:port, with '*' as all
// interfaces (":port").
func (l Listener) Addrs() []string {
	port := strconv.Itoa(l.Port)
	if len(l.Ifc) == 0 {
		return []string{":" + port}
	}
	out := make([]string, 0, len(l.Ifc))
	for _, ifc := range l.Ifc {
		if ifc == "*" {
			out = append(out, ":"+port)
			continue
		}
		out = append(out, net.JoinHostPort(ifc, port))
	}
	return out
}

// C2S is the c2s block.
type C2S struct {
	// Listeners is c2s { connections { PORT () { } } }. Default 5222
	// (plain, STARTTLS required) and 5223 (direct TLS), all interfaces.
	Listeners []Listener

	// SeeOtherHost is c2s { seeOtherHost (class: ...) { } }.
	SeeOtherHost SeeOtherHost

	// MaxStanzaSize is c2s { 'max-stanza-size' } (Starling), in bytes; an
	// integer or '256k'. Default 262144.
	MaxStanzaSize int
	// MaxDepth is c2s { 'max-xml-depth' } (Starling), the deepest element
	// nesting inside a stanza. Default 32.
	MaxDepth int
	// MaxAttributes is c2s { 'max-attributes' } (Starling), attributes on
	// one element. Default 64.
	MaxAttributes int
	// MaxElements is c2s { 'elements-number-limit' } (Tigase), elements in
	// one stanza. Default 1000.
	MaxElements int

	// IdleTimeout is watchdog_timeout (Tigase, milliseconds; in c2s or at
	// the top level): a connection silent this long is closed.
	// Default 5 min (Tigase: 29 min).
	IdleTimeout time.Duration
	// PingAfter is watchdog_delay (Tigase, milliseconds): after this much
	// silence the server pings the client. Default 60 s.
	PingAfter time.Duration
	// PingType is watchdog_ping_type (Tigase): 'whitespace' or 'xmpp'
	// (an XEP-0199 ping). Default 'xmpp' (Tigase: whitespace): a whitespace
	// keep-alive only proves the TCP path, an XMPP ping that the client
	// still reads its stream.
	PingType string

	// MaxPendingOutput is c2s { 'max-pending-output' } (Starling), bytes
	// queued for a client that does not read before it is disconnected as
	// a slow consumer. Default 1 MiB.
	MaxPendingOutput int
	// MaxConnectionsPerIP is c2s { 'max-connections-per-ip' } (Starling).
	// Default 100.
	MaxConnectionsPerIP int
	// MaxAuthAttempts is c2s { 'max-auth-attempts' } (Starling), failed
	// SASL attempts on one connection before it is closed. Default 5.
	MaxAuthAttempts int
	// MaxAuthAttemptsPerIP is c2s { 'max-auth-attempts-per-ip' }
	// (Starling), failed SASL attempts from one IP address per minute.
	// Default 30.
	MaxAuthAttemptsPerIP int
	// ResumptionTimeout is c2s { 'stream-resumption-timeout' } (Starling, in seconds): how long a XEP-0198 session whose link died waits to be resumed; 0 offers
	// no resumption. Default 300.
	ResumptionTimeout time.Duration
	// MaxResources is c2s { 'max-resources-per-account' } (Starling), sessions one account may have
	// bound at once; one more gets <resource-constraint/> (RFC 6120 §7.6.2.1). Default 64.
	MaxResources int
}

// SeeOtherHost is the load-balancing redirect of clients to the node that
// should serve them (DESIGN §4).
type SeeOtherHost struct {
	// Active is whether redirects are sent. Default: on in cluster mode,
	// off otherwise (as in Tigase); `seeOtherHost (active: false) {}` or
	// class 'none' turns it off.
	Active bool
	// Strategy is SeeOtherHostHashed or SeeOtherHostLeastLoaded, from the
	// bean class. Default hashed (Tigase's SeeOtherHostHashed).
	Strategy string
	// Phases is phases = [ 'OPEN', 'LOGIN' ]: when to redirect. Default
	// [ 'OPEN', 'LOGIN' ].
	Phases []string
	// DefaultHost is defaultHost = [ ... ], hosts used when the cluster
	// offers none. Default [].
	DefaultHost []string
	Pos         tdsl.Pos
}

// HTTP is the HTTP listener for /metrics, /healthz and the admin JSON API.
type HTTP struct {
	// Enabled is true when http () { } is defined and not active: false.
	Enabled bool
	// Listener: port (default 5280) and ifc = [ ... ] or address = '...'
	// (default all interfaces). Socket is always plain.
	Listener
}

// TLS names the server certificate.
type TLS struct {
	// CertFile is 'tls-cert-file' (Starling), a PEM certificate chain.
	CertFile string
	// KeyFile is 'tls-key-file' (Starling), the PEM private key.
	KeyFile string
}

// Default returns the configuration of a node with no file.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	c := &Config{
		ConfigType:         "default",
		DefaultVirtualHost: "localhost",
		VirtualHosts:       []string{"localhost"},
		Admins:             []jid.JID{},
		DataDir:            DefaultDataDir,
		LogLevel:           slog.LevelInfo,
		NodeName:           host,
		Cluster: Cluster{
			Listeners:          []Listener{{Port: DefaultClusterPort, Ifc: []string{"*"}, Socket: SocketPlain}},
			ConnectionsPerNode: 5,
		},
		TrafficThrottling:   Setting{Value: DefaultTrafficThrottle},
		HTTrafficThrottling: Setting{Value: DefaultHTTrafficThrotle},
		C2S: C2S{
			Listeners: []Listener{
				{Port: 5222, Ifc: []string{"*"}, Socket: SocketPlain, TLSRequired: true},
				{Port: 5223, Ifc: []string{"*"}, Socket: SocketTLS, TLSRequired: true},
			},
			SeeOtherHost: SeeOtherHost{
				Strategy:    SeeOtherHostHashed,
				Phases:      []string{"OPEN", "LOGIN"},
				DefaultHost: []string{},
			},
			MaxStanzaSize:        256 * 1024,
			MaxDepth:             32,
			MaxAttributes:        64,
			MaxElements:          1000,
			IdleTimeout:          5 * time.Minute,
			PingAfter:            60 * time.Second,
			PingType:             "xmpp",
			MaxPendingOutput:     1 << 20,
			MaxConnectionsPerIP:  100,
			MaxAuthAttempts:      5,
			MaxAuthAttemptsPerIP: 30,
			MaxResources:         64,
			ResumptionTimeout:    5 * time.Minute,
		},
		HTTP:                 HTTP{Listener: Listener{Port: DefaultHTTPPort, Ifc: []string{"*"}, Socket: SocketPlain}},
		OfflineMessagesLimit: 1000,
	}
	c.Database = defaultDatabase(c.DataDir)
	return c
}

func defaultDatabase(dataDir string) Database {
	path := filepath.Join(dataDir, "starling.db")
	return Database{URI: "sqlite:" + path, Driver: DriverSQLite, DSN: path}
}

// Load reads and checks the configuration file at path. Warnings list keys
// Starling ignores; the error, if any, joins one *tdsl.Error per problem.
func Load(path string, opts tdsl.Options) (*Config, []Warning, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, src, opts)
}

// Parse is Load for text already in memory; name is used in positions.
func Parse(name string, src []byte, opts tdsl.Options) (*Config, []Warning, error) {
	tree, err := tdsl.Parse(name, src, opts)
	if err != nil {
		return nil, nil, err
	}
	r := &reader{src: src}
	c := Default()
	c.File = name
	r.read(c, tree)
	r.sortWarnings()
	if err := r.err(); err != nil {
		return nil, r.warnings, err
	}
	return c, r.warnings, nil
}

// Caret renders err for a terminal: every *tdsl.Error it holds in caret
// form (file:line:col, the source line, a caret), other errors as text.
func Caret(err error) string {
	if err == nil {
		return ""
	}
	var parts []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var te *tdsl.Error
		if errors.As(e, &te) {
			parts = append(parts, te.Caret())
			return
		}
		parts = append(parts, e.Error())
	}
	walk(err)
	return strings.Join(parts, "\n")
}

// ClusterAddr returns the address peers dial to reach this node: when the
// first cluster listener has a single specific ifc, that address;
// otherwise the node name (DESIGN §1).
func (c *Config) ClusterAddr() string {
	if len(c.Cluster.Listeners) == 0 {
		return ""
	}
	l := c.Cluster.Listeners[0]
	host := c.NodeName
	if len(l.Ifc) == 1 && l.Ifc[0] != "*" && l.Ifc[0] != "0.0.0.0" && l.Ifc[0] != "::" {
		host = l.Ifc[0]
	}
	return net.JoinHostPort(host, strconv.Itoa(l.Port))
}
