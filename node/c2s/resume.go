package c2s

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/starling-xmpp/starling/node/conn"
	"github.com/starling-xmpp/starling/xmpp/stream"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// XEP-0198 resumption: a session whose connection dies without a clean end stays bound for a while,
// detached, keeping what is sent to it; the client reconnects, authenticates and resumes it with
// <resume previd h/>, and gets every stanza it had not acknowledged. If it does not come back in
// time, the session ends and its unacknowledged messages are stored offline.

// owner is the router's handle on the session that currently serves a resource: resumption moves a
// resource from one connection's session to another's.
type owner struct{ cur atomic.Pointer[session] }

func (o *owner) CloseStream(condition, text string) {
	if s := o.cur.Load(); s != nil {
		s.CloseStream(condition, text)
	}
}

// resumable reports whether a session ending with err may wait for its client to resume it: the link
// died (EOF without </stream:stream>, a read error, silence), rather than the client or the server
// ending the stream on purpose.
func resumable(err error) bool {
	var xerr *xml.Error
	switch {
	case errors.Is(err, errStop), errors.As(err, &xerr), errors.Is(err, net.ErrClosed):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, conn.ErrIdle):
		return true
	}
	return err != nil
}

// detach keeps a session whose connection died, for resumption.
func (s *session) detach() {
	s.sink.mu.Lock()
	s.sink.dying = true
	s.sink.mu.Unlock()
	s.srv.mu.Lock()
	s.detached = true
	s.detachTimer = time.AfterFunc(s.srv.opts.ResumeTimeout, s.expire)
	ch := s.detachedCh
	s.srv.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// expire ends a detached session whose client did not come back.
func (s *session) expire() {
	s.srv.mu.Lock()
	if !s.detached || s.takenOver {
		s.srv.mu.Unlock()
		return
	}
	s.detached = false
	if s.srv.resumable[s.smID] == s {
		delete(s.srv.resumable, s.smID)
	}
	s.srv.mu.Unlock()
	s.endSession(context.WithoutCancel(s.ctx))
	s.srv.opts.Metrics.SessionEnded()
}

// resume takes over a detached session of the same account (XEP-0198 §5).
func (s *session) resume(e *xml.Element) error {
	previd := string(e.Attr("previd"))
	h, herr := strconv.ParseUint(string(e.Attr("h")), 10, 32)
	fail := func(cond string) error {
		s.c.Write([]byte("<failed xmlns='" + stream.NSSM + "'><" + cond + " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
		return nil
	}
	if herr != nil || previd == "" {
		return fail("bad-request")
	}
	old := s.srv.claimResumable(previd, s.user+"@"+s.domain)
	if old == nil {
		return fail("item-not-found")
	}
	if !old.waitDetached() {
		return fail("item-not-found")
	}
	s.srv.mu.Lock()
	if old.detachTimer != nil {
		old.detachTimer.Stop()
	}
	old.detached, old.takenOver = false, true
	s.srv.resumable[previd] = s
	s.srv.mu.Unlock()
	if !old.sink.ack(uint32(h)) {
		// The client claims stanzas that were never sent: the session cannot be trusted.
		old.takenOver = false
		old.expire()
		return fail("unexpected-request")
	}
	s.res, s.sink, s.handled, s.sm, s.smID, s.owner = old.res, old.sink, old.handled, true, previd, old.owner
	s.owner.cur.Store(s)
	s.state = stBound
	b := append([]byte("<resumed xmlns='"+stream.NSSM+"' previd='"), xml.EscapeAttr(nil, previd)...)
	b = append(b, "' h='"...)
	b = strconv.AppendUint(b, uint64(s.handled), 10)
	b = append(b, "'/>"...)
	s.c.Write(b)
	s.sink.attach(s.c)
	return nil
}

// waitDetached waits until a session whose connection is still open notices it is being resumed
// elsewhere: its link is closed and it detaches. It reports false if that did not happen in time.
func (s *session) waitDetached() bool {
	s.srv.mu.Lock()
	if s.detached {
		s.srv.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	s.detachedCh = ch
	s.detachOnEnd = true
	s.srv.mu.Unlock()
	s.c.Abort(conn.ReasonReplaced)
	select {
	case <-ch:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// attach sends a resumed session's output to its new connection: first everything the client has not
// acknowledged, in order, then whatever comes.
func (k *sink) attach(c *conn.Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.c, k.dying = c, false
	for _, b := range k.queue {
		c.Write(b)
	}
}

// claimResumable takes the resumable session previd of account bare out of the table.
func (s *Server) claimResumable(previd, bare string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.resumable[previd]
	if old == nil || old.res == nil || old.res.Bare() != bare {
		return nil
	}
	delete(s.resumable, previd)
	return old
}

// Detached counts sessions waiting for their clients to resume them.
func (s *Server) Detached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.resumable {
		if sess.detached {
			n++
		}
	}
	return n
}
