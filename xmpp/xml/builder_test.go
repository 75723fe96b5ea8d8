package xml

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBuilder(t *testing.T) {
	var b Builder
	b.Start("iq", "type", "result", "id", `1'"<&>`, "to", "a@b/c")
	b.Start("query", "xmlns", "jabber:iq:roster")
	b.Start("item", "jid", "x@y", "name", "Tab\tNewline\nCR\r")
	b.Start("group")
	b.Text("Friends & <Family> ]]>\r\n")
	b.End()
	b.End()
	b.Raw([]byte("<raw/>"))
	b.End()
	b.Start("empty")
	b.End()
	b.End()
	want := `<iq type='result' id='1&apos;&quot;&lt;&amp;&gt;' to='a@b/c'><query xmlns='jabber:iq:roster'><item jid='x@y' name='Tab&#x9;Newline&#xA;CR&#xD;'><group>Friends &amp; &lt;Family&gt; ]]&gt;&#xD;
</group></item><raw/></query><empty/></iq>`
	if got := string(b.Bytes()); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	if b.Open() != 0 {
		t.Fatalf("Open = %d", b.Open())
	}
	e := firstElement(t, string(b.Bytes()))
	if string(e.Attr("id")) != `1'"<&>` {
		t.Errorf("id round trip: %q", e.Attr("id"))
	}
	item := e.Child("jabber:iq:roster", "query").Child("jabber:iq:roster", "item")
	if string(item.Attr("name")) != "Tab\tNewline\nCR\r" {
		t.Errorf("name round trip: %q", item.Attr("name"))
	}
	if string(item.Child("", "group").Text()) != "Friends & <Family> ]]>\r\n" {
		t.Errorf("text round trip: %q", item.Child("", "group").Text())
	}
	b.Reset()
	if len(b.Bytes()) != 0 || b.Open() != 0 {
		t.Fatal("Reset")
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	inputs := []string{
		"", "plain", "&<>\"'", "a\x00b\x01c\x1fd", "bad utf8 \xff\xfe end", "\uFFFE\uFFFF", "ok \uFFFD",
		"emoji 😀 and ñ", "\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 too big", "\xc0\xaf overlong",
		"tab\tnl\ncr\rcrlf\r\n", strings.Repeat("x&", 100),
	}
	for _, in := range inputs {
		// The expected value: illegal characters replaced by U+FFFD.
		var want strings.Builder
		for i := 0; i < len(in); {
			r, n := utf8.DecodeRuneInString(in[i:])
			if r == 0xFFFD && n == 1 || !isXMLChar(r) {
				want.WriteRune(0xFFFD)
			} else {
				want.WriteString(in[i : i+n])
			}
			i += n
		}
		var b Builder
		b.Start("a", "v", in)
		b.Text(in)
		b.End()
		e := firstElement(t, string(b.Bytes()))
		if string(e.Attr("v")) != want.String() {
			t.Errorf("attr %q: got %q want %q", in, e.Attr("v"), want.String())
		}
		if string(e.Text()) != want.String() && !(e.Text() == nil && want.Len() == 0) {
			t.Errorf("text %q: got %q want %q", in, e.Text(), want.String())
		}
		if got := string(appendEscaped(nil, []byte(in), true)); got != string(EscapeAttr(nil, in)) {
			t.Errorf("[]byte and string escapers differ for %q", in)
		}
	}
}

func TestBuilderMisuse(t *testing.T) {
	for name, f := range map[string]func(*Builder){
		//lint:ignore SA5012 an odd count is the misuse under test
		"odd attrs":     func(b *Builder) { b.Start("a", "k") },
		"end with none": func(b *Builder) { b.End() },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(new(Builder))
		})
	}
}

func TestBuilderAllocs(t *testing.T) {
	b := NewBuilder(make([]byte, 0, 1024))
	b.stack = make([]string, 0, 8)
	n := testing.AllocsPerRun(100, func() {
		b.Reset()
		b.Start("iq", "type", "result", "id", "abc")
		b.Start("query", "xmlns", "http://jabber.org/protocol/disco#info")
		b.Start("identity", "category", "server", "type", "im", "name", "Starling")
		b.End()
		b.End()
		b.End()
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// FuzzEscape checks that escaped text and attribute values always decode,
// to the input with characters XML cannot carry replaced by U+FFFD.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "a&b<c>d", "'\"", "\r\n\t", "\x00\xff", "\uFFFE😀", "]]>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
				want.WriteRune(0xFFFD)
			} else {
				want.WriteString(s[i : i+n])
			}
			i += n
		}
		var b Builder
		b.Start("a", "v", s)
		b.Text(s)
		b.End()
		e := firstElement(t, string(b.Bytes()))
		if string(e.Attr("v")) != want.String() {
			t.Fatalf("attribute: got %q want %q", e.Attr("v"), want.String())
		}
		if string(e.Text()) != want.String() {
			t.Fatalf("text: got %q want %q", e.Text(), want.String())
		}
	})
}
