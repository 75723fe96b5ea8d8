package c2s

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/starling-xmpp/starling/loader"
	"github.com/starling-xmpp/starling/node/conn"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/throttle"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/sasl"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/stream"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

type state uint8

const (
	stHeader  state = iota // waiting for a stream header
	stNegot                // features sent, before authentication
	stAuthed               // authenticated, waiting for resource binding
	stBound                // stanzas flow
	stClosing              // a stream error or close was queued
)

// errStop ends the read loop after the session queued its own stream close.
var errStop = errors.New("c2s: stream closed")

const nsPing = "urn:xmpp:ping"

// session is one client connection. Everything but CloseStream runs on its reader goroutine.
type session struct {
	srv   *Server
	c     *conn.Conn
	dec   *xml.Decoder
	ip    netip.Addr
	ctx   context.Context
	state state
	// opened: our stream header went out, so errors need no header of their own.
	opened    bool
	tls       bool
	direct    bool
	domain    string
	sasl      *sasl.Server
	cbTypes   []string
	cb        func(string) ([]byte, bool)
	authFails uint8
	pingSeq   uint32
	user      string // prepared localpart once authenticated
	res       *router.Resource
	thr       *throttle.Conn // nil when the listener has no traffic policy
	sink      *sink          // the bound resource's output (counts, and keeps for XEP-0198)
	sm        bool           // stream management enabled
	smID      string         // XEP-0198 resumption id, when resumable
	owner     *owner         // the router's handle on whichever session serves the resource
	// Resumption state, guarded by srv.mu: a detached session waits for its client to resume it.
	detached    bool
	takenOver   bool
	detachOnEnd bool
	detachTimer *time.Timer
	detachedCh  chan struct{}
	handled     uint32 // XEP-0198: stanzas received from the client and handled
	// pending counts what must end before the connection is forgotten: its reader and its socket.
	pending atomic.Int32
}

// ConnClosed implements conn.CloseListener: the socket is one of the two ends that must finish.
func (s *session) ConnClosed(conn.Reason) { s.done() }

// done counts one of the two ends of the connection (see Server.serveConn).
func (s *session) done() {
	if s.pending.Add(-1) == 0 {
		s.srv.sessionDone(s)
	}
}

// ThrottleDisconnect implements throttle.Owner.
func (s *session) ThrottleDisconnect(text string, egressFenced bool) {
	if egressFenced {
		s.c.Abort(conn.ReasonThrottled)
		return
	}
	s.CloseStream("policy-violation", text)
}

// ThrottlePause implements throttle.Owner.
func (s *session) ThrottlePause(dir loader.Direction, until time.Time) {
	if dir == loader.Ingress {
		s.c.PauseRead(until)
	} else {
		s.c.PauseWrite(until)
	}
}

// isSMAck reports whether e is a stream-management request or answer, which throttling does not count.
func isSMAck(e *xml.Element) bool {
	n := string(e.Name())
	return (n == "r" || n == "a") && string(e.Space()) == stream.NSSM
}

func newSession(srv *Server, c *conn.Conn, ip netip.Addr) *session {
	return &session{srv: srv, c: c, ip: ip}
}

func (s *session) run(ctx context.Context, directTLS bool) {
	s.ctx = ctx
	s.direct = directTLS
	if directTLS {
		if err := s.c.StartTLS(ctx, s.srv.opts.TLS); err != nil {
			s.srv.log.Debug("c2s: direct TLS handshake failed", "remote", s.c.RemoteAddr(), "err", err)
			s.c.Close(conn.ReasonTLSFailed)
			s.done()
			return
		}
		s.afterTLS()
	}
	s.dec = xml.NewDecoder(s.srv.opts.Limits)
	s.c.Serve(s.dec, s)
}

// Ended implements conn.Handler: it turns the reason the reader stopped into the close of the
// connection and unbinds the resource.
func (s *session) Ended(err error) {
	defer s.done()
	// A session the node itself is closing (an error it sent, shutdown, a replacement) is not kept for
	// resumption; one whose link died is.
	closedByUs := s.c.Closing()
	var xerr *xml.Error
	switch {
	case errors.Is(err, errStop):
		// The close is queued already.
	case errors.As(err, &xerr):
		reason := conn.ReasonNotWellFormed
		if xerr.Condition == "policy-violation" {
			reason = conn.ReasonPolicy
		}
		s.srv.log.Info("c2s: bad XML from client", "remote", s.c.RemoteAddr(), "condition", xerr.Condition, "err", xerr)
		s.streamError(&stream.Error{Condition: xerr.Condition, Text: xerr.Text}, reason)
	case errors.Is(err, conn.ErrIdle):
		s.streamError(&stream.Error{Condition: "connection-timeout"}, conn.ReasonIdle)
	case errors.Is(err, io.EOF):
		s.c.Close(conn.ReasonPeerClosed)
	case errors.Is(err, net.ErrClosed):
		s.c.Close(conn.ReasonShutdown) // closed by us: the reason set first wins
	default:
		s.c.Close(conn.ReasonReadError)
	}
	if s.res != nil {
		s.srv.mu.Lock()
		taken, keep := s.takenOver, s.smID != "" && (s.detachOnEnd || !closedByUs && resumable(err))
		s.srv.mu.Unlock()
		switch {
		case taken:
			// Another connection resumed this session and owns the resource now.
		case keep:
			s.detach()
			return
		default:
			ctx := context.WithoutCancel(s.ctx)
			if s.sm {
				s.srv.mu.Lock()
				if s.srv.resumable[s.smID] == s {
					delete(s.srv.resumable, s.smID)
				}
				s.srv.mu.Unlock()
				s.endSession(ctx)
			} else {
				s.srv.opts.Router.Unbind(ctx, s.res)
			}
			s.srv.opts.Metrics.SessionEnded()
		}
	}
}

// CloseStream ends the session with a stream error from any goroutine (a replaced resource, an admin
// kicking a user, shutdown).
func (s *session) CloseStream(condition, text string) {
	s.srv.mu.Lock()
	detached := s.detached
	s.srv.mu.Unlock()
	if detached {
		// No connection to tell: the session just ends (a newer session took its resource, an
		// admin removed the account, the server stops).
		go s.expire()
		return
	}
	reason := conn.ReasonStreamError
	switch condition {
	case "conflict":
		reason = conn.ReasonReplaced
	case "system-shutdown":
		reason = conn.ReasonShutdown
	case "policy-violation":
		reason = conn.ReasonThrottled
	case "see-other-host":
		reason = conn.ReasonRedirected
	}
	b := (&stream.Error{Condition: condition, Text: text}).Append(nil)
	b = append(b, stream.Close...)
	s.c.CloseAfter(b, reason)
}

// streamError queues a stream error (with our header first if none was sent) and the close.
func (s *session) streamError(e *stream.Error, reason conn.Reason) error {
	var b []byte
	if !s.opened {
		d := s.domain
		if d == "" {
			d = s.srv.opts.DefaultDomain
		}
		b = stream.Header{NS: stream.NSClient, From: d, ID: newID(), Version: "1.0"}.AppendOpen(b)
		s.opened = true
	}
	b = e.Append(b)
	b = append(b, stream.Close...)
	s.state = stClosing
	s.c.CloseAfter(b, reason)
	return errStop
}

// HandleToken implements conn.Handler.
func (s *session) HandleToken(t xml.Token) error {
	switch t.Kind {
	case xml.StreamStart:
		return s.onHeader(t.Elem)
	case xml.StreamEnd:
		s.state = stClosing
		s.c.CloseAfter([]byte(stream.Close), conn.ReasonStreamEnd)
		return errStop
	}
	e := t.Elem
	if s.thr != nil && !isSMAck(e) {
		switch s.thr.Stanza() {
		case throttle.Drop:
			return nil
		case throttle.Disconnect:
			return s.streamError(&stream.Error{Condition: "policy-violation", Text: "too many stanzas"}, conn.ReasonThrottled)
		}
	}
	switch s.state {
	case stNegot:
		return s.negotiate(e)
	case stAuthed:
		if e.Is(stream.NSSM, "resume") {
			return s.resume(e)
		}
		return s.bind(e)
	case stBound:
		return s.stanza(e)
	}
	return s.streamError(&stream.Error{Condition: "not-authorized"}, conn.ReasonStreamError)
}

// Silent implements conn.Handler: ping a bound client until the idle timeout, give up on anyone else.
func (s *session) Silent() bool {
	if s.state != stBound || s.c.Idle() >= s.srv.opts.IdleTimeout {
		return false
	}
	if s.srv.opts.PingWhitespace {
		return s.c.Write([]byte(" ")) == nil
	}
	s.pingSeq++
	b := make([]byte, 0, 160)
	b = append(b, "<iq type='get' id='s2c-ping-"...)
	b = strconv.AppendUint(b, uint64(s.pingSeq), 10)
	b = append(b, "' from='"...)
	b = xml.EscapeAttr(b, s.domain)
	b = append(b, "' to='"...)
	b = append(b, s.res.Full()...)
	b = append(b, "'><ping xmlns='"+nsPing+"'/></iq>"...)
	return s.sink.Write(b) == nil
}

func (s *session) onHeader(e *xml.Element) error {
	h, serr := stream.ParseHeader(e, stream.NSClient)
	if serr != nil {
		return s.streamError(serr, conn.ReasonStreamError)
	}
	domain := h.To
	if domain == "" {
		domain = s.srv.opts.DefaultDomain
	} else if j, err := jid.Parse(domain); err == nil && j.IsDomain() {
		domain = j.Domain()
	}
	if _, ok := s.srv.domains[domain]; !ok {
		return s.streamError(&stream.Error{Condition: "host-unknown", Text: "this server does not serve " + h.To}, conn.ReasonStreamError)
	}
	if s.domain != "" && s.domain != domain {
		// A restarted stream must stay on the domain it authenticated against.
		return s.streamError(&stream.Error{Condition: "host-unknown", Text: "the domain changed in a stream restart"}, conn.ReasonStreamError)
	}
	s.domain = domain
	out := stream.Header{NS: stream.NSClient, From: domain, ID: newID(), Version: "1.0", Lang: "en"}
	if h.From != "" {
		out.To = h.From
	}
	b := out.AppendOpen(make([]byte, 0, 512))
	s.opened = true
	f := stream.Features{}
	switch {
	case s.user != "":
		s.state = stAuthed
		f.Bind, f.Session, f.RosterVer, f.PreApproval, f.SM, f.CSI = true, true, true, true, true, true
	default:
		s.state = stNegot
		canTLS := !s.tls && s.srv.opts.TLS != nil
		f.StartTLS = canTLS
		f.TLSRequired = canTLS && s.srv.opts.StartTLSRequired
		if s.tls || !s.srv.opts.StartTLSRequired || s.srv.opts.TLS == nil {
			f.Mechanisms = sasl.Mechanisms(s.tls, s.cbTypes)
			f.CBTypes = s.cbTypes
			f.Register = s.srv.opts.Registration != nil && s.srv.opts.Registration.Enabled()
		}
	}
	b = f.Append(b)
	s.c.Write(b)
	return nil
}

func (s *session) afterTLS() {
	s.tls = true
	st := s.c.TLS().ConnectionState()
	s.cbTypes, s.cb = sasl.ServerBinding(&st, s.srv.opts.Leaf)
}

func (s *session) negotiate(e *xml.Element) error {
	space := string(e.Space())
	name := string(e.Name())
	switch {
	case space == stream.NSTLS && name == "starttls":
		return s.startTLS()
	case space == stream.NSSASL:
		if !s.tls && s.srv.opts.StartTLSRequired && s.srv.opts.TLS != nil {
			return s.streamError(&stream.Error{Condition: "policy-violation", Text: "STARTTLS is required before authentication"}, conn.ReasonPolicy)
		}
		return s.saslElement(name, e)
	case space == stream.NSClient && name == "iq" && s.srv.opts.Registration != nil && s.srv.opts.Registration.Enabled():
		if q := e.FirstChild(); q != nil && string(q.Space()) == "jabber:iq:register" {
			if !s.tls && s.srv.opts.StartTLSRequired && s.srv.opts.TLS != nil {
				return s.streamError(&stream.Error{Condition: "policy-violation", Text: "STARTTLS is required before registration"}, conn.ReasonPolicy)
			}
			s.c.Write(s.srv.opts.Registration.HandleUnauthenticated(s.ctx, s.domain, e))
			return nil
		}
	}
	return s.streamError(&stream.Error{Condition: "not-authorized", Text: "authenticate first"}, conn.ReasonStreamError)
}

func (s *session) startTLS() error {
	if s.tls || s.srv.opts.TLS == nil {
		s.c.Write([]byte("<failure xmlns='" + stream.NSTLS + "'/>" + stream.Close))
		s.state = stClosing
		s.c.CloseAfter(nil, conn.ReasonTLSFailed)
		return errStop
	}
	if s.dec.Buffered() > 0 {
		// Bytes sent after <starttls/> and before the handshake would be read as if they came over
		// TLS: a plaintext injection (CVE-2011-0411 class). Refuse them.
		return s.streamError(&stream.Error{Condition: "policy-violation", Text: "data after starttls"}, conn.ReasonPolicy)
	}
	s.c.Write([]byte("<proceed xmlns='" + stream.NSTLS + "'/>"))
	if err := s.c.StartTLS(s.ctx, s.srv.opts.TLS); err != nil {
		s.srv.log.Debug("c2s: STARTTLS handshake failed", "remote", s.c.RemoteAddr(), "err", err)
		s.state = stClosing
		s.c.Close(conn.ReasonTLSFailed)
		return errStop
	}
	s.afterTLS()
	s.dec.Reset()
	s.state = stHeader
	return nil
}

func (s *session) saslElement(name string, e *xml.Element) error {
	switch name {
	case "auth":
		if s.sasl != nil {
			return s.saslFailure(sasl.MalformedRequest, "an exchange is already running")
		}
		if s.srv.authBlocked(s.ip) {
			return s.saslFailure(sasl.TemporaryAuthFailure, "too many failed authentications from your address; try again in a minute")
		}
		mech := string(e.Attr("mechanism"))
		domain := s.domain
		srv, err := sasl.NewServer(mech, sasl.ServerConfig{
			Lookup:         s.srv.opts.Lookup(domain),
			ChannelBinding: s.cb,
			AdvertisedPlus: s.tls && len(s.cbTypes) > 0,
			TLS:            s.tls,
			Secret:         s.srv.opts.SASLSecret,
			Authorize: func(ctx context.Context, username, authzid string) error {
				if a, err := jid.Parse(authzid); err == nil && a.IsBare() && a.Local() == username && a.Domain() == domain {
					return nil
				}
				return &sasl.Failure{Condition: sasl.InvalidAuthzid, Text: "you may only act as yourself"}
			},
		})
		if err != nil {
			return s.saslError(mech, err)
		}
		s.sasl = srv
		text := e.Text()
		var in []byte
		switch {
		case len(bytes.TrimSpace(text)) == 0:
			in = nil // no initial response
		case string(bytes.TrimSpace(text)) == "=":
			in = []byte{}
		default:
			if in, err = decode64(text); err != nil {
				return s.saslFailure(sasl.IncorrectEncoding, "")
			}
		}
		return s.saslStep(in)
	case "response":
		if s.sasl == nil {
			return s.saslFailure(sasl.MalformedRequest, "no exchange is running")
		}
		in, err := decode64(e.Text())
		if err != nil {
			return s.saslFailure(sasl.IncorrectEncoding, "")
		}
		return s.saslStep(in)
	case "abort":
		s.sasl = nil
		return s.saslFailure(sasl.Aborted, "")
	}
	return s.streamError(&stream.Error{Condition: "unsupported-stanza-type"}, conn.ReasonStreamError)
}

func decode64(text []byte) ([]byte, error) {
	t := bytes.TrimSpace(text)
	if string(t) == "=" {
		return []byte{}, nil
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(t)))
	n, err := base64.StdEncoding.Strict().Decode(out, t)
	return out[:n], err
}

func (s *session) saslStep(in []byte) error {
	out, done, err := s.sasl.Step(s.ctx, in)
	if err != nil {
		return s.saslError(s.sasl.Mechanism(), err)
	}
	if !done {
		b := append([]byte("<challenge xmlns='"+stream.NSSASL+"'>"), base64.StdEncoding.AppendEncode(nil, out)...)
		s.c.Write(append(b, "</challenge>"...))
		return nil
	}
	mech := s.sasl.Mechanism()
	s.user = s.sasl.Username()
	s.sasl = nil
	s.cb, s.cbTypes = nil, nil // channel binding matters only during SASL: do not carry it for hours
	s.srv.opts.Metrics.Auth(mech, true)
	b := []byte("<success xmlns='" + stream.NSSASL + "'")
	if len(out) > 0 {
		b = append(b, '>')
		b = base64.StdEncoding.AppendEncode(b, out)
		b = append(b, "</success>"...)
	} else {
		b = append(b, "/>"...)
	}
	s.c.Write(b)
	s.dec.Reset()
	s.state = stHeader
	return nil
}

func (s *session) saslError(mech string, err error) error {
	s.sasl = nil
	var f *sasl.Failure
	if errors.As(err, &f) {
		return s.saslFailure(f.Condition, f.Text, mech)
	}
	s.srv.log.Error("c2s: SASL failed", "mechanism", mech, "err", err)
	return s.saslFailure(sasl.TemporaryAuthFailure, "", mech)
}

// saslFailure answers <failure/> and ends the connection after too many.
func (s *session) saslFailure(condition, text string, mech ...string) error {
	s.sasl = nil
	m := ""
	if len(mech) > 0 {
		m = mech[0]
	}
	s.srv.opts.Metrics.Auth(m, false)
	if condition != sasl.TemporaryAuthFailure {
		s.srv.authFailed(s.ip)
	}
	b := []byte("<failure xmlns='" + stream.NSSASL + "'><" + condition + "/>")
	if text != "" {
		b = append(b, "<text xml:lang='en'>"...)
		b = xml.EscapeText(b, text)
		b = append(b, "</text>"...)
	}
	b = append(b, "</failure>"...)
	s.c.Write(b)
	if condition == sasl.Aborted {
		return nil
	}
	s.authFails++
	if int(s.authFails) >= s.srv.opts.MaxAuthFailures {
		s.srv.log.Info("c2s: too many failed authentications", "remote", s.c.RemoteAddr())
		return s.streamError(&stream.Error{Condition: "policy-violation", Text: "too many failed authentication attempts"}, conn.ReasonAuthFailed)
	}
	return nil
}

func (s *session) bind(e *xml.Element) error {
	b := e.Child(stream.NSBind, "bind")
	if string(e.Name()) != "iq" || string(e.Space()) != stream.NSClient || b == nil {
		return s.streamError(&stream.Error{Condition: "not-authorized", Text: "bind a resource first"}, conn.ReasonStreamError)
	}
	id := string(e.Attr("id"))
	if string(e.Attr("type")) != "set" {
		s.c.Write(stanza.New(stanza.BadRequest, "resource binding is an iq set").AppendReply(nil, "iq", id, "", "", nil))
		return nil
	}
	resource := ""
	if r := b.Child(stream.NSBind, "resource"); r != nil {
		resource = string(bytes.TrimSpace(r.Text()))
	}
	if resource == "" {
		resource = "starling-" + newID()[:12]
	}
	full, err := jid.New(s.user, s.domain, resource)
	if err != nil {
		s.c.Write(stanza.New(stanza.BadRequest, "the resource cannot be used: "+err.Error()).AppendReply(nil, "iq", id, "", "", nil))
		return nil
	}
	if others := s.srv.opts.Router.Resources(full.Bare().String()); len(others) >= s.srv.opts.MaxResources && !slices.ContainsFunc(others, func(r *router.Resource) bool { return r.JID() == full }) {
		s.c.Write(stanza.New(stanza.ResourceConstraint, "this account has too many sessions").AppendReply(nil, "iq", id, "", "", nil))
		return nil
	}
	s.sink = &sink{c: s.c, m: s.srv.opts.Metrics}
	s.owner = &owner{}
	s.owner.cur.Store(s)
	res := router.NewResource(full, s.sink, s.owner)
	s.res = res
	if old := s.srv.opts.Router.Bind(s.ctx, res); old != nil {
		old.Close("conflict", "replaced by a new session with the same resource")
	}
	s.state = stBound
	s.srv.opts.Metrics.SessionBound()
	out := make([]byte, 0, 160)
	out = append(out, "<iq type='result' id='"...)
	out = xml.EscapeAttr(out, id)
	out = append(out, "'><bind xmlns='"+stream.NSBind+"'><jid>"...)
	out = xml.EscapeText(out, full.String())
	out = append(out, "</jid></bind></iq>"...)
	s.c.Write(out)
	return nil
}

func (s *session) stanza(e *xml.Element) error {
	switch string(e.Space()) {
	case stream.NSSM:
		return s.smElement(e)
	case nsCSI:
		return s.csiElement(e)
	}
	if s.sm {
		defer func() { s.handled++ }()
	}
	if string(e.Space()) != stream.NSClient {
		return s.streamError(&stream.Error{Condition: "unsupported-stanza-type", Text: "not a jabber:client stanza"}, conn.ReasonStreamError)
	}
	if from := e.Attr("from"); from != nil && !bytes.Equal(from, s.res.Full()) && string(from) != s.res.Bare() {
		return s.streamError(&stream.Error{Condition: "invalid-from"}, conn.ReasonStreamError)
	}
	name := string(e.Name())
	if name == "iq" {
		if sess := e.Child(stream.NSSession, "session"); sess != nil && string(e.Attr("type")) == "set" {
			// RFC 3921 session establishment survives in old clients; RFC 6121 makes it a no-op.
			b := append([]byte("<iq type='result' id='"), xml.EscapeAttr(nil, string(e.Attr("id")))...)
			s.sink.Write(append(b, "'/>"...))
			return nil
		}
	}
	switch name {
	case "message", "presence", "iq":
		s.srv.opts.Metrics.StanzaIn(name)
	}
	if err := s.srv.opts.Router.Route(s.ctx, s.res, e); err != nil {
		return s.streamError(&stream.Error{Condition: "unsupported-stanza-type", Text: "<" + name + "/> is not a stanza"}, conn.ReasonStreamError)
	}
	return nil
}

func kindOf(p []byte) string {
	switch {
	case bytes.HasPrefix(p, []byte("<message")):
		return "message"
	case bytes.HasPrefix(p, []byte("<presence")):
		return "presence"
	case bytes.HasPrefix(p, []byte("<iq")):
		return "iq"
	}
	return "other"
}

func newID() string { return rand.Text() }
