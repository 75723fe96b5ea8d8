package c2s

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/starling-xmpp/starling/node/conn"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/stream"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// XEP-0198 stream management, without resumption: the client learns which of its stanzas the server
// handled, and the server keeps what it sent until the client acknowledges it, so that messages a
// client never confirmed are stored offline when the session ends instead of being lost on a dead
// mobile link.

const (
	smAskEvery = 8    // request an ack after this many unacknowledged stanzas
	smMaxQueue = 5000 // a client that never acknowledges is disconnected past this
)

// sink is the resource's output: it counts stanzas for metrics and, once stream management is
// enabled, numbers and keeps them until acknowledged.
type sink struct {
	c *conn.Conn
	m Metrics

	mu      sync.Mutex
	enabled bool
	dying   bool     // the connection is gone: keep stanzas for offline storage, write nothing
	sent    uint32   // stanzas sent since enable (XEP-0198 counters wrap at 2^32)
	queue   [][]byte // unacknowledged stanzas: numbers sent-len(queue)+1 … sent
	asked   int      // stanzas sent since the last <r/>

	inactive bool   // XEP-0352: the client said it is inactive
	held     []held // stanzas held back while inactive, oldest first
}

func (k *sink) Write(p []byte) error {
	k.m.StanzaOut(kindOf(p))
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inactive {
		if kind, from := classifyRaw(p); kind != 0 && k.holdLocked(kind, from, append([]byte(nil), p...)) {
			return nil
		}
		k.flushHeldLocked()
	}
	if !k.enabled {
		return k.c.Write(p)
	}
	return k.keepLocked(append([]byte(nil), p...))
}

// sendLocked writes a stanza the sink owns (held back, or kept for acks).
func (k *sink) sendLocked(b []byte) error {
	if !k.enabled {
		return k.c.Write(b)
	}
	return k.keepLocked(b)
}

func (k *sink) WriteElement(e *xml.Element, set ...xml.Attr) error {
	k.m.StanzaOut(string(e.Name()))
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inactive {
		if kind, _ := classify(e); kind != 0 {
			b := e.AppendTo(nil, set...)
			from := string(e.Attr("from"))
			for _, a := range set {
				if string(a.Name) == "from" {
					from = string(a.Value)
				}
			}
			if k.holdLocked(kind, from, b) {
				return nil
			}
			k.flushHeldLocked()
			return k.sendLocked(b)
		}
		k.flushHeldLocked()
	}
	if !k.enabled {
		return k.c.WriteElement(e, set...)
	}
	return k.keepLocked(e.AppendTo(nil, set...))
}

// keepLocked numbers a stanza, keeps it and writes it, in the order the client will count them.
func (k *sink) keepLocked(b []byte) error {
	if len(k.queue) >= smMaxQueue {
		// A client that asked for acks and never gives them would make the node keep everything.
		b := (&stream.Error{Condition: "policy-violation", Text: "too many unacknowledged stanzas"}).Append(nil)
		k.c.CloseAfter(append(b, stream.Close...), conn.ReasonSlowConsumer)
		return conn.ErrSlowConsumer
	}
	k.sent++
	k.queue = append(k.queue, b)
	if k.dying {
		return nil
	}
	if err := k.c.Write(b); err != nil {
		return err
	}
	if k.asked++; k.asked >= smAskEvery {
		k.asked = 0
		return k.c.Write([]byte("<r xmlns='" + stream.NSSM + "'/>"))
	}
	return nil
}

// ack applies the client's <a h=…/>; false when h acknowledges stanzas never sent.
func (k *sink) ack(h uint32) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	first := k.sent - uint32(len(k.queue)) // acknowledged so far
	n := h - first
	if n > uint32(len(k.queue)) {
		return false
	}
	for i := range n {
		k.queue[i] = nil
	}
	k.queue = k.queue[n:]
	return true
}

// unacked takes what the client never acknowledged so far; from now on nothing is written and what
// arrives is kept for the next call.
func (k *sink) unacked() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dying = true
	q := k.queue
	k.queue = nil
	return q
}

// csiElement handles <active/> and <inactive/> (XEP-0352).
func (s *session) csiElement(e *xml.Element) error {
	switch string(e.Name()) {
	case "active":
		s.sink.setActive(true)
	case "inactive":
		s.sink.setActive(false)
	default:
		return s.streamError(&stream.Error{Condition: "unsupported-stanza-type"}, conn.ReasonStreamError)
	}
	return nil
}

// smElement handles the stream-management nonzas of a bound session.
func (s *session) smElement(e *xml.Element) error {
	switch string(e.Name()) {
	case "enable":
		s.sink.mu.Lock()
		already := s.sink.enabled
		s.sink.enabled = true
		s.sink.mu.Unlock()
		if already {
			s.c.Write([]byte("<failed xmlns='" + stream.NSSM + "'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
			return nil
		}
		s.sm = true
		if r := string(e.Attr("resume")); (r == "true" || r == "1") && s.srv.opts.ResumeTimeout > 0 {
			s.smID = newID()
			s.srv.mu.Lock()
			s.srv.resumable[s.smID] = s
			s.srv.mu.Unlock()
			b := append([]byte("<enabled xmlns='"+stream.NSSM+"' id='"), s.smID...)
			b = append(b, "' resume='true' max='"...)
			b = strconv.AppendInt(b, int64(s.srv.opts.ResumeTimeout/time.Second), 10)
			s.c.Write(append(b, "'/>"...))
			return nil
		}
		s.c.Write([]byte("<enabled xmlns='" + stream.NSSM + "'/>"))
	case "r":
		if !s.sm {
			return s.streamError(&stream.Error{Condition: "unsupported-stanza-type", Text: "stream management is not enabled"}, conn.ReasonStreamError)
		}
		b := append([]byte("<a xmlns='"+stream.NSSM+"' h='"), strconv.FormatUint(uint64(s.handled), 10)...)
		s.c.Write(append(b, "'/>"...))
	case "a":
		h, err := strconv.ParseUint(string(e.Attr("h")), 10, 32)
		if !s.sm || err != nil {
			return s.streamError(&stream.Error{Condition: "undefined-condition", Text: "bad or unexpected stream-management ack"}, conn.ReasonStreamError)
		}
		if !s.sink.ack(uint32(h)) {
			return s.streamError(&stream.Error{Condition: "undefined-condition", Text: "the ack counts stanzas that were never sent"}, conn.ReasonStreamError)
		}
	default:
		return s.streamError(&stream.Error{Condition: "unsupported-stanza-type"}, conn.ReasonStreamError)
	}
	return nil
}

// endSession ends a session with stream management: the messages the client never acknowledged (and
// any routed to it while it ends) are stored as offline messages, in order, before and after the
// resource is unbound (XEP-0198 §6.2 leaves the server to treat them as undelivered; storing them
// loses nothing). A message routed to the account after the unbind may be stored before the last few.
func (s *session) endSession(ctx context.Context) {
	s.storeUnacked(ctx, s.sink.unacked())
	s.srv.opts.Router.Unbind(ctx, s.res)
	s.storeUnacked(ctx, s.sink.unacked())
}

func (s *session) storeUnacked(ctx context.Context, q [][]byte) {
	stored := 0
	for _, raw := range q {
		if !storableMessage(raw) {
			continue
		}
		if err := s.srv.opts.Router.StoreOffline(ctx, s.res.Bare(), raw); err != nil {
			s.srv.log.Warn("c2s: an unacknowledged message could not be stored offline", "to", s.res.Bare(), "err", err)
			continue
		}
		stored++
	}
	if stored > 0 {
		s.srv.log.Info("c2s: stored unacknowledged messages offline", "to", s.res.Bare(), "count", stored)
	}
}

// storableMessage reports whether a sent stanza is a message worth redelivering (chat or normal, with
// a body).
func storableMessage(raw []byte) bool {
	ok := false
	stanza.Inspect(raw, func(e *xml.Element) {
		if string(e.Name()) != "message" {
			return
		}
		switch string(e.Attr("type")) {
		case "", "normal", "chat":
			ok = e.Child("", "body") != nil
		}
	})
	return ok
}
