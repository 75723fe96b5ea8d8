package load

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/perf/peer"
	"github.com/starling-xmpp/starling/perf/xmppclient"
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

func (f *fakeServer) session(c net.Conn) {
	r := xmppclient.NewReader(c)
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
		fr, err := r.Next()
		if err != nil {
			return
		}
		switch {
		case fr.Kind == xmppclient.FrameHeader && user == "":
			sess.write([]byte(fakeHeader + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"))
		case fr.Kind == xmppclient.FrameHeader:
			sess.write([]byte(fakeHeader + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"))
		case fr.Kind == xmppclient.FrameStreamEnd:
			sess.write([]byte("</stream:stream>"))
			return
		case string(fr.Name()) == "auth":
			b64 := string(fr.Raw[strings.IndexByte(string(fr.Raw), '>')+1 : strings.LastIndex(string(fr.Raw), "<")])
			creds, _ := base64.StdEncoding.DecodeString(b64)
			parts := strings.Split(string(creds), "\x00")
			if len(parts) != 3 || f.accounts[parts[1]] != parts[2] || parts[2] == "" {
				sess.write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"))
				continue
			}
			user = parts[1]
			sess.write([]byte("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"))
		case string(fr.Name()) == "iq":
			res, _ := xmppclient.ChildText(fr.Raw, "resource")
			id, _ := fr.Attr("id")
			jid = user + "@" + f.domain + "/" + string(res)
			f.mu.Lock()
			f.sessions[jid] = sess
			f.logins++
			f.mu.Unlock()
			sess.write([]byte(fmt.Sprintf("<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>%s</jid></bind></iq>", id, jid)))
		case string(fr.Name()) == "message":
			to, _ := fr.Attr("to")
			f.mu.Lock()
			dst := f.sessions[string(to)]
			f.routed++
			drop := f.dropEvery > 0 && f.routed%f.dropEvery == 0
			f.mu.Unlock()
			if dst != nil && !drop {
				out := append([]byte("<message from='"+jid+"'"), fr.Raw[len("<message"):]...)
				dst.write(out)
			}
		}
	}
}
