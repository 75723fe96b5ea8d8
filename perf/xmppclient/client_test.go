package xmppclient

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

const testHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>"

// script is how the scripted server answers each phase of a login.
type script struct {
	features1 string // features before authentication
	auth      string // answer to <auth/>
	features2 string // features after authentication
	bind      string // answer to the bind iq
}

var okScript = script{
	features1: "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
	auth:      "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
	features2: "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
	bind:      "<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/r1</jid></bind></iq>",
}

// serveScript plays s on one accepted connection.
func serveScript(t *testing.T, s script) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		dec := xml.NewDecoder(xml.DefaultLimits())
		authed := false
		for {
			tok, err := dec.Next()
			if errors.Is(err, xml.ErrNeedMore) {
				if n, _ := dec.ReadFrom(c); n == 0 {
					return
				}
				continue
			}
			if err != nil {
				return
			}
			switch {
			case tok.Kind == xml.StreamStart && !authed:
				c.Write([]byte(testHeader + s.features1))
			case tok.Kind == xml.StreamStart:
				c.Write([]byte(testHeader + s.features2))
			case tok.Kind == xml.StreamEnd:
				return
			case string(tok.Elem.Name()) == "auth":
				c.Write([]byte(s.auth))
				if strings.Contains(s.auth, "<success") {
					authed = true
					dec.Reset()
				}
			case string(tok.Elem.Name()) == "iq":
				c.Write([]byte(s.bind))
			case string(tok.Elem.Name()) == "presence":
				c.Write([]byte("<message id='42' to='alice@localhost/r1'><body>hi</body></message>"))
			}
		}
	}()
	return ln.Addr().String()
}

func TestDial(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*script)
		mech   string
		want   string // error substring; empty: success
		unsupp bool
	}{
		{"ok", func(*script) {}, "PLAIN", "", false},
		{"sasl failure", func(s *script) {
			s.auth = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
		}, "PLAIN", "not-authorized", false},
		{"stream error", func(s *script) {
			s.features1 = "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
		}, "PLAIN", "host-unknown", false},
		{"mechanism not offered", func(*script) {}, "SCRAM-SHA-256", "not offered", true},
		{"bind without jid", func(s *script) {
			s.bind = "<iq type='result' id='bind'/>"
		}, "PLAIN", "without a JID", false},
		{"bind refused", func(s *script) {
			s.bind = "<iq type='error' id='bind'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
		}, "PLAIN", "bind refused", false},
		{"bad success payload", func(s *script) {
			s.auth = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>***</success>"
		}, "PLAIN", "bad payload", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := okScript
			tt.edit(&s)
			addr := serveScript(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, Config{Addr: addr, Domain: "localhost", User: "alice", Password: "pw",
				Resource: "r1", Mechanism: tt.mech, Presence: true})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one containing %q", err, tt.want)
				}
				var u *UnsupportedError
				if errors.As(err, &u) != tt.unsupp {
					t.Errorf("UnsupportedError = %v, want %v", !tt.unsupp, tt.unsupp)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.JID() != "alice@localhost/r1" {
				t.Errorf("JID = %q", c.JID())
			}
			// The message the server sends after presence comes through Next.
			tok, err := c.Next()
			if err != nil || tok.Kind != xml.ElementKind || string(tok.Elem.Attr("id")) != "42" {
				t.Fatalf("Next = %v %v, want the message with id 42", tok, err)
			}
			c.Release()
		})
	}
}

func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1024))
			c.Read(make([]byte, 1024))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Dial(ctx, Config{Addr: ln.Addr().String(), Domain: "localhost", User: "a", Password: "b", Mechanism: "PLAIN"}); err == nil {
		t.Fatal("Dial to a silent server succeeded")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Dial took %v after a 200 ms context", el)
	}
}

func TestParseSecurity(t *testing.T) {
	for _, s := range []Security{Plain, StartTLS, DirectTLS} {
		got, err := ParseSecurity(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSecurity(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseSecurity("ssl"); err == nil {
		t.Error("unknown security accepted")
	}
}

// BenchmarkReceive is the receive path of a throughput run: tokens from a
// buffer of messages through xmpp/xml, each one's id attribute read.
func BenchmarkReceive(b *testing.B) {
	msg := []byte("<message from='bench00001@localhost/s' to='bench00051@localhost/r' type='chat' id='123456789'><body>" +
		strings.Repeat("x", 100) + "</body></message>")
	stream := append([]byte(testHeader), bytes.Repeat(msg, 256)...)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	rd := newReader(r)
	for b.Loop() {
		r.Reset(stream)
		rd.restart(r)
		if tok, err := rd.next(); err != nil || tok.Kind != xml.StreamStart {
			b.Fatal(err)
		}
		for range 256 {
			tok, err := rd.next()
			if err != nil {
				b.Fatal(err)
			}
			if len(tok.Elem.Attr("id")) != 9 {
				b.Fatal("no id")
			}
		}
	}
}
