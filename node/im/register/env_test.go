package register

import (
	"encoding/xml"
	"sync"

	"github.com/starling-xmpp/starling/node/router/routertest"
	sxml "github.com/starling-xmpp/starling/xmpp/xml"
)

// events records, in order, what the server queued and which sessions it closed.
type events struct {
	mu  sync.Mutex
	log []string
}

func (ev *events) add(s string) {
	ev.mu.Lock()
	ev.log = append(ev.log, s)
	ev.mu.Unlock()
}

func (ev *events) take() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := ev.log
	ev.log = nil
	return out
}

// recSink records queued stanzas into events as "send <full> <type>[/<condition>]".
type recSink struct {
	ev   *events
	full string
}

func (s recSink) Write(p []byte) error {
	var r routertest.Reply
	if err := xml.Unmarshal(p, &r); err != nil {
		s.ev.add("send " + s.full + " unparsable " + string(p))
		return nil
	}
	line := "send " + s.full + " " + r.Type
	if c := r.Condition(); c != "" {
		line += "/" + c
	}
	s.ev.add(line)
	return nil
}

func (s recSink) WriteElement(e *sxml.Element, set ...sxml.Attr) error {
	return s.Write(e.AppendTo(nil, set...))
}

// recCloser records stream closes as "close <full> <condition>".
type recCloser struct {
	ev   *events
	full string
}

func (c recCloser) CloseStream(condition, _ string) { c.ev.add("close " + c.full + " " + condition) }
