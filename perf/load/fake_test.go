package load

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/perf/peer"
	"github.com/starling-xmpp/starling/perf/xmppclient"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// fakeServer is a minimal XMPP server for the scenarios' tests: PLAIN over
// plain streams, resource binding, and message routing by full JID. It
// checks passwords against the accounts it was given.
type fakeServer struct {
	t        *testing.T
	ln       net.Listener
	domain   string
	accounts map[string]string
	mu       sync.Mutex
	sessions map[string]*fakeSession
	wg       sync.WaitGroup
	logins   int
	// drop, if set, makes the server swallow every n-th message.
	dropEvery int
	routed    int
}

type fakeSession struct {
	mu   sync.Mutex
	conn net.Conn
}

func (s *fakeSession) write(b []byte) {
	s.mu.Lock()
	s.conn.Write(b)
	s.mu.Unlock()
}

func newFakeServer(t *testing.T, accts []peer.Account) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{t: t, ln: ln, domain: "localhost", accounts: map[string]string{}, sessions: map[string]*fakeSession{}}
	for _, a := range accts {
		f.accounts[a.User] = a.Password
	}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, s := range f.sessions {
			s.conn.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeServer) target() Target {
	addr := f.ln.Addr().String()
	return Target{Name: "fake", Domain: f.domain, Nodes: []Node{{Name: "fake",
		Endpoints: []peer.Endpoint{{Addr: addr, Security: xmppclient.Plain}}}}}
}

func (f *fakeServer) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			f.session(c)
		}()
	}
}

const fakeHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x' version='1.0'>"

// nextToken reads the next token of a client's stream with xmpp/xml.
func nextToken(dec *xml.Decoder, c net.Conn) (xml.Token, error) {
	for {
		tok, err := dec.Next()
		if !errors.Is(err, xml.ErrNeedMore) {
			return tok, err
		}
		if n, err := dec.ReadFrom(c); n == 0 {
			return tok, err
		}
	}
}

func (f *fakeServer) session(c net.Conn) {
	dec := xml.NewDecoder(xml.DefaultLimits())
	sess := &fakeSession{conn: c}
	user, jid := "", ""
	defer func() {
		if jid != "" {
			f.mu.Lock()
			delete(f.sessions, jid)
			f.mu.Unlock()
		}
	}()
	for {
		tok, err := nextToken(dec, c)
		if err != nil {
			return
		}
		e := tok.Elem
		switch {
		case tok.Kind == xml.StreamStart && user == "":
			sess.write([]byte(fakeHeader + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"))
		case tok.Kind == xml.StreamStart:
			sess.write([]byte(fakeHeader + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"))
		case tok.Kind == xml.StreamEnd:
			sess.write([]byte("</stream:stream>"))
			return
		case string(e.Name()) == "auth":
			creds, _ := base64.StdEncoding.DecodeString(string(e.Text()))
			parts := strings.Split(string(creds), "\x00")
			if len(parts) != 3 || f.accounts[parts[1]] != parts[2] || parts[2] == "" {
				sess.write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"))
				continue
			}
			user = parts[1]
			sess.write([]byte("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"))
			dec.Reset() // the client restarts the stream
		case string(e.Name()) == "iq":
			var res []byte
			if b := e.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind"); b != nil {
				if r := b.Child("urn:ietf:params:xml:ns:xmpp-bind", "resource"); r != nil {
					res = r.Text()
				}
			}
			jid = user + "@" + f.domain + "/" + string(res)
			f.mu.Lock()
			f.sessions[jid] = sess
			f.logins++
			f.mu.Unlock()
			sess.write([]byte(fmt.Sprintf("<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>%s</jid></bind></iq>", e.Attr("id"), jid)))
		case string(e.Name()) == "message":
			to := e.Attr("to")
			f.mu.Lock()
			dst := f.sessions[string(to)]
			f.routed++
			drop := f.dropEvery > 0 && f.routed%f.dropEvery == 0
			f.mu.Unlock()
			if dst != nil && !drop {
				raw := e.Raw()
				out := append([]byte("<message from='"+jid+"'"), raw[len("<message"):]...)
				dst.write(out)
			}
		}
	}
}
