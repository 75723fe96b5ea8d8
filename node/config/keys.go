package config

import (
	"github.com/starling-xmpp/starling/node/storage/backend"
	"log/slog"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/starling-xmpp/starling/node/config/tdsl"
	"github.com/starling-xmpp/starling/xmpp/jid"
)

// tigaseHints explains Tigase keys Starling knows and does not honour, so the
// warning says what to do instead. Keys are paths; a hint starting with '*'
// applies to the key's last part anywhere.
var tigaseHints = map[string]string{
	"debug":                       "Starling sets verbosity with logging { rootLevel = 'FINE' }",
	"debug-packages":              "Starling sets verbosity with logging { rootLevel = 'FINE' }",
	"certificate-container":       "Starling reads 'tls-cert-file' and 'tls-key-file' (PEM) instead of a certificate directory",
	"vhost-anonymous-enabled":     "Starling offers no anonymous login",
	"sess-man":                    "Starling's session manager is not configured through beans; see node/config/README.md",
	"userRepository":              "Starling uses dataSource { default () { uri } } for all data",
	"authRepository":              "Starling uses dataSource { default () { uri } } for all data",
	"cl-comp/connect-all":         "Starling nodes always dial every known peer",
	"c2s/port-delay-listening":    "Starling opens client ports at start",
	"*new-connections-throttling": "Starling limits connections per IP with c2s { 'max-connections-per-ip' }",
	"*type":                       "Starling listeners only accept connections",
}

// read fills c from the tree, recording errors and warnings in r.
func (r *reader) read(c *Config, tree *tdsl.Map) {
	root := r.section(tree, "")

	if s, e, ok := root.str("config-type"); ok {
		switch s {
		case "default", "setup":
		case "session-manager", "connection-managers", "component":
			r.warnf(e.Value.Pos, "config-type", "'config-type' = '%s' is accepted but Starling always runs a complete server", s)
		default:
			r.errorf(e.Value.Pos, "'config-type' = '%s' is not one of 'default', 'setup', 'session-manager', 'connection-managers', 'component'", s)
		}
		c.ConfigType = s
	}

	r.readHosts(c, root)
	r.readAdmins(c, root)

	if s, e, ok := root.str("data-dir"); ok {
		if strings.TrimSpace(s) == "" {
			r.errorf(e.Value.Pos, "'data-dir' must not be empty")
		} else {
			c.DataDir = filepath.Clean(s)
		}
	}
	c.Database = defaultDatabase(c.DataDir)
	r.readDataSource(c, root)
	r.readLogging(c, root)

	if dns, _ := root.sub("dns-resolver"); dns != nil {
		if s, e, ok := dns.str("tigase-primary-address"); ok {
			if err := checkHostName(s); err != "" {
				r.errorf(e.Value.Pos, "'dns-resolver/tigase-primary-address' %s", err)
			} else {
				c.NodeName = s
			}
		}
		dns.done()
	}

	root.boolean("cluster-mode", &c.ClusterMode)
	r.readClusterComponent(c, root)
	r.readClusterNodes(c, root)

	for _, t := range []struct {
		key string
		dst *Setting
	}{{"cm-traffic-throttling", &c.TrafficThrottling}, {"cm-ht-traffic-throttling", &c.HTTrafficThrottling}} {
		if s, e, ok := root.str(t.key); ok {
			if strings.TrimSpace(s) == "" {
				r.errorf(e.Value.Pos, "'%s' must not be empty (write 'xmpp:0:0:disc' for no limit)", t.key)
				continue
			}
			*t.dst = r.setting(e.Value)
		}
	}

	tlsRequired := true
	root.boolean("vhost-tls-required", &tlsRequired)
	r.readC2S(c, root, tlsRequired)
	r.readHTTP(c, root)

	if s, e, ok := root.str("tls-cert-file"); ok {
		c.TLS.CertFile = s
		if s == "" {
			r.errorf(e.Value.Pos, "'tls-cert-file' must not be empty")
		}
	}
	if s, e, ok := root.str("tls-key-file"); ok {
		c.TLS.KeyFile = s
		if s == "" {
			r.errorf(e.Value.Pos, "'tls-key-file' must not be empty")
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		e := root.m.Get("tls-cert-file")
		if e == nil {
			e = root.m.Get("tls-key-file")
		}
		r.errorf(e.KeyPos, "'tls-cert-file' and 'tls-key-file' must be set together")
	}

	root.boolean("vhost-register-enabled", &c.Registration)
	root.integer("offline-messages-limit", 0, 1<<31-1, &c.OfflineMessagesLimit)

	r.checkPorts(c)
	root.done()
}

// checkHostName returns why s cannot be a host name, or "".
func checkHostName(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if strings.ContainsAny(s, " \t\n/:@") && !isIP(s) {
		return "'" + s + "' is not a host name"
	}
	return ""
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func (r *reader) readHosts(c *Config, root *section) {
	var hosts []string
	seen := map[string]bool{}
	add := func(v *tdsl.Value, name, h string) string {
		j, err := jid.Parse(h)
		if err != nil || !j.IsDomain() {
			msg := "is not a domain name"
			if err != nil {
				msg = "is not a domain name (" + err.Error() + ")"
			}
			r.errorf(v.Pos, "'%s' entry '%s' %s", name, h, msg)
			return ""
		}
		d := j.Domain()
		if !seen[d] {
			seen[d] = true
			hosts = append(hosts, d)
		}
		return d
	}
	def := ""
	if s, e, ok := root.str("default-virtual-host"); ok {
		if strings.Contains(s, ",") {
			r.errorf(e.Value.Pos, "'default-virtual-host' holds a single domain; list the others in 'virtual-hosts'")
		} else {
			def = add(e.Value, "default-virtual-host", s)
		}
	}
	if list, vals, _, ok := root.strList("virtual-hosts"); ok {
		for i, h := range list {
			add(vals[i], "virtual-hosts", strings.TrimSpace(h))
		}
	}
	if len(hosts) == 0 {
		return
	}
	if def == "" {
		def = hosts[0]
	}
	c.DefaultVirtualHost = def
	c.VirtualHosts = hosts
}

func (r *reader) readAdmins(c *Config, root *section) {
	list, vals, _, ok := root.strList("admins")
	if !ok {
		return
	}
	admins := make([]jid.JID, 0, len(list))
	for i, s := range list {
		j, err := jid.Parse(strings.TrimSpace(s))
		switch {
		case err != nil:
			r.errorf(vals[i].Pos, "admins entry '%s' is not a valid JID: %v", s, err)
			continue
		case !j.IsBare() || j.Local() == "":
			r.errorf(vals[i].Pos, "admins entry '%s' must be a bare JID user@domain", s)
			continue
		}
		admins = append(admins, j)
	}
	c.Admins = admins
}

func (r *reader) readDataSource(c *Config, root *section) {
	ds, _ := root.sub("dataSource")
	if ds == nil {
		return
	}
	defer ds.done()
	def, e := ds.sub("default")
	if def == nil {
		return
	}
	defer def.done()
	if !r.beanActive(e, "dataSource/default") {
		r.errorf(e.KeyPos, "dataSource/default cannot be switched off: it holds all of Starling's data")
		return
	}
	def.get("active")
	uri, ue, ok := def.str("uri")
	if !ok {
		if ue == nil {
			r.errorf(e.KeyPos, "dataSource/default needs uri = 'sqlite:PATH' or 'postgresql://user:password@host:5432/db'")
		}
		return
	}
	db, msg := parseDatabaseURI(uri, c.DataDir)
	if msg != "" {
		r.errorf(ue.Value.Pos, "%s", msg)
		return
	}
	db.Pos = ue.Value.Pos
	c.Database = db
}

// parseDatabaseURI turns a dataSource uri into a Database, or explains what to write instead. The
// storage opener's own parser decides what is valid, so that a config that checks is one the node can
// open; Tigase users have JDBC URIs, and for PostgreSQL the message gives the converted form.
func parseDatabaseURI(uri, dataDir string) (Database, string) {
	if strings.HasPrefix(uri, "jdbc:postgresql:") {
		return Database{}, "Starling does not use JDBC URIs; write " + jdbcToPostgres(uri)
	}
	src, err := backend.Parse(uri, dataDir)
	if err != nil {
		return Database{}, err.Error()
	}
	if src.Kind == backend.SQLite {
		return Database{URI: uri, Driver: DriverSQLite, DSN: src.Path}, ""
	}
	return Database{URI: uri, Driver: DriverPostgres, DSN: uri}, ""
}

// jdbcToPostgres suggests the libpq URL for a Tigase JDBC URI such as
// jdbc:postgresql://host/db?user=u&password=p.
func jdbcToPostgres(jdbc string) string {
	u, err := url.Parse(strings.TrimPrefix(jdbc, "jdbc:"))
	if err != nil || u.Host == "" {
		return "'postgresql://user:password@host:5432/db'"
	}
	q := u.Query()
	user, pass := q.Get("user"), q.Get("password")
	q.Del("user")
	q.Del("password")
	q.Del("useSSL")
	q.Del("autoCreateUser")
	out := url.URL{Scheme: "postgresql", Host: u.Host, Path: u.Path, RawQuery: q.Encode()}
	if user != "" {
		if pass != "" {
			out.User = url.UserPassword(user, pass)
		} else {
			out.User = url.User(user)
		}
	}
	return "'" + out.String() + "'"
}

// javaLevels maps java.util.logging names, which Tigase files use.
var javaLevels = map[string]slog.Level{
	"OFF": slog.LevelError + 4, "SEVERE": slog.LevelError, "WARNING": slog.LevelWarn,
	"INFO": slog.LevelInfo, "CONFIG": slog.LevelInfo, "FINE": slog.LevelDebug,
	"FINER": slog.LevelDebug, "FINEST": slog.LevelDebug, "ALL": slog.LevelDebug,
	"DEBUG": slog.LevelDebug, "WARN": slog.LevelWarn, "ERROR": slog.LevelError,
}

func (r *reader) readLogging(c *Config, root *section) {
	lg, _ := root.sub("logging")
	if lg == nil {
		return
	}
	defer lg.done()
	s, e, ok := lg.str("rootLevel")
	if !ok {
		return
	}
	lvl, found := javaLevels[strings.ToUpper(strings.TrimSpace(s))]
	if !found {
		r.errorf(e.Value.Pos, "'logging/rootLevel' = '%s' is not a level (SEVERE, WARNING, INFO, CONFIG, FINE, FINER, FINEST, OFF, or debug, info, warn, error)", s)
		return
	}
	c.LogLevel = lvl
}

// listenerDefaults describes a kind of listener for readListeners.
type listenerDefaults struct {
	path       string     // "c2s/connections"
	defaults   []Listener // used when the block is absent
	c2s        bool       // whether 'tls-required' applies
	tlsDefault bool
}

// readListeners reads a connections { } block. As in Tigase, the default
// ports exist unless `ports = [ ... ]` replaces them; a port bean adds or
// configures a listener and `(active: false)` removes it.
func (r *reader) readListeners(conns *section, d listenerDefaults) []Listener {
	byPort := map[int]*Listener{}
	var order []int
	add := func(l Listener) {
		if _, ok := byPort[l.Port]; !ok {
			order = append(order, l.Port)
		}
		cp := l
		cp.Ifc = append([]string(nil), l.Ifc...)
		byPort[l.Port] = &cp
	}
	if conns == nil {
		for _, l := range d.defaults {
			add(l)
		}
		return collect(byPort, order)
	}
	if e := conns.get("ports"); e != nil {
		if e.Value.Kind != tdsl.KindList {
			r.errorf(e.Value.Pos, "'%s/ports' must be a list of port numbers, found %s", d.path, describe(e.Value))
		} else {
			for _, v := range e.Value.List {
				if p, ok := r.intValue(d.path+"/ports", v, 1, 65535); ok {
					add(Listener{Port: int(p), Ifc: []string{"*"}, Socket: SocketPlain, TLSRequired: d.tlsDefault, Pos: v.Pos})
				}
			}
		}
	} else {
		for _, l := range d.defaults {
			add(l)
		}
	}
	for _, e := range conns.m.Entries {
		if e.Key == "ports" {
			continue
		}
		conns.used[e.Key] = true
		port, err := strconv.Atoi(e.Key)
		if err != nil || port < 1 || port > 65535 {
			r.errorf(e.KeyPos, "'%s/%s': a listener is named by its port number (1-65535)", d.path, e.Key)
			continue
		}
		if e.Value.Kind != tdsl.KindMap {
			r.errorf(e.Value.Pos, "'%s/%d' must be a block such as %d () { }, found %s", d.path, port, port, describe(e.Value))
			continue
		}
		path := d.path + "/" + e.Key
		if !r.beanActive(e, path) {
			if _, ok := byPort[port]; ok {
				delete(byPort, port)
			}
			continue
		}
		l, ok := byPort[port]
		if !ok {
			add(Listener{Port: port, Ifc: []string{"*"}, Socket: SocketPlain, TLSRequired: d.tlsDefault})
			l = byPort[port]
		}
		l.Pos = e.KeyPos
		s := r.section(e.Value.Map, path)
		s.get("active")
		if ifc, vals, _, ok := s.strList("ifc"); ok {
			if len(ifc) == 0 {
				r.errorf(s.m.Get("ifc").Value.Pos, "'%s/ifc' must name at least one address ('*' for all)", path)
			}
			for i, a := range ifc {
				if a != "*" && !isIP(a) && checkHostName(a) != "" {
					r.errorf(vals[i].Pos, "'%s/ifc' entry '%s' is not an address", path, a)
				}
			}
			l.Ifc = ifc
		}
		if sock, se, ok := s.str("socket"); ok {
			switch sock {
			case "plain":
				l.Socket = SocketPlain
			case "ssl", "tls":
				l.Socket = SocketTLS
			default:
				r.errorf(se.Value.Pos, "'%s/socket' = '%s' is not one of 'plain', 'ssl', 'tls'", path, sock)
			}
		}
		if d.c2s {
			s.boolean("tls-required", &l.TLSRequired)
		}
		if l.Socket == SocketTLS {
			l.TLSRequired = true
		}
		s.done()
	}
	conns.done()
	return collect(byPort, order)
}

func collect(byPort map[int]*Listener, order []int) []Listener {
	out := make([]Listener, 0, len(byPort))
	for _, p := range order {
		if l, ok := byPort[p]; ok {
			out = append(out, *l)
		}
	}
	return out
}

func (r *reader) readClusterComponent(c *Config, root *section) {
	cl, _ := root.sub("cl-comp")
	var conns *section
	if cl != nil {
		conns, _ = cl.sub("connections")
		cl.integer("connections-per-node", 1, 64, &c.Cluster.ConnectionsPerNode)
	}
	c.Cluster.Listeners = r.readListeners(conns, listenerDefaults{path: "cl-comp/connections", defaults: c.Cluster.Listeners})
	if c.ClusterMode && len(c.Cluster.Listeners) == 0 {
		pos := tdsl.Pos{}
		if e := root.m.Get("cl-comp"); e != nil {
			pos = e.KeyPos
		}
		r.errorf(pos, "cluster mode needs at least one 'cl-comp' listener")
	}
	if cl != nil {
		cl.done()
	}
}

func (r *reader) readClusterNodes(c *Config, root *section) {
	list, vals, _, ok := root.strList("cluster-nodes")
	if !ok {
		return
	}
	defPort := DefaultClusterPort
	if len(c.Cluster.Listeners) > 0 {
		defPort = c.Cluster.Listeners[0].Port
	}
	seen := map[string]tdsl.Pos{}
	for i, s := range list {
		pos := vals[i].Pos
		parts := strings.Split(strings.TrimSpace(s), ":")
		if len(parts) > 3 {
			r.errorf(pos, "'cluster-nodes' entry '%s' is not host[:password[:port]]", s)
			continue
		}
		n := ClusterNode{Host: parts[0], Port: defPort, Pos: pos}
		if msg := checkHostName(n.Host); msg != "" {
			r.errorf(pos, "'cluster-nodes' entry '%s': host %s", s, msg)
			continue
		}
		if len(parts) > 1 {
			n.Password = parts[1]
		}
		if len(parts) > 2 {
			p, err := strconv.Atoi(parts[2])
			if err != nil || p < 1 || p > 65535 {
				r.errorf(pos, "'cluster-nodes' entry '%s': port '%s' is not a number in 1-65535", s, parts[2])
				continue
			}
			n.Port = p
		}
		key := n.Host + ":" + strconv.Itoa(n.Port)
		if first, dup := seen[key]; dup {
			r.errorf(pos, "'cluster-nodes' lists %s twice (lines %d and %d)", key, first.Line, pos.Line)
			continue
		}
		seen[key] = pos
		c.ClusterNodes = append(c.ClusterNodes, n)
	}
}

func (r *reader) readC2S(c *Config, root *section, tlsRequired bool) {
	cc := &c.C2S
	cc.SeeOtherHost.Active = c.ClusterMode
	// Top-level watchdog settings apply to every connection manager in
	// Tigase; a c2s block setting overrides them.
	r.readWatchdog(cc, root)
	for i := range cc.Listeners {
		if cc.Listeners[i].Socket == SocketPlain {
			cc.Listeners[i].TLSRequired = tlsRequired
		}
	}
	s, e := root.sub("c2s")
	if s == nil {
		return
	}
	defer s.done()
	if !r.beanActive(e, "c2s") {
		s.get("active")
		cc.Listeners = nil
		return
	}
	s.get("active")
	conns, _ := s.sub("connections")
	cc.Listeners = r.readListeners(conns, listenerDefaults{path: "c2s/connections", defaults: cc.Listeners, c2s: true, tlsDefault: tlsRequired})

	r.readSeeOtherHost(c, s)
	s.size("max-stanza-size", 1024, 64<<20, &cc.MaxStanzaSize)
	s.integer("max-xml-depth", 2, 1000, &cc.MaxDepth)
	s.integer("max-attributes", 1, 10000, &cc.MaxAttributes)
	s.integer("elements-number-limit", 1, 1<<31-1, &cc.MaxElements)
	r.readWatchdog(cc, s)
	s.size("max-pending-output", 4096, 1<<30, &cc.MaxPendingOutput)
	s.integer("max-connections-per-ip", 1, 1<<20, &cc.MaxConnectionsPerIP)
	s.integer("max-auth-attempts", 1, 100, &cc.MaxAuthAttempts)
	s.integer("max-auth-attempts-per-ip", 1, 1<<20, &cc.MaxAuthAttemptsPerIP)
	s.integer("max-resources-per-account", 1, 1<<16, &cc.MaxResources)
	var resume int
	if s.integer("stream-resumption-timeout", 0, 24*3600, &resume) {
		cc.ResumptionTimeout = time.Duration(resume) * time.Second
	}
}

func (r *reader) readWatchdog(cc *C2S, s *section) {
	var ms int
	if s.integer("watchdog_timeout", 1000, 1<<40, &ms) {
		cc.IdleTimeout = time.Duration(ms) * time.Millisecond
	}
	if s.integer("watchdog_delay", 1000, 1<<40, &ms) {
		cc.PingAfter = time.Duration(ms) * time.Millisecond
	}
	if t, e, ok := s.str("watchdog_ping_type"); ok {
		lt := strings.ToLower(t)
		if lt != "whitespace" && lt != "xmpp" {
			r.errorf(e.Value.Pos, "'%s' = '%s' is not one of 'WHITESPACE', 'XMPP'", s.keyPath("watchdog_ping_type"), t)
		} else {
			cc.PingType = lt
		}
	}
}

// seeOtherHostClasses maps bean classes to strategies: Starling's short
// names and Tigase's class for the hashed strategy.
var seeOtherHostClasses = map[string]string{
	"hashed":       SeeOtherHostHashed,
	"least-loaded": SeeOtherHostLeastLoaded,
	"none":         "",
	"tigase.server.xmppclient.SeeOtherHostHashed": SeeOtherHostHashed,
	"SeeOtherHostHashed":                          SeeOtherHostHashed,
}

func (r *reader) readSeeOtherHost(c *Config, c2s *section) {
	soh := &c.C2S.SeeOtherHost
	s, e := c2s.sub("seeOtherHost")
	if s == nil {
		return
	}
	defer s.done()
	s.get("active")
	s.get("class")
	soh.Pos = e.KeyPos
	soh.Active = r.beanActive(e, "c2s/seeOtherHost")
	if class, pos := r.beanClass(e, "c2s/seeOtherHost"); class != "" {
		strategy, ok := seeOtherHostClasses[class]
		switch {
		case !ok:
			r.errorf(pos, "c2s/seeOtherHost class '%s' is not supported: use 'hashed', 'least-loaded', 'none' or tigase.server.xmppclient.SeeOtherHostHashed", class)
		case strategy == "":
			soh.Active = false
		default:
			soh.Strategy = strategy
		}
	}
	if phases, vals, _, ok := s.strList("phases"); ok {
		out := make([]string, 0, len(phases))
		for i, p := range phases {
			up := strings.ToUpper(p)
			if up != "OPEN" && up != "LOGIN" {
				r.errorf(vals[i].Pos, "c2s/seeOtherHost phase '%s' is not one of 'OPEN', 'LOGIN'", p)
				continue
			}
			out = append(out, up)
		}
		soh.Phases = out
	}
	if hosts, _, _, ok := s.strList("defaultHost"); ok {
		soh.DefaultHost = hosts
	}
}

func (r *reader) readHTTP(c *Config, root *section) {
	s, e := root.sub("http")
	if s == nil {
		return
	}
	defer s.done()
	s.get("active")
	c.HTTP.Enabled = r.beanActive(e, "http")
	c.HTTP.Pos = e.KeyPos
	s.integer("port", 1, 65535, &c.HTTP.Port)
	ifc, vals, ie, hasIfc := s.strList("ifc")
	addr, ae, hasAddr := s.str("address")
	switch {
	case hasIfc && hasAddr:
		r.errorf(ae.KeyPos, "http: set either ifc or address, not both (ifc is at line %d)", ie.KeyPos.Line)
	case hasIfc:
		for i, a := range ifc {
			if a != "*" && !isIP(a) && checkHostName(a) != "" {
				r.errorf(vals[i].Pos, "'http/ifc' entry '%s' is not an address", a)
			}
		}
		c.HTTP.Ifc = ifc
	case hasAddr:
		if addr != "*" && !isIP(addr) && checkHostName(addr) != "" {
			r.errorf(ae.Value.Pos, "'http/address' '%s' is not an address", addr)
		}
		c.HTTP.Ifc = []string{addr}
	}
}

// checkPorts rejects two enabled listeners on the same port and
// overlapping interfaces, which would fail at bind time with a less
// helpful message.
func (r *reader) checkPorts(c *Config) {
	type named struct {
		name string
		l    Listener
	}
	var all []named
	for _, l := range c.C2S.Listeners {
		all = append(all, named{"c2s", l})
	}
	if c.ClusterMode {
		for _, l := range c.Cluster.Listeners {
			all = append(all, named{"cl-comp", l})
		}
	}
	if c.HTTP.Enabled {
		all = append(all, named{"http", c.HTTP.Listener})
	}
	for i := range all {
		for j := 0; j < i; j++ {
			a, b := all[j], all[i]
			if a.l.Port != b.l.Port || !overlap(a.l.Ifc, b.l.Ifc) {
				continue
			}
			pos := b.l.Pos
			if !pos.IsValid() {
				pos = a.l.Pos
			}
			if !pos.IsValid() {
				continue // two defaults never collide
			}
			r.errorf(pos, "port %d is used by both %s and %s", b.l.Port, a.name, b.name)
		}
	}
}

func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y || x == "*" || y == "*" {
				return true
			}
		}
	}
	return false
}

// setting keeps a string value with its position and notes whether it was
// a plain one-line literal in the source (not an expression), so offsets
// inside it map to columns.
func (r *reader) setting(v *tdsl.Value) Setting {
	st := Setting{Value: v.Str, Pos: v.Pos, Line: tdsl.Errorf(r.src, v.Pos, "").Line}
	off := v.Pos.Offset
	end := off + 1 + len(v.Str)
	if !v.Bare && end < len(r.src) && (r.src[off] == '\'' || r.src[off] == '"') &&
		r.src[end] == r.src[off] && string(r.src[off+1:end]) == v.Str && !strings.Contains(v.Str, "\n") {
		st.literal = true
	}
	return st
}
