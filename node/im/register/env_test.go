package register

import (
	"encoding/xml"
	"sync"
	"testing"

	sxml "github.com/starling-xmpp/starling/xmpp/xml"
)

// sink captures what the server queues for the client.
type sink struct {
	mu  sync.Mutex
	got [][]byte
}

func (s *sink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, append([]byte(nil), p...))
	return nil
}

func (s *sink) WriteElement(e *sxml.Element, set ...sxml.Attr) error {
	return s.Write(e.AppendTo(nil, set...))
}

type nopCloser struct{}

func (nopCloser) CloseStream(string, string) {}

// parse decodes one stanza as a client sends it in a jabber:client stream.
func parse(t *testing.T, s string) *sxml.Element {
	t.Helper()
	d := sxml.NewDecoder(sxml.Limits{})
	d.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"))
	d.Feed([]byte(s))
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	tok, err := d.Next()
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return tok.Elem.Clone()
}

// reply is the part of an iq reply the tests check.
type reply struct {
	Type  string `xml:"type,attr"`
	ID    string `xml:"id,attr"`
	From  string `xml:"from,attr"`
	To    string `xml:"to,attr"`
	Inner []byte `xml:",innerxml"`
	Error *struct {
		Type string `xml:"type,attr"`
		Cond []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
}

func (r reply) condition() string {
	if r.Error == nil || len(r.Error.Cond) == 0 {
		return ""
	}
	return r.Error.Cond[0].XMLName.Local
}

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
	var r reply
	if err := xml.Unmarshal(p, &r); err != nil {
		s.ev.add("send " + s.full + " unparsable " + string(p))
		return nil
	}
	line := "send " + s.full + " " + r.Type
	if c := r.condition(); c != "" {
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
