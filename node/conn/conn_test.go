package conn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a server-side Conn and the client end of a loopback TCP connection.
func pair(t *testing.T, opts Options) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	c, err := New(sc.(*net.TCPConn), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ReasonShutdown); client.Close() })
	return c, client
}

type handler struct {
	tokens  chan string
	silent  func() bool
	onToken func(xml.Token) error
	ended   chan error
}

func (h *handler) Ended(err error) {
	if h.ended != nil {
		h.ended <- err
	}
}

// serve runs c.Serve and returns what it ended with.
func serve(c *Conn, h *handler) error {
	h.ended = make(chan error, 1)
	c.Serve(xml.NewDecoder(xml.DefaultLimits()), h)
	return <-h.ended
}

func (h *handler) HandleToken(t xml.Token) error {
	if h.onToken != nil {
		if err := h.onToken(t); err != nil {
			return err
		}
	}
	s := "end"
	if t.Elem != nil {
		s = string(t.Elem.Name())
	}
	h.tokens <- s
	return nil
}

func (h *handler) Silent() bool {
	if h.silent != nil {
		return h.silent()
	}
	return true
}

const header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

func TestReadAcrossBurstsAndEOF(t *testing.T) {
	c, client := pair(t, Options{})
	h := &handler{tokens: make(chan string, 16)}
	done := make(chan error, 1)
	go func() { done <- serve(c, h) }()
	client.Write([]byte(header + "<message><bo"))
	if got := <-h.tokens; got != "stream" {
		t.Fatalf("first token %q", got)
	}
	// The reader is now parked on readiness with a partial stanza pending; the rest arrives later.
	client.Write([]byte("dy>hi</body></message><iq/>"))
	for _, want := range []string{"message", "iq"} {
		if got := <-h.tokens; got != want {
			t.Fatalf("token %q, want %q", got, want)
		}
	}
	client.Close()
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("reader ended with %v, want EOF", err)
	}
	if c.BytesIn() == 0 {
		t.Fatal("bytes in not counted")
	}
}

func TestWritesArriveInOrder(t *testing.T) {
	c, client := pair(t, Options{})
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := c.Write([]byte("<m/>")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := writers * each * len("<m/>")
	buf := make([]byte, want)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(buf), "<m/>") != writers*each {
		t.Fatal("output interleaved or lost")
	}
	if c.BytesOut() != uint64(want) {
		t.Fatalf("bytes out %d, want %d", c.BytesOut(), want)
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	c, _ := pair(t, Options{MaxPending: 64 << 10, WriteTimeout: 200 * time.Millisecond})
	chunk := make([]byte, 16<<10)
	var err error
	// The client never reads: kernel buffers fill, then the queue, then the cap or the write deadline ends it.
	for i := 0; i < 10_000 && err == nil; i++ {
		err = c.Write(chunk)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a peer that does not read was not disconnected")
	}
	if c.Reason() != ReasonSlowConsumer {
		t.Fatalf("reason %v, want slow_consumer", c.Reason())
	}
	if err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestCloseAfterWritesFinalBytes(t *testing.T) {
	c, client := pair(t, Options{})
	c.Write([]byte("<a/>"))
	c.CloseAfter([]byte("</stream:stream>"), ReasonStreamEnd)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "<a/></stream:stream>" {
		t.Fatalf("got %q", got)
	}
	<-c.Done()
	if c.Reason() != ReasonStreamEnd {
		t.Fatalf("reason %v", c.Reason())
	}
}

func TestSilenceAsksTheOwner(t *testing.T) {
	c, _ := pair(t, Options{Silence: 30 * time.Millisecond})
	calls := 0
	h := &handler{tokens: make(chan string, 1), silent: func() bool { calls++; return calls < 3 }}
	err := serve(c, h)
	if !errors.Is(err, ErrIdle) || calls != 3 {
		t.Fatalf("err %v after %d silence calls", err, calls)
	}
}

func selfSigned(t *testing.T) *tls.Config {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, DNSNames: []string{"t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestTLSIdleWait checks the non-blocking TLS read path: a TLS record split across two TCP writes, with
// the reader parked in between, and several records in one burst.
func TestTLSIdleWait(t *testing.T) {
	c, client := pair(t, Options{})
	h := &handler{tokens: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		if err := c.StartTLS(context.Background(), selfSigned(t)); err != nil {
			done <- err
			return
		}
		done <- serve(c, h)
	}()
	// A client-side TLS conn over a splitter that lets the test release bytes in steps.
	tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte(header))
	if got := <-h.tokens; got != "stream" {
		t.Fatalf("got %q", got)
	}
	tc.Write([]byte("<message>"))
	tc.Write([]byte("<body>x</body></message>"))
	tc.Write([]byte("<iq/><presence/>"))
	for _, want := range []string{"message", "iq", "presence"} {
		select {
		case got := <-h.tokens:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s: the TLS reader did not wake", want)
		}
	}
	c.Write([]byte("<r/>"))
	buf := make([]byte, 4)
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "<r/>" {
		t.Fatalf("read %q %v", buf, err)
	}
	tc.Close()
	if err := <-done; err == nil {
		t.Fatal("reader did not end")
	}
}

func BenchmarkWrite(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	nc, _ := net.Dial("tcp", ln.Addr().String())
	c, _ := New(nc.(*net.TCPConn), nil)
	defer c.Close(ReasonShutdown)
	msg := []byte("<message to='juliet@example.org/balcony' from='romeo@example.net/orchard' type='chat' id='x'><body>Wherefore art thou?</body></message>")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		for c.Write(msg) == ErrSlowConsumer {
		}
	}
	c.Flush(context.Background())
}

func TestPauseReadAndWrite(t *testing.T) {
	c, client := pair(t, Options{})
	h := &handler{tokens: make(chan string, 16)}
	done := make(chan error, 1)
	until := time.Now().Add(150 * time.Millisecond)
	c.PauseRead(until)
	go func() { done <- serve(c, h) }()
	client.Write([]byte(header))
	<-h.tokens
	if time.Now().Before(until) {
		t.Fatal("read while paused")
	}
	until = time.Now().Add(150 * time.Millisecond)
	c.PauseWrite(until)
	c.Write([]byte("<late/>"))
	buf := make([]byte, 7)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "<late/>" {
		t.Fatalf("%q %v", buf, err)
	}
	if time.Now().Before(until) {
		t.Fatal("written while paused")
	}
	client.Close()
	<-done
}

// TestPoller runs the read paths with the epoll poller: Serve returns as soon as the connection has
// nothing to read, and the connection goes on without a goroutine.
func TestPoller(t *testing.T) {
	p, err := NewPoller(5 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	t.Run("wake on data, end on EOF", func(t *testing.T) {
		c, client := pair(t, Options{Poller: p})
		h := &handler{tokens: make(chan string, 16), ended: make(chan error, 1)}
		c.Serve(xml.NewDecoder(xml.DefaultLimits()), h) // returns: nothing to read yet
		if p.Parked() != 1 {
			t.Fatalf("%d parked", p.Parked())
		}
		client.Write([]byte(header + "<message><bo"))
		if got := <-h.tokens; got != "stream" {
			t.Fatalf("got %q", got)
		}
		client.Write([]byte("dy>x</body></message>"))
		if got := <-h.tokens; got != "message" {
			t.Fatalf("got %q", got)
		}
		client.Close()
		if err := <-h.ended; !errors.Is(err, io.EOF) {
			t.Fatalf("ended with %v", err)
		}
		if p.Parked() != 0 {
			t.Fatal("an ended connection stays known to the poller")
		}
	})

	t.Run("hot, then parked, then woken", func(t *testing.T) {
		c, client := pair(t, Options{Poller: p, Hot: 30 * time.Millisecond})
		h := &handler{tokens: make(chan string, 16), ended: make(chan error, 1)}
		go c.Serve(xml.NewDecoder(xml.DefaultLimits()), h)
		client.Write([]byte(header))
		<-h.tokens
		client.Write([]byte("<iq/>")) // within the hot period
		<-h.tokens
		deadline := time.Now().Add(5 * time.Second)
		for p.Parked() == 0 || !c.silentSince(time.Now().UnixNano()+int64(time.Hour)) {
			if time.Now().After(deadline) {
				t.Fatal("the connection never parked after its hot period")
			}
			time.Sleep(time.Millisecond)
		}
		client.Write([]byte("<presence/>"))
		select {
		case got := <-h.tokens:
			if got != "presence" {
				t.Fatalf("got %q", got)
			}
		case err := <-h.ended:
			t.Fatalf("ended with %v after waking from the poller", err)
		case <-time.After(5 * time.Second):
			t.Fatal("not woken")
		}
		client.Close()
		<-h.ended
	})

	t.Run("silence", func(t *testing.T) {
		c, _ := pair(t, Options{Poller: p, Silence: 20 * time.Millisecond})
		calls := 0
		h := &handler{tokens: make(chan string, 1), silent: func() bool { calls++; return calls < 3 }, ended: make(chan error, 1)}
		c.Serve(xml.NewDecoder(xml.DefaultLimits()), h)
		if err := <-h.ended; !errors.Is(err, ErrIdle) || calls != 3 {
			t.Fatalf("ended with %v after %d silence calls", err, calls)
		}
	})

	t.Run("closed while parked", func(t *testing.T) {
		c, _ := pair(t, Options{Poller: p})
		h := &handler{tokens: make(chan string, 1), ended: make(chan error, 1)}
		c.Serve(xml.NewDecoder(xml.DefaultLimits()), h)
		c.Close(ReasonShutdown)
		select {
		case err := <-h.ended:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ended with %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a connection closed while parked never ended")
		}
	})

	t.Run("TLS", func(t *testing.T) {
		c, client := pair(t, Options{Poller: p})
		h := &handler{tokens: make(chan string, 16), ended: make(chan error, 1)}
		go func() {
			if err := c.StartTLS(context.Background(), selfSigned(t)); err != nil {
				h.ended <- err
				return
			}
			c.Serve(xml.NewDecoder(xml.DefaultLimits()), h)
		}()
		tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		for i, part := range []string{header, "<message>", "<body>x</body></message>", "<iq/><presence/>"} {
			tc.Write([]byte(part))
			if i == 0 {
				<-h.tokens
			}
		}
		for _, want := range []string{"message", "iq", "presence"} {
			select {
			case got := <-h.tokens:
				if got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %s: the parked TLS connection did not wake", want)
			}
		}
		tc.Close()
		<-h.ended
	})
}

func TestUnsentIsHandedBack(t *testing.T) {
	got := make(chan [][]byte, 4)
	c, _ := pair(t, Options{OnUnsent: func(u [][]byte) { got <- u }})
	c.PauseWrite(time.Now().Add(time.Hour)) // nothing reaches the socket
	c.Write([]byte("<one/>"))
	c.Write([]byte("<two/>"))
	c.Close(ReasonShutdown)
	// The flusher may have taken the first write before the second was queued: the hand-back can
	// come in two parts, in order.
	var all []byte
	for string(all) != "<one/><two/>" {
		select {
		case u := <-got:
			for _, b := range u {
				all = append(all, b...)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handed back %q, want <one/><two/>", all)
		}
	}
}

// TestWrittenChunksReturnToPool guards against output chunks turning into garbage after a write: the
// writev path nils the slices it wrote, so the flusher must keep its own references to recycle them.
func TestWrittenChunksReturnToPool(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	// One P: a sync.Pool cannot hand a chunk put on one P to a Get on another until it is stolen.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c, client := pair(t, Options{})
	go io.Copy(io.Discard, client)
	ctx := context.Background()
	for _, tt := range []struct {
		writes, size int
	}{
		{1, 100},      // one small chunk, written with write(2)
		{3, 1000},     // two small chunks, writev(2)
		{4, 10 << 10}, // large chunks, writev(2)
	} {
		msg := bytes.Repeat([]byte("x"), tt.size)
		allocs := testing.AllocsPerRun(200, func() {
			for range tt.writes {
				c.Write(msg)
			}
			c.Flush(ctx)
		})
		// Flush's wait channel and the flusher goroutine's start are the only allocations left.
		if allocs > 2 {
			t.Errorf("%d writes of %d bytes and a flush: %.1f allocations, want at most 2", tt.writes, tt.size, allocs)
		}
	}
}

// countingConn counts the bytes written through it, as the userspace traffic meter does.
type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n += n
	return n, err
}

func TestWrap(t *testing.T) {
	t.Run("output goes through the wrapper", func(t *testing.T) {
		c, client := pair(t, Options{})
		var w *countingConn
		if err := c.Wrap(func(nc net.Conn) (net.Conn, error) { w = &countingConn{Conn: nc}; return w, nil }); err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("<hello/>"))
		if err := c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "<hello/>" {
			t.Fatalf("client read %q, %v", buf, err)
		}
		if w.n != 8 {
			t.Errorf("the wrapper saw %d bytes, want 8", w.n)
		}
	})
	t.Run("a refusal closes the connection", func(t *testing.T) {
		c, client := pair(t, Options{})
		refused := errors.New("meter full")
		if err := c.Wrap(func(net.Conn) (net.Conn, error) { return nil, refused }); !errors.Is(err, refused) {
			t.Fatalf("Wrap: %v, want the wrapper's error", err)
		}
		if r := c.Reason(); r != ReasonSetupFailed {
			t.Errorf("close reason %v, want %v", r, ReasonSetupFailed)
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := client.Read(make([]byte, 1)); err == nil {
			t.Fatalf("the client read %d bytes from a refused connection", n)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("a refused connection stayed open")
		}
	})
}
