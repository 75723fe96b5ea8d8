package xml

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// validCases are streams the decoder must accept; want lists the canonical tokens.
var validCases = []struct {
	name string
	in   string
	want []string
}{
	{
		name: "empty stream with declaration",
		in:   `<?xml version='1.0' encoding='UTF-8'?>` + streamHdr + trailer,
		want: []string{
			`StreamStart <{http://etherx.jabber.org/streams}stream {}to="example.com" {}version="1.0"></> raw="` + strings.ReplaceAll(streamHdr, `"`, `\"`) + `"`,
			`StreamEnd`,
		},
	},
	{
		name: "message with entities and char refs",
		in:   streamHdr + `<message to='a@b/r' type="chat"><body>a &lt;b&gt; &amp; &quot;c&apos; &#65;&#x42;&#x1F600;</body></message>` + trailer,
		want: []string{
			"", // streamHdr, not checked
			`Element <{jabber:client}message {}to="a@b/r" {}type="chat"><{jabber:client}body>"a <b> & \"c' AB😀"</></> raw="<message to='a@b/r' type=\"chat\"><body>a &lt;b&gt; &amp; &quot;c&apos; &#65;&#x42;&#x1F600;</body></message>"`,
			`StreamEnd`,
		},
	},
	{
		name: "keepalive whitespace, nonza with stream prefix, default and prefixed namespaces",
		in: streamHdr + " \n\t " + `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>` + "\n " +
			`<iq type='get' id='1'><query xmlns='jabber:iq:roster' xmlns:x='urn:x' x:ver='3' xml:lang='en'/></iq>` + trailer,
		want: []string{
			"",
			`Element <{http://etherx.jabber.org/streams}features><{urn:ietf:params:xml:ns:xmpp-tls}starttls><{urn:ietf:params:xml:ns:xmpp-tls}required></></></> raw="<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"`,
			`Element <{jabber:client}iq {}type="get" {}id="1"><{jabber:iq:roster}query {urn:x}ver="3" {http://www.w3.org/XML/1998/namespace}lang="en"></></> raw="<iq type='get' id='1'><query xmlns='jabber:iq:roster' xmlns:x='urn:x' x:ver='3' xml:lang='en'/></iq>"`,
			`StreamEnd`,
		},
	},
	{
		name: "CDATA, mixed text and CRLF normalisation",
		in:   streamHdr + "<message><body>one<![CDATA[<two> & ]]]>\r\nthree<b/>four\rfive</body></message>" + trailer,
		want: []string{
			"",
			`Element <{jabber:client}message><{jabber:client}body>"one<two> & ]\nthreefour\nfive"<{jabber:client}b></></></> raw="<message><body>one<![CDATA[<two> & ]]]>\r\nthree<b/>four\rfive</body></message>"`,
			`StreamEnd`,
		},
	},
	{
		name: "undeclared default namespace and attribute tricks",
		in:   streamHdr + `<a xmlns='' b = '>' c='a&#9;b' d='x&apos;"y'><x:c xmlns:x='urn:c'>t</x:c></a>` + trailer,
		want: []string{
			"",
			`Element <{}a {}b=">" {}c="a\tb" {}d="x'\"y"><{urn:c}c>"t"</></> raw="<a xmlns='' b = '>' c='a&#9;b' d='x&apos;\"y'><x:c xmlns:x='urn:c'>t</x:c></a>"`,
			`StreamEnd`,
		},
	},
	{
		name: "self-closed stream streamHdr",
		in:   `<stream:stream ` + streamNS + `/>`,
		want: []string{"", "StreamEnd"},
	},
	{
		name: "end tags in CDATA and whitespace in end tags",
		in:   streamHdr + "<a><b><![CDATA[</a></c>]]></b \t\r\n></a >" + trailer,
		want: []string{"", `Element <{jabber:client}a><{jabber:client}b>"</a></c>"</></> raw="<a><b><![CDATA[</a></c>]]></b \t\r\n></a >"`, "StreamEnd"},
	},
	{
		// More declarations and a longer prefix than the decoder keeps inline: the header spills to the
		// heap and every binding still resolves.
		name: "stream header with many namespace declarations",
		in: `<streamprefix:stream xmlns='jabber:server' xmlns:streamprefix='http://etherx.jabber.org/streams' ` +
			`xmlns:db='jabber:server:dialback' xmlns:a='urn:example:a:very:long:namespace:name:to:pass:the:inline:room' ` +
			`xmlns:b='urn:example:b'><a:x b:y='1'/><db:result/></streamprefix:stream>`,
		want: []string{
			"",
			`Element <{urn:example:a:very:long:namespace:name:to:pass:the:inline:room}x {urn:example:b}y="1"></> raw="<a:x b:y='1'/>"`,
			`Element <{jabber:server:dialback}result></> raw="<db:result/>"`,
			`StreamEnd`,
		},
	},
	{
		name: "unicode names",
		in:   streamHdr + `<ñame attr·x='1'><日本>語</日本></ñame>` + trailer,
		want: []string{"", `Element <{jabber:client}ñame {}attr·x="1"><{jabber:client}日本>"語"</></> raw="<ñame attr·x='1'><日本>語</日本></ñame>"`, "StreamEnd"},
	},
}

func TestDecodeValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeChunks(Limits{}, []byte(tc.in))
			if r.err != nil {
				t.Fatalf("error: %v", r.err)
			}
			if len(r.toks) != len(tc.want) {
				t.Fatalf("got %d tokens, want %d:\n%s", len(r.toks), len(tc.want), strings.Join(r.toks, "\n"))
			}
			for i, w := range tc.want {
				if w != "" && r.toks[i] != w {
					t.Errorf("token %d:\n got %s\nwant %s", i, r.toks[i], w)
				}
			}
		})
	}
}

// invalidCases must fail with the given condition.
var invalidCases = []struct {
	name, in, cond string
}{
	{"comment in element", streamHdr + `<message><!-- hi --></message>`, CondRestrictedXML},
	{"comment at stream level", streamHdr + `<!-- hi -->`, CondRestrictedXML},
	{"comment before stream", `<!-- hi -->` + streamHdr, CondRestrictedXML},
	{"doctype", `<!DOCTYPE stream>` + streamHdr, CondRestrictedXML},
	{"processing instruction", streamHdr + `<?foo bar?>`, CondRestrictedXML},
	{"processing instruction in element", streamHdr + `<a><?foo?></a>`, CondRestrictedXML},
	{"xml declaration later", streamHdr + `<?xml version='1.0'?>`, CondRestrictedXML},
	{"two xml declarations", `<?xml version='1.0'?><?xml version='1.0'?>` + streamHdr, CondRestrictedXML},
	{"undeclared entity", streamHdr + `<a>&nbsp;</a>`, CondRestrictedXML},
	{"undeclared entity in attribute", streamHdr + `<a b='&foo;'/>`, CondRestrictedXML},
	{"encoding", `<?xml version='1.0' encoding='ISO-8859-1'?>` + streamHdr, CondUnsupportedEncoding},
	{"bad xml version", `<?xml version='2.0'?>` + streamHdr, CondNotWellFormed},
	{"declaration without version", `<?xml encoding='UTF-8'?>` + streamHdr, CondNotWellFormed},
	{"undeclared element prefix", streamHdr + `<x:a/>`, CondBadNamespacePrefix},
	{"undeclared attribute prefix", streamHdr + `<a x:b='1'/>`, CondBadNamespacePrefix},
	{"prefix declared on sibling", streamHdr + `<a><b xmlns:x='u'/><x:c/></a>`, CondBadNamespacePrefix},
	{"undeclaring a prefix", streamHdr + `<a xmlns:x=''/>`, CondBadNamespacePrefix},
	{"declaring xmlns", streamHdr + `<a xmlns:xmlns='u'/>`, CondBadNamespacePrefix},
	{"rebinding xml", streamHdr + `<a xmlns:xml='u'/>`, CondBadNamespacePrefix},
	{"stream prefix undeclared", `<stream:stream xmlns='jabber:client'>`, CondBadNamespacePrefix},
	{"wrong stream namespace", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>`, CondInvalidNamespace},
	{"wrong stream name", `<stream:streams ` + streamNS + `>`, CondInvalidNamespace},
	{"unprefixed stream in wrong ns", `<stream xmlns='jabber:client'>`, CondInvalidNamespace},
	{"mismatched tags", streamHdr + `<a><b></a></b>`, CondNotWellFormed},
	{"end tag closes the parent", streamHdr + `<message><body></message>`, CondNotWellFormed},
	{"depth-1 end tag mismatched", streamHdr + `<message></presence>`, CondNotWellFormed},
	{"end tag a prefix of the name", streamHdr + `<message><body></bod></message>`, CondNotWellFormed},
	{"end tag longer than the name", streamHdr + `<a><b></bb></a>`, CondNotWellFormed},
	{"end tag without the prefix", streamHdr + `<a xmlns:x='u'><x:b></b></a>`, CondNotWellFormed},
	{"end tag with a prefix", streamHdr + `<a xmlns:x='u'><b></x:b></a>`, CondNotWellFormed},
	{"end tag of a self-closed sibling", streamHdr + `<a><b/></b></a>`, CondNotWellFormed},
	{"unicode end tag mismatched", streamHdr + `<日本><ñame></ñam></日本>`, CondNotWellFormed},
	{"empty end tag name", streamHdr + `<a></ a>`, CondNotWellFormed},
	{"junk after end tag name", streamHdr + `<a><b></b c></a>`, CondNotWellFormed},
	{"slash after end tag name", streamHdr + `<a></a/>`, CondNotWellFormed},
	{"mismatched stream end", streamHdr + `</stream:streams>`, CondNotWellFormed},
	{"mismatched prefix", streamHdr + `<a xmlns:x='u' xmlns:y='u'><x:b></y:b></a>`, CondNotWellFormed},
	{"duplicate attribute", streamHdr + `<a b='1' b='2'/>`, CondNotWellFormed},
	{"duplicate expanded attribute", streamHdr + `<a xmlns:x='u' xmlns:y='u' x:b='1' y:b='2'/>`, CondNotWellFormed},
	{"duplicate declaration", streamHdr + `<a xmlns:x='u' xmlns:x='v'/>`, CondNotWellFormed},
	{"lt in attribute", streamHdr + `<a b='<'/>`, CondNotWellFormed},
	{"unquoted attribute", streamHdr + `<a b=1/>`, CondNotWellFormed},
	{"missing space between attributes", streamHdr + `<a b='1'c='2'/>`, CondNotWellFormed},
	{"bad name", streamHdr + `<1a/>`, CondNotWellFormed},
	{"bad attribute name", streamHdr + `<a -b='1'/>`, CondNotWellFormed},
	{"double colon name", streamHdr + `<a:b:c/>`, CondNotWellFormed},
	{"empty local name", streamHdr + `<a: />`, CondNotWellFormed},
	{"invalid utf-8", streamHdr + "<a>\xff</a>", CondNotWellFormed},
	{"overlong utf-8", streamHdr + "<a>\xc0\xaf</a>", CondNotWellFormed},
	{"control char", streamHdr + "<a>\x01</a>", CondNotWellFormed},
	{"U+FFFE", streamHdr + "<a>\uFFFE</a>", CondNotWellFormed},
	{"char ref to NUL", streamHdr + `<a>&#0;</a>`, CondNotWellFormed},
	{"char ref to surrogate", streamHdr + `<a>&#xD800;</a>`, CondNotWellFormed},
	{"char ref too large", streamHdr + `<a>&#x110000;</a>`, CondNotWellFormed},
	{"bare ampersand", streamHdr + `<a>a & b</a>`, CondNotWellFormed},
	{"cdata end in text", streamHdr + `<a>]]></a>`, CondNotWellFormed},
	{"text before stream", `hello` + streamHdr, CondNotWellFormed},
	{"end before stream", `</stream:stream>`, CondNotWellFormed},
	{"text at stream level", streamHdr + `hello`, CondBadFormat},
	{"cdata at stream level", streamHdr + `<![CDATA[x]]>`, CondBadFormat},
	{"lt after lt", streamHdr + `<<a/>`, CondNotWellFormed},
	{"space after slash", streamHdr + `<a/ ><b/>`, CondNotWellFormed},
}

func TestDecodeInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			// Closing the stream completes any element left open by the case.
			r := decodeChunks(Limits{}, []byte(tc.in+`</a></a>`+trailer))
			if got := condition(r.err); got != tc.cond {
				t.Fatalf("condition %q (%v), want %q", got, r.err, tc.cond)
			}
		})
	}
}

func TestErrorIsSticky(t *testing.T) {
	d := NewDecoder(Limits{})
	d.Feed([]byte(streamHdr + `<a><!-- x --></a>`))
	var first error
	for first == nil {
		_, err := d.Next()
		if err != nil {
			first = err
		}
	}
	d.Feed([]byte(`<message/>`))
	for i := 0; i < 3; i++ {
		if _, err := d.Next(); err != first {
			t.Fatalf("Next after error = %v, want the first error %v", err, first)
		}
	}
	d.Reset()
	if _, err := d.Next(); err != first {
		t.Fatalf("Next after Reset = %v, want %v", err, first)
	}
	var xe *Error
	if !errors.As(first, &xe) || xe.Offset != int64(len(streamHdr)+3) {
		t.Fatalf("error %v: want offset %d", first, len(streamHdr)+3)
	}
	if !strings.Contains(first.Error(), "restricted-xml") {
		t.Errorf("Error() = %q lacks the condition", first.Error())
	}
}

// splitInputs are the inputs checked at every split point.
func splitInputs() []string {
	var in []string
	for _, tc := range validCases {
		in = append(in, tc.in)
	}
	for _, tc := range invalidCases {
		in = append(in, tc.in+`</a></a>`+trailer)
	}
	return in
}

// TestSplitEverywhere feeds every input split at every point, and one byte
// at a time, and requires the same tokens and the same error as in one piece.
func TestSplitEverywhere(t *testing.T) {
	for _, in := range splitInputs() {
		b := []byte(in)
		whole := decodeChunks(Limits{}, b)
		check := func(how string, got result) {
			t.Helper()
			if errString(got.err) != errString(whole.err) || strings.Join(got.toks, "\n") != strings.Join(whole.toks, "\n") {
				t.Fatalf("%s of %q:\n got %v %q\nwant %v %q", how, in, errString(got.err), got.toks, errString(whole.err), whole.toks)
			}
		}
		for i := 1; i < len(b); i++ {
			check("split at "+strconv.Itoa(i), decodeChunks(Limits{}, b[:i], b[i:]))
		}
		chunks := make([][]byte, len(b))
		for i := range b {
			chunks[i] = b[i : i+1]
		}
		check("byte by byte", decodeChunks(Limits{}, chunks...))
	}
}

// TestFailOnArrival checks that a mismatched end tag, and the start tag
// past the element limit, fail the stream as soon as the offending bytes
// have arrived, however the input was split (inside names included), and
// not one byte earlier: a peer cannot leave the decoder waiting for an end
// that counting depth alone would expect.
func TestFailOnArrival(t *testing.T) {
	tests := []struct {
		lim  Limits
		in   string // ends with the offending byte
		cond string
		text string
	}{
		{Limits{}, `<message><body></message>`, CondNotWellFormed, "end tag </message> does not match <body>"},
		{Limits{}, `<message></presence>`, CondNotWellFormed, "end tag </presence> does not match <message>"},
		{Limits{}, `<a xmlns:x='u'><x:bb c='>'></x:b>`, CondNotWellFormed, "end tag </x:b> does not match <x:bb>"},
		{Limits{}, `<a><b><c></c></b></c>`, CondNotWellFormed, "end tag </c> does not match <a>"},
		{Limits{}, `<日本><ñame>x</ñam>`, CondNotWellFormed, "end tag </ñam> does not match <ñame>"},
		{Limits{}, `<a><b></b c>`, CondNotWellFormed, "expected '>' in end tag"},
		{Limits{MaxElements: 5}, `<a><b/><b><b/></b><b/><b`, CondPolicyViolation, "more than 5 elements in one stanza"},
	}
	for _, tc := range tests {
		whole := []byte(streamHdr + tc.in)
		want := decodeChunks(tc.lim, whole)
		if condition(want.err) != tc.cond || !strings.Contains(errString(want.err), tc.text) {
			t.Fatalf("%s: got %v, want %s: %s", tc.in, want.err, tc.cond, tc.text)
		}
		for k := len(streamHdr); k < len(whole); k++ {
			if r := decodeChunks(tc.lim, whole[:k]); r.err != nil {
				t.Fatalf("%s: first %d bytes already fail: %v", tc.in, k, r.err)
			}
			if r := decodeChunks(tc.lim, whole[:k], whole[k:]); errString(r.err) != errString(want.err) {
				t.Fatalf("%s split at %d: got %v, want %v", tc.in, k, r.err, want.err)
			}
		}
		chunks := make([][]byte, len(whole))
		for i := range whole {
			chunks[i] = whole[i : i+1]
		}
		if r := decodeChunks(tc.lim, chunks...); errString(r.err) != errString(want.err) {
			t.Fatalf("%s byte by byte: got %v, want %v", tc.in, r.err, want.err)
		}
	}
}

func TestLimits(t *testing.T) {
	big := strings.Repeat("x", 1000)
	deep := func(n int) string {
		return strings.Repeat("<a>", n) + strings.Repeat("</a>", n)
	}
	attrs := func(n int) string {
		var sb strings.Builder
		sb.WriteString("<a")
		for i := 0; i < n; i++ {
			sb.WriteString(" a" + strconv.Itoa(i) + "='1'")
		}
		sb.WriteString("/>")
		return sb.String()
	}
	tests := []struct {
		name string
		lim  Limits
		in   string
		cond string
	}{
		{"stanza at limit", Limits{MaxStanzaBytes: 1007}, "<a>" + big + "</a>", ""},
		{"stanza over limit", Limits{MaxStanzaBytes: 1006}, "<a>" + big + "</a>", CondPolicyViolation},
		{"stanza over limit never closed", Limits{MaxStanzaBytes: 1000}, "<a>" + big + big, CondPolicyViolation},
		{"huge attribute value", Limits{MaxStanzaBytes: 1000}, "<a b='" + big + "'/>", CondPolicyViolation},
		{"huge cdata", Limits{MaxStanzaBytes: 1000}, "<a><![CDATA[" + big, CondPolicyViolation},
		{"depth at limit", Limits{MaxDepth: 5}, deep(5), ""},
		{"depth over limit", Limits{MaxDepth: 5}, deep(6), CondPolicyViolation},
		{"depth never closed", Limits{MaxDepth: 5}, strings.Repeat("<a>", 6), CondPolicyViolation},
		{"default depth", Limits{}, deep(33), CondPolicyViolation},
		{"attrs at limit", Limits{MaxAttrs: 4}, attrs(4), ""},
		{"attrs over limit", Limits{MaxAttrs: 4}, attrs(5), CondPolicyViolation},
		{"declarations count", Limits{MaxAttrs: 2}, `<a xmlns='u' xmlns:b='v' c='1'/>`, CondPolicyViolation},
		// stream:stream has 13 bytes, so the limits stay above that.
		{"name at limit", Limits{MaxNameBytes: 14}, "<a:bbbbbbbbbbbb xmlns:a='u'/>", ""},
		{"name over limit", Limits{MaxNameBytes: 14}, "<a:bbbbbbbbbbbbb xmlns:a='u'/>", CondPolicyViolation},
		{"attr name over limit", Limits{MaxNameBytes: 14}, "<a bbbbbbbbbbbbbbb='1'/>", CondPolicyViolation},
		{"header name over limit", Limits{MaxNameBytes: 12}, "", CondPolicyViolation},
		{"declarations in scope at limit", Limits{MaxNSDecls: 4}, `<a xmlns:a='1' xmlns:b='2'><b xmlns:c='3' xmlns='4'/><c xmlns:c='3' xmlns:d='4'/></a>`, ""},
		{"elements at limit", Limits{MaxElements: 5}, "<a><b/><c/><d><e/></d></a>", ""},
		{"elements over limit", Limits{MaxElements: 5}, "<a><b/><c/><d><e/><f/></d></a>", CondPolicyViolation},
		{"elements never closed", Limits{MaxElements: 5}, "<a>" + strings.Repeat("<b/>", 5), CondPolicyViolation},
		{"default elements at limit", Limits{}, "<a>" + strings.Repeat("<b/>", 999) + "</a>", ""},
		{"default elements over limit", Limits{}, "<a>" + strings.Repeat("<b/>", 1000) + "</a>", CondPolicyViolation},
		{"one element allowed", Limits{MaxElements: 1}, "<presence/>", ""},
		{"declarations in scope over limit", Limits{MaxNSDecls: 4}, `<a xmlns:a='1' xmlns:b='2'><b xmlns:c='3'><c xmlns:d='4' xmlns:e='5'/></b></a>`, CondPolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1 << 20, 100, 7} {
				in := []byte(streamHdr + tc.in)
				var chunks [][]byte
				for len(in) > 0 {
					n := min(chunk, len(in))
					chunks = append(chunks, in[:n])
					in = in[n:]
				}
				r := decodeChunks(tc.lim, chunks...)
				if got := condition(r.err); got != tc.cond {
					t.Fatalf("chunk %d: condition %q (%v), want %q", chunk, got, r.err, tc.cond)
				}
				if tc.cond == "" && tc.in != "" && len(r.toks) != 2 {
					t.Fatalf("chunk %d: %d tokens, want streamHdr and element", chunk, len(r.toks))
				}
			}
		})
	}
}

// TestLimitBoundsBuffer checks that an oversized stanza is refused once the
// limit is reached, without buffering the rest of it.
func TestLimitBoundsBuffer(t *testing.T) {
	d := NewDecoder(Limits{MaxStanzaBytes: 8 << 10})
	src := io.MultiReader(strings.NewReader(streamHdr+"<message><body>"), infiniteX{})
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		if _, rerr := d.ReadFrom(src); rerr != nil {
			t.Fatalf("ReadFrom: %v", rerr)
		}
		for {
			_, err = d.Next()
			if err != nil {
				break
			}
		}
		if errors.Is(err, ErrNeedMore) {
			err = nil
		}
	}
	if condition(err) != CondPolicyViolation {
		t.Fatalf("got %v, want policy-violation", err)
	}
	if d.Buffered() > 16<<10 {
		t.Fatalf("buffered %d bytes for an 8 KiB limit", d.Buffered())
	}
}

// infiniteX is a reader of endless 'x'.
type infiniteX struct{}

func (infiniteX) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestResetReleaseBuffered(t *testing.T) {
	d := NewDecoder(Limits{})
	d.Feed([]byte(`<?xml version='1.0'?>` + streamHdr + `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><?xml version='1.0'?><stream:str`))
	mustKind := func(want Kind) *Element {
		t.Helper()
		tok, err := d.Next()
		if err != nil || tok.Kind != want {
			t.Fatalf("Next = %v, %v; want %v", tok.Kind, err, want)
		}
		return tok.Elem
	}
	mustKind(StreamStart)
	if e := mustKind(ElementKind); string(e.Name()) != "success" {
		t.Fatalf("got %s", e.Name())
	}
	if d.Buffered() != len(`<?xml version='1.0'?><stream:str`) {
		t.Fatalf("Buffered = %d", d.Buffered())
	}
	// Without Reset the declaration is refused; with it, a new stream starts.
	d.Reset()
	if _, err := d.Next(); !errors.Is(err, ErrNeedMore) {
		t.Fatalf("Next = %v, want ErrNeedMore", err)
	}
	d.Release() // partial token pending: must keep the buffer
	if d.Buffered() == 0 || d.bufp == nil {
		t.Fatal("Release dropped pending bytes")
	}
	d.Feed([]byte(`eam xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>`))
	hdr := mustKind(StreamStart)
	if uri, ok := hdr.NamespaceDecl(""); !ok || string(uri) != "jabber:server" {
		t.Fatalf("default namespace %q %v", uri, ok)
	}
	if d.Buffered() != 0 {
		t.Fatalf("Buffered = %d after the streamHdr", d.Buffered())
	}
	off := d.Offset()
	d.Release()
	if d.bufp != nil || d.ws != nil {
		t.Fatal("Release kept the buffer or workspace while idle")
	}
	d.Feed([]byte(" <message><body>new</body></message>"))
	e := mustKind(ElementKind)
	if string(e.Space()) != "jabber:server" || string(e.Child("jabber:server", "body").Text()) != "new" {
		t.Fatalf("after Release: %s {%s}", e, e.Space())
	}
	if d.Offset() != off+int64(len(" <message><body>new</body></message>")) {
		t.Fatalf("Offset = %d, want %d", d.Offset(), off+36)
	}
	d.Feed([]byte(trailer + "junk"))
	mustKind(StreamEnd)
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("after StreamEnd: %v, want io.EOF", err)
	}
}

func TestNoDeclarationWithoutReset(t *testing.T) {
	r := decodeChunks(Limits{}, []byte(streamHdr+`<success/><?xml version='1.0'?>`))
	if condition(r.err) != CondRestrictedXML {
		t.Fatalf("got %v", r.err)
	}
}

// TestReadFromGrows checks ReadFrom with a reader that returns tiny pieces
// and a stanza larger than the initial buffer.
func TestReadFromGrows(t *testing.T) {
	body := strings.Repeat("y", 20000)
	in := streamHdr + "<message><body>" + body + "</body></message>" + trailer
	for _, piece := range []int{1, 3, 1000, 1 << 20} {
		d := NewDecoder(Limits{})
		r := &pieceReader{s: in, n: piece}
		var got []Kind
		for {
			tok, err := d.Next()
			if errors.Is(err, ErrNeedMore) {
				if _, err := d.ReadFrom(r); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				continue
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("piece %d: %v", piece, err)
			}
			got = append(got, tok.Kind)
			if tok.Kind == ElementKind && len(tok.Elem.Child("", "body").Text()) != len(body) {
				t.Fatalf("piece %d: body length %d", piece, len(tok.Elem.Child("", "body").Text()))
			}
		}
		if len(got) != 3 {
			t.Fatalf("piece %d: kinds %v", piece, got)
		}
	}
}

// pieceReader returns at most n bytes per Read.
type pieceReader struct {
	s string
	n int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.s)
	r.s = r.s[n:]
	return n, nil
}

func TestReadFromBufferFull(t *testing.T) {
	d := NewDecoder(Limits{MaxStanzaBytes: 4096})
	// Many complete tokens, never drained: ReadFrom must refuse instead of
	// growing without bound.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = d.ReadFrom(strings.NewReader(strings.Repeat(" ", 8192)))
	}
	if err == nil {
		t.Fatal("ReadFrom kept growing an undrained buffer")
	}
	if _, err := d.Next(); !errors.Is(err, ErrNeedMore) {
		t.Fatalf("Next = %v", err)
	}
	if _, err := d.ReadFrom(strings.NewReader(streamHdr)); err != nil {
		t.Fatalf("ReadFrom after draining: %v", err)
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	d := NewDecoder(Limits{})
	d.Feed([]byte(streamHdr))
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	stanzas := [][]byte{
		[]byte(`<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='ktx72v49' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><thread>e0ffe42b</thread></message>`),
		[]byte(`<presence from='a@b/c'><show>away</show><status>Gone &amp; back</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`),
		[]byte(`<iq type='result' id='1'><query xmlns='jabber:iq:roster' ver='1'><item jid='a@b' name='A'><group>G</group></item><item jid='c@d'/></query></iq>`),
		[]byte(" \n"),
	}
	out := make([]byte, 0, 4096)
	run := func() {
		for _, s := range stanzas {
			d.Feed(s)
			for {
				tok, err := d.Next()
				if err != nil {
					break
				}
				out = tok.Elem.AppendTo(out[:0], Attr{Name: []byte("from"), Value: []byte("x@y/z")}, Attr{Name: []byte("to"), Value: nil})
				if b := tok.Elem.Child("", "body"); b != nil && len(b.Text()) == 0 {
					t.Fatal("empty body")
				}
			}
		}
		d.Release()
	}
	run() // warm the pools and arenas
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Fatalf("%.1f allocations per round, want 0", n)
	}

	// The same through ReadFrom, with stanzas split across reads.
	all := bytes.Join(stanzas, nil)
	src := bytes.NewReader(all)
	var r io.Reader = readerFunc(func(p []byte) (int, error) { return src.Read(p[:min(len(p), 61)]) })
	viaReads := func() {
		src.Reset(all)
		for {
			if _, err := d.ReadFrom(r); err != nil {
				break
			}
			for {
				if _, err := d.Next(); err != nil {
					break
				}
			}
		}
		d.Release()
	}
	viaReads()
	if n := testing.AllocsPerRun(200, viaReads); n != 0 {
		t.Fatalf("ReadFrom path: %.1f allocations per round, want 0", n)
	}
}

// readerFunc adapts a function to io.Reader.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestFeedCopies(t *testing.T) {
	d := NewDecoder(Limits{})
	b := []byte(streamHdr + `<a>x</a>`)
	d.Feed(b)
	copy(b, bytes.Repeat([]byte("!"), len(b)))
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	tok, err := d.Next()
	if err != nil || string(tok.Elem.Text()) != "x" {
		t.Fatalf("%v %v", tok, err)
	}
}

// TestBufferStaysWithinLimit reads a stanza just under the limit in small
// pieces and checks that the buffer never outgrows the limit's size class.
func TestBufferStaysWithinLimit(t *testing.T) {
	const limit = 16 << 10
	d := NewDecoder(Limits{MaxStanzaBytes: limit})
	body := strings.Repeat("z", limit-len("<message><body></body></message>"))
	r := &pieceReader{s: streamHdr + "<message><body>" + body + "</body></message>", n: 100}
	var kinds []Kind
	for len(kinds) < 2 {
		tok, err := d.Next()
		if errors.Is(err, ErrNeedMore) {
			if _, err := d.ReadFrom(r); err != nil {
				t.Fatal(err)
			}
			if len(d.buf) > limit {
				t.Fatalf("buffer grew to %d for a %d-byte limit", len(d.buf), limit)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, tok.Kind)
	}
}

// TestIdleFootprint measures what an idle decoder keeps after Release:
// DESIGN targets well under 8 KiB per idle session in total.
func TestIdleFootprint(t *testing.T) {
	const n = 2000
	decoders := make([]*Decoder, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range decoders {
		d := NewDecoder(Limits{})
		d.Feed([]byte(`<?xml version='1.0'?>` + streamHdr + `<message><body>hi</body></message>`))
		for {
			if _, err := d.Next(); err != nil {
				break
			}
		}
		d.Release()
		decoders[i] = d
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("idle decoder: %d bytes", per)
	if per > 1024 {
		t.Fatalf("idle decoder holds %d bytes, want <= 1024", per)
	}
	runtime.KeepAlive(decoders)
}

// TestAdversarialCost decodes maximal stanzas shaped to hit the parser's
// per-item costs (namespace lookups, duplicate checks, text runs, tiny
// elements) byte by byte and in one piece, and bounds the time: a quadratic
// path would take minutes, not milliseconds. The element limit is lifted, as
// an operator may do, so that the size limit is the one that binds.
func TestAdversarialCost(t *testing.T) {
	const size = 256 << 10
	lim := Limits{MaxElements: size}
	fill := func(head, unit, tail string) string {
		var sb strings.Builder
		sb.WriteString(head)
		for sb.Len()+len(unit)+len(tail) <= size {
			sb.WriteString(unit)
		}
		sb.WriteString(tail)
		return sb.String()
	}
	var decls strings.Builder
	for i := 0; i < 31; i++ {
		decls.WriteString("<e")
		for j := 0; j < 4; j++ {
			decls.WriteString(" xmlns:p" + strconv.Itoa(i*4+j) + "='u" + strconv.Itoa(i*4+j) + "'")
		}
		decls.WriteString(">")
	}
	attrs := " p0:a='' p0:b='' p0:c='' p0:d='' p0:e='' p0:f='' p0:g='' p0:h='' p0:i='' p0:j='' p0:k='' p0:l='' p0:m='' p0:n='' p0:o='' p0:p=''"
	cases := map[string]string{
		"deep declarations, outer prefixes": fill("<a>"+decls.String(), "<p0:x"+attrs+"/>", strings.Repeat("</e>", 31)+"</a>"),
		"tiny elements":                     fill("<a>", "<b/>", "</a>"),
		"text between children":             fill("<a>", "x<b/>&amp;", "</a>"),
		"many attributes":                   fill("<a xmlns:p0='u'>", "<b"+strings.Repeat(" a"+"='1'", 1)+attrs+"/>", "</a>"),
		"entities":                          fill("<a>", "&#x1F600;&lt;", "</a>"),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			in := []byte(streamHdr + s)
			start := time.Now()
			d := NewDecoder(lim)
			d.Feed(in)
			d.Next()
			tok, err := d.Next()
			if err != nil {
				t.Fatalf("%v", err)
			}
			out := tok.Elem.AppendTo(nil, Attr{Name: []byte("to"), Value: []byte("x")})
			_ = tok.Elem.Clone()
			whole := time.Since(start)
			start = time.Now()
			d = NewDecoder(lim)
			for i := 0; i < len(in); i += 7 {
				d.Feed(in[i:min(i+7, len(in))])
				if _, err := d.Next(); err != nil && !errors.Is(err, ErrNeedMore) {
					t.Fatal(err)
				}
			}
			split := time.Since(start)
			t.Logf("%d bytes: whole %v, 7-byte pieces %v, AppendTo %d bytes", len(s), whole, split, len(out))
			if whole > 5*time.Second || split > 5*time.Second {
				t.Fatalf("too slow: %v / %v", whole, split)
			}
		})
	}
}

// TestErrorOffsets checks that errors point at the offending byte.
func TestErrorOffsets(t *testing.T) {
	h := len(streamHdr)
	tests := []struct {
		in   string
		cond string
		off  int
	}{
		{streamHdr + "<a>\xff</a>", CondNotWellFormed, h + 3},
		{streamHdr + "<a><b></c></a>", CondNotWellFormed, h + 6},
		{streamHdr + "<a><b></a>", CondNotWellFormed, h + 6},
		{streamHdr + "<a><b></b x>", CondNotWellFormed, h + 10},
		{streamHdr + "<a></ a>", CondNotWellFormed, h + 5},
		{streamHdr + "<a>" + strings.Repeat("<b/>", 999) + "<c/>", CondPolicyViolation, h + 3 + 999*4},
		{streamHdr + "<a b='1' b='2'/>", CondNotWellFormed, h + 9},
		{streamHdr + "<a><x:b/></a>", CondBadNamespacePrefix, h + 4},
		{streamHdr + "<a>x &foo; y</a>", CondRestrictedXML, h + 5},
		{streamHdr + "  <!-- c -->", CondRestrictedXML, h + 2},
		{streamHdr + "<a b='<'/>", CondNotWellFormed, h + 6},
		{"<?xml version='1.0' encoding='latin1'?>", CondUnsupportedEncoding, 29},
		{streamHdr + " x", CondBadFormat, h + 1},
	}
	for _, tc := range tests {
		r := decodeChunks(Limits{}, []byte(tc.in+"</a></a>"+trailer))
		var xe *Error
		if !errors.As(r.err, &xe) || xe.Condition != tc.cond || xe.Offset != int64(tc.off) {
			t.Errorf("%q: got %v, want %s at %d", tc.in, r.err, tc.cond, tc.off)
		}
	}
}

// TestErrorsInDocumentOrder checks that among the errors the parse pass
// finds, the first in the input is reported: a bad reference in text is not
// overtaken by a later namespace error. (Framing errors and illegal
// characters are found by earlier passes and take precedence over both.)
func TestErrorsInDocumentOrder(t *testing.T) {
	r := decodeChunks(Limits{}, []byte(streamHdr+`<a>&foo;<b x:y='1'/></a>`))
	if condition(r.err) != CondRestrictedXML {
		t.Fatalf("got %v, want the entity error first", r.err)
	}
}
