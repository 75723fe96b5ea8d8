package offline

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/node/im/presence"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Offline is what the node wires as the presence handler's Deliverer.
var _ presence.Deliverer = (*Offline)(nil)

var stamp = time.Date(2026, 11, 27, 9, 30, 1, 250e6, time.FixedZone("CET", 3600))

const delay = "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-11-27T08:30:01.250Z'/>"

func TestAppendDelayed(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"<message from='a@example.com/r' to='b@example.com' type='chat'><body>hi</body></message>",
			"<message from='a@example.com/r' to='b@example.com' type='chat'><body>hi</body>" + delay + "</message>"},
		{"<message to='b@example.com'/>", "<message to='b@example.com'>" + delay + "</message>"},
		{"<message/>", "<message>" + delay + "</message>"},
		{"<message to='b@example.com' />\n", "<message to='b@example.com' >" + delay + "</message>"},
		{"<message x='a>b' y=\"</message>\"><body>1 &gt; 0</body></message >  ", "<message x='a>b' y=\"</message>\"><body>1 &gt; 0</body>" + delay + "</message >  "},
		{"<client:message xmlns:client='jabber:client'><client:body>x</client:body></client:message>",
			"<client:message xmlns:client='jabber:client'><client:body>x</client:body>" + delay + "</client:message>"},
	}
	for _, tc := range tests {
		got, err := AppendDelayed([]byte("prefix:"), []byte(tc.in), "example.com", stamp)
		if err != nil {
			t.Errorf("AppendDelayed(%q): %v", tc.in, err)
			continue
		}
		if string(got) != "prefix:"+tc.want {
			t.Errorf("AppendDelayed(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "   ", "hello", "<message", "<message>", "<message><body/></messag>", "<message></message>junk",
		"<message/><message/>", "</message>", "<message a='>", "< message/>", "<message/>x", "<a<b/>", "<message></body>"} {
		if got, err := AppendDelayed(nil, []byte(bad), "example.com", stamp); err == nil {
			t.Errorf("AppendDelayed(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzAppendDelayed checks, with the XML decoder as the oracle, that every well-formed element
// gets a <delay/> as its last child and keeps its name, attributes and children, and that nothing
// panics on any other input.
func FuzzAppendDelayed(f *testing.F) {
	for _, s := range []string{
		"<message to='b@example.com'><body>hi</body></message>",
		"<message/>",
		"<message x='a>b'/>",
		"<p:message xmlns:p='jabber:client'><p:body/></p:message>",
		"<message><body>&lt;/message&gt;</body></message>",
		"<message",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := AppendDelayed(nil, in, "example.com", stamp)
		orig, ok := routertest.ParseOne(in)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("AppendDelayed(%q) failed on a well-formed element: %v", in, err)
		}
		got, ok := routertest.ParseOne(out)
		if !ok {
			t.Fatalf("AppendDelayed(%q) = %q: not well-formed", in, out)
		}
		if string(got.Name()) != string(orig.Name()) || string(got.Space()) != string(orig.Space()) || got.NumAttrs() != orig.NumAttrs() {
			t.Fatalf("AppendDelayed(%q) = %q: the element changed", in, out)
		}
		var last *xml.Element
		n, m := 0, 0
		for c := got.FirstChild(); c != nil; c = c.NextSibling() {
			last = c
			n++
		}
		for c := orig.FirstChild(); c != nil; c = c.NextSibling() {
			m++
		}
		if last == nil || !last.Is(NSDelay, "delay") || n != m+1 {
			t.Fatalf("AppendDelayed(%q) = %q: no delay as the last child", in, out)
		}
	})
}

// flakySink accepts up to ok writes, then fails like a closed connection.
type flakySink struct {
	mu  sync.Mutex
	ok  int
	got []string
}

func (s *flakySink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok == 0 {
		return errors.New("connection closed")
	}
	s.ok--
	s.got = append(s.got, string(p))
	return nil
}

func (s *flakySink) WriteElement(e *xml.Element, set ...xml.Attr) error {
	return s.Write(e.AppendTo(nil, set...))
}

func newStore(t *testing.T, users ...string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "starling.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range users {
		if err := st.CreateUser(t.Context(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func msg(body string) []byte {
	return []byte("<message from='alice@example.com/x' to='bob@example.com' type='chat'><body>" + body + "</body></message>")
}

func TestStoreDeliverLimit(t *testing.T) {
	st := newStore(t, "bob@example.com")
	o, err := New(Options{Store: st, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, b := range []string{"one", "two", "three"} {
		if err := o.StoreOffline(ctx, "bob@example.com", msg(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.StoreOffline(ctx, "bob@example.com", msg("four")); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Errorf("fourth message over a limit of 3: %v, want ErrQuotaExceeded", err)
	}
	if err := o.StoreOffline(ctx, "nobody@example.com", msg("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("message for an unknown account: %v", err)
	}
	if err := o.StoreOffline(ctx, "bob@example.com", []byte("not xml")); err == nil {
		t.Error("stored something that is not a stanza")
	}

	// The session breaks after one message: the rest stays stored.
	s := &flakySink{ok: 1}
	res := router.NewResource(jid.MustParse("bob@example.com/phone"), s, routertest.Discard{})
	if _, err := o.Deliver(ctx, res); err == nil {
		t.Error("a broken delivery reported success")
	}
	if len(s.got) != 1 || !strings.Contains(s.got[0], "<body>one</body><delay xmlns='urn:xmpp:delay' from='example.com' stamp='") {
		t.Errorf("delivered %q", s.got)
	}
	if n, _ := st.CountOffline(ctx, "bob@example.com"); n != 2 {
		t.Errorf("%d messages left, want 2", n)
	}

	// A message stored meanwhile and the two left come next, in order.
	if err := o.StoreOffline(ctx, "bob@example.com", msg("four")); err != nil {
		t.Fatal(err)
	}
	s = &flakySink{ok: 100}
	res = router.NewResource(jid.MustParse("bob@example.com/laptop"), s, routertest.Discard{})
	if more, err := o.Deliver(ctx, res); err != nil || more {
		t.Fatal(more, err)
	}
	var bodies []string
	for _, m := range s.got {
		el, ok := routertest.ParseOne([]byte(m))
		if !ok {
			t.Fatalf("delivered %q is not well-formed", m)
		}
		d := el.Child(NSDelay, "delay")
		if d == nil || string(d.Attr("from")) != "example.com" {
			t.Fatalf("no delay in %q", m)
		}
		if _, err := time.Parse(time.RFC3339, string(d.Attr("stamp"))); err != nil {
			t.Errorf("stamp: %v", err)
		}
		bodies = append(bodies, string(el.Child("", "body").Text()))
	}
	if strings.Join(bodies, ",") != "two,three,four" {
		t.Errorf("delivered %q, want two,three,four", bodies)
	}
	if n, _ := st.CountOffline(ctx, "bob@example.com"); n != 0 {
		t.Errorf("%d messages left after delivery", n)
	}
	// Nothing left: nothing sent.
	if more, err := o.Deliver(ctx, res); err != nil || more || len(s.got) != 3 {
		t.Errorf("empty delivery: %v, %d sent", err, len(s.got))
	}
}

// TestCorruptStoredMessage checks that a stored row that is not a stanza is dropped, not sent and
// not left to block the messages behind it.
func TestCorruptStoredMessage(t *testing.T) {
	st := newStore(t, "bob@example.com")
	ctx := t.Context()
	for _, b := range [][]byte{[]byte("<message"), msg("after")} {
		if err := st.StoreOffline(ctx, "bob@example.com", b, 0); err != nil {
			t.Fatal(err)
		}
	}
	o, _ := New(Options{Store: st})
	s := &flakySink{ok: 10}
	if _, err := o.Deliver(ctx, router.NewResource(jid.MustParse("bob@example.com/r"), s, routertest.Discard{})); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 1 || !strings.Contains(s.got[0], "after") {
		t.Errorf("delivered %q", s.got)
	}
	if n, _ := st.CountOffline(ctx, "bob@example.com"); n != 0 {
		t.Errorf("%d left", n)
	}
}

// TestBatchBudget checks that one call queues at most BatchBytes (but always one message) and
// reports the rest as waiting.
func TestBatchBudget(t *testing.T) {
	st := newStore(t, "bob@example.com")
	ctx := t.Context()
	one := len(msg("0")) + len(delay)
	o, _ := New(Options{Store: st, BatchBytes: 2*one + 10})
	for i := range 5 {
		if err := o.StoreOffline(ctx, "bob@example.com", msg(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	s := &flakySink{ok: 100}
	res := router.NewResource(jid.MustParse("bob@example.com/r"), s, routertest.Discard{})
	for _, want := range []struct {
		sent int
		more bool
	}{{2, true}, {4, true}, {5, false}} {
		more, err := o.Deliver(ctx, res)
		if err != nil || more != want.more || len(s.got) != want.sent {
			t.Fatalf("Deliver: more=%v err=%v sent=%d, want more=%v sent=%d", more, err, len(s.got), want.more, want.sent)
		}
	}
	// A message larger than the budget still goes out, alone.
	o, _ = New(Options{Store: st, BatchBytes: 1})
	for range 2 {
		o.StoreOffline(ctx, "bob@example.com", msg("big"))
	}
	if more, err := o.Deliver(ctx, res); err != nil || !more || len(s.got) != 6 {
		t.Errorf("over-budget message: more=%v err=%v sent=%d", more, err, len(s.got))
	}
}

func TestDefaultLimit(t *testing.T) {
	st := newStore(t)
	for _, tc := range []struct{ in, want int }{{0, DefaultLimit}, {5, 5}, {-1, 0}} {
		o, err := New(Options{Store: st, Limit: tc.in})
		if err != nil || o.limit != tc.want {
			t.Errorf("Limit %d: got %d, %v; want %d", tc.in, o.limit, err, tc.want)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a store succeeded")
	}
}

func BenchmarkAppendDelayed(b *testing.B) {
	in := msg("a reasonably ordinary chat message of some length")
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		buf, _ = AppendDelayed(buf[:0], in, "example.com", stamp)
	}
}
