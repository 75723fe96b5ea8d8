package xml

import (
	"strings"
	"testing"
)

// firstElement decodes streamHdr+s and returns the first depth-1 element.
func firstElement(t testing.TB, s string) *Element {
	t.Helper()
	d := NewDecoder(Limits{})
	d.Feed([]byte(streamHdr + s))
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	tok, err := d.Next()
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return tok.Elem
}

func dumpString(e *Element) string {
	var sb strings.Builder
	dumpElem(&sb, e)
	return sb.String()
}

func TestAppendToRewrite(t *testing.T) {
	const msg = `<message to='romeo@example.net' from="juliet@example.com/balcony" type='chat' xmlns:x='urn:x' x:to='keep'><body>hi</body></message>`
	tests := []struct {
		name string
		set  []Attr
		want string
	}{
		{"copy", nil, msg},
		{
			"replace both",
			[]Attr{{Name: []byte("from"), Value: []byte("j@example.com/b")}, {Name: []byte("to"), Value: []byte("r@example.net")}},
			`<message to='r@example.net' from='j@example.com/b' type='chat' xmlns:x='urn:x' x:to='keep'><body>hi</body></message>`,
		},
		{
			"remove and add, escaped",
			[]Attr{{Name: []byte("to")}, {Name: []byte("id"), Value: []byte(`a'b"c<&>`)}},
			`<message from="juliet@example.com/balcony" type='chat' xmlns:x='urn:x' x:to='keep' id='a&apos;b&quot;c&lt;&amp;&gt;'><body>hi</body></message>`,
		},
		{
			"empty value is set, not removed",
			[]Attr{{Name: []byte("type"), Value: []byte{}}},
			`<message to='romeo@example.net' from="juliet@example.com/balcony" type='' xmlns:x='urn:x' x:to='keep'><body>hi</body></message>`,
		},
		{
			"remove absent does nothing",
			[]Attr{{Name: []byte("nothere")}},
			msg,
		},
	}
	e := firstElement(t, msg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(e.AppendTo([]byte("prefix:"), tc.set...))
			if got != "prefix:"+tc.want {
				t.Fatalf("\n got %s\nwant prefix:%s", got, tc.want)
			}
			// The result must itself decode.
			firstElement(t, tc.want)
		})
	}
	selfClosed := firstElement(t, `<presence to='a'/>`)
	if got := string(selfClosed.AppendTo(nil, Attr{Name: []byte("to"), Value: []byte("b")})); got != `<presence to='b'/>` {
		t.Fatalf("self-closed: %s", got)
	}
}

// TestAppendToOuterNamespaces takes elements that depend on declarations
// outside them and checks that AppendTo's output, decoded in a fresh
// stream, means the same.
func TestAppendToOuterNamespaces(t *testing.T) {
	tests := []struct {
		name, in string
		path     []int // child indexes from the depth-1 element
		self     bool
		want     string
	}{
		{"stream prefix nonza", `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, nil, false,
			`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`},
		{"plain stanza", `<message><body>x</body></message>`, nil, true, `<message><body>x</body></message>`},
		{"prefix from parent", `<a xmlns:p='urn:p'><p:b p:c='1'><p:d/></p:b></a>`, []int{0}, false,
			`<p:b p:c='1' xmlns:p='urn:p'><p:d/></p:b>`},
		{"default from parent", `<iq><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>`, []int{0, 0}, false,
			`<item jid='a@b' xmlns='jabber:iq:roster'/>`},
		{"own declarations suffice", `<a xmlns:p='urn:p'><b xmlns='urn:b' xmlns:p='urn:q'><p:c/></b></a>`, []int{0}, true,
			`<b xmlns='urn:b' xmlns:p='urn:q'><p:c/></b>`},
		{"several outer prefixes once each", `<a xmlns:p='urn:p' xmlns:q='urn:q'><x><p:y q:z='1'/><p:w/></x></a>`, []int{0}, false,
			`<x xmlns:p='urn:p' xmlns:q='urn:q'><p:y q:z='1'/><p:w/></x>`},
		{"forwarded message keeps inner default", `<message><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' to='a'/></forwarded></message>`, []int{0, 0}, true,
			`<message xmlns='jabber:client' to='a'/>`},
		{"undeclared default from parent", `<a xmlns='urn:a'><b xmlns=''><c/></b></a>`, []int{0, 0}, false,
			`<c xmlns=''/>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := firstElement(t, tc.in)
			for _, i := range tc.path {
				e = e.FirstChild()
				for ; i > 0; i-- {
					e = e.NextSibling()
				}
			}
			if e.SelfContained() != tc.self {
				t.Errorf("SelfContained = %v, want %v", e.SelfContained(), tc.self)
			}
			out := e.AppendTo(nil)
			if string(out) != tc.want {
				t.Errorf("\n got %s\nwant %s", out, tc.want)
			}
			again := firstElement(t, string(out))
			if dumpString(again) != dumpString(e) {
				t.Errorf("decoded AppendTo output differs:\n got %s\nwant %s", dumpString(again), dumpString(e))
			}
			// A clone behaves the same, and outlives the decoder's buffer.
			c := e.Clone()
			if string(c.AppendTo(nil)) != string(out) || dumpString(c) != dumpString(e) || c.SelfContained() != e.SelfContained() {
				t.Errorf("clone differs: %s / %s", c.AppendTo(nil), dumpString(c))
			}
		})
	}
}

func TestCloneOutlivesDecoder(t *testing.T) {
	d := NewDecoder(Limits{})
	d.Feed([]byte(streamHdr + `<message to='a&amp;b'><body>one &lt;1&gt;</body><x xmlns='urn:x'><y>t</y></x></message>`))
	d.Next()
	tok, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := dumpString(tok.Elem)
	raw := tok.Elem.String()
	c := tok.Elem.Clone()
	// Overwrite the decoder's buffer and arenas with another stanza.
	d.Feed([]byte(`<presence from='zzzzzzzzzzzzzzzzzzzz'><status>qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq</status></presence>`))
	d.Next()
	d.Release()
	if dumpString(c) != want || c.String() != raw {
		t.Fatalf("clone changed:\n got %s\nwant %s", dumpString(c), want)
	}
	if v := c.Attr("to"); string(v) != "a&b" {
		t.Fatalf("Attr = %q", v)
	}
	if y := c.Child("urn:x", "x").Child("", "y"); y == nil || string(y.Text()) != "t" || y.Inner() == nil {
		t.Fatalf("child lookup on clone failed")
	}
}

func TestCloneStreamHeader(t *testing.T) {
	d := NewDecoder(Limits{})
	d.Feed([]byte(streamHdr + `<message/>`))
	tok, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	c := tok.Elem.Clone()
	d.Next()
	if c.String() != streamHdr || string(c.Attr("to")) != "example.com" || c.Inner() != nil || c.FirstChild() != nil {
		t.Fatalf("header clone: %s", c)
	}
	if uri, ok := c.NamespaceDecl("stream"); !ok || string(uri) != NSStream {
		t.Fatalf("header clone declarations: %q %v", uri, ok)
	}
	if !c.Is(NSStream, "stream") {
		t.Fatal("header clone name")
	}
}

func TestElementAccessors(t *testing.T) {
	e := firstElement(t, `<message xml:lang='en' to='a' empty=''><body>x</body><b:body xmlns:b='urn:b'>y</b:body><c/></message>`)
	if !e.Is("jabber:client", "message") || e.Is("", "message") {
		t.Error("Is")
	}
	if string(e.AttrNS(NSXML, "lang")) != "en" || e.Attr("lang") != nil {
		t.Error("xml:lang lookup")
	}
	if v := e.Attr("empty"); v == nil || len(v) != 0 || !e.HasAttr("empty") || e.HasAttr("nope") {
		t.Error("empty attribute must be non-nil")
	}
	if e.NumAttrs() != 3 || string(e.AttrAt(1).Name) != "to" || string(e.AttrAt(0).Prefix) != "xml" {
		t.Error("AttrAt")
	}
	if c := e.Child("urn:b", "body"); c == nil || string(c.Text()) != "y" || string(c.Prefix()) != "b" {
		t.Error("Child with namespace")
	}
	if c := e.Child("", "body"); c == nil || string(c.Text()) != "x" {
		t.Error("Child any namespace")
	}
	if c := e.Child("", "c"); c == nil || c.Inner() != nil || c.NextSibling() != nil || c.FirstChild() != nil || c.Text() != nil {
		t.Error("self-closed child")
	}
	if string(e.Inner()) != `<body>x</body><b:body xmlns:b='urn:b'>y</b:body><c/>` {
		t.Errorf("Inner = %q", e.Inner())
	}
	if _, ok := e.NamespaceDecl(""); ok {
		t.Error("message declares no namespace")
	}
	defer func() {
		if recover() == nil {
			t.Error("AttrAt out of range must panic")
		}
	}()
	e.AttrAt(3)
}

func TestAppendToAllocs(t *testing.T) {
	e := firstElement(t, `<message to='a' from='b'><body>hi</body></message>`)
	dst := make([]byte, 0, 512)
	set := []Attr{{Name: []byte("from"), Value: []byte("c@d")}}
	if n := testing.AllocsPerRun(100, func() { dst = e.AppendTo(dst[:0], set...) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestAppendToNS(t *testing.T) {
	tests := []struct {
		name, in, streamNS, want string
	}{
		{"same default", `<message to='a'><body>x</body></message>`, "jabber:client", `<message to='b'><body>x</body></message>`},
		{"other default", `<message to='a'><body>x</body></message>`, "jabber:server", `<message to='b' xmlns='jabber:client'><body>x</body></message>`},
		{"own declaration", `<message xmlns='jabber:client' to='a'/>`, "tigase:cluster", `<message xmlns='jabber:client' to='b'/>`},
		{"prefixed top, inherited child", `<stream:error><x/></stream:error>`, "urn:other", `<stream:error to='b' xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'><x/></stream:error>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := firstElement(t, tc.in)
			got := string(e.AppendToNS(nil, tc.streamNS, Attr{Name: []byte("to"), Value: []byte("b")}))
			if got != tc.want {
				t.Fatalf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	// No default namespace at all in the source stream.
	d := NewDecoder(Limits{})
	d.Feed([]byte(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a><b/></a>`))
	d.Next()
	tok, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(tok.Elem.AppendToNS(nil, "jabber:client")); got != `<a xmlns=''><b/></a>` {
		t.Fatalf("no-namespace element: %s", got)
	}
	if got := string(tok.Elem.AppendToNS(nil, "")); got != `<a><b/></a>` {
		t.Fatalf("no-namespace element into no-namespace stream: %s", got)
	}
}
