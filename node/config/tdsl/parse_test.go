package tdsl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// dump renders a tree compactly with types visible: 'quoted', bare words
// unquoted, 5 and 5L, floats always with a point, (bean header){...}.
func dump(v *Value) string {
	switch v.Kind {
	case KindNull:
		return "null"
	case KindString:
		if v.Bare {
			return v.Str
		}
		return strconv.Quote(v.Str)
	case KindInt:
		if v.Long {
			return strconv.FormatInt(v.Int, 10) + "L"
		}
		return strconv.FormatInt(v.Int, 10)
	case KindFloat:
		return "f" + formatFloat(v.Float)
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindList:
		parts := make([]string, len(v.List))
		for i, it := range v.List {
			parts[i] = dump(it)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case KindMap:
		return dumpMap(v.Map)
	}
	return "?"
}

func dumpMap(m *Map) string {
	var b strings.Builder
	if m.Bean != nil {
		b.WriteString("(")
		var parts []string
		if m.Bean.Class != "" {
			parts = append(parts, "class="+m.Bean.Class)
		}
		if !m.Bean.Active {
			parts = append(parts, "active=false")
		}
		if m.Bean.Exportable {
			parts = append(parts, "exportable=true")
		}
		b.WriteString(strings.Join(parts, ","))
		b.WriteString(")")
	}
	b.WriteString("{")
	for i, e := range m.Entries {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(e.Key)
		b.WriteString("=")
		b.WriteString(dump(e.Value))
	}
	b.WriteString("}")
	return b.String()
}

func testEnv(name string) (string, bool) {
	switch name {
	case "DB_HOST":
		return "db.example.org", true
	case "EMPTY":
		return "", true
	case "PORT":
		return "6000", true
	}
	return "", false
}

func testProps(name string) (string, bool) {
	if name == "node.name" {
		return "n1", true
	}
	return "", false
}

var testOpts = Options{Env: testEnv, Props: testProps}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"empty", "", "{}"},
		{"only comments", "# a\n  # b\n", "{}"},
		{"equals", "a = 1", "{a=1}"},
		{"colon", "a : 1", "{a=1}"},
		{"colon and equals mixed", "a: 1\nb = 2", "{a=1 b=2}"},
		{"single quoted key", "'config-type' = 'default'", `{config-type="default"}`},
		{"double quoted key and value", `"a b" = "c d"`, `{a b="c d"}`},
		{"hash inside quotes", "a = 'x # y' # comment", `{a="x # y"}`},
		{"hash inside double quotes", `a = "#1"`, `{a="#1"}`},
		{"comment after value", "a = 5 # five\nb = 6", "{a=5 b=6}"},
		{"multi-line string", "a = 'one\ntwo'\nb = 1", "{a=\"one\\ntwo\" b=1}"},
		{"no escapes", `a = 'c:\new'`, `{a="c:\\new"}`},
		{"other quote inside", `a = "it's"` + "\n" + `b = 'say "hi"'`, `{a="it's" b="say \"hi\""}`},
		{"int", "a = 543", "{a=543}"},
		{"negative", "a = -5", "{a=-5}"},
		{"long", "a = 60L\nb = 7l", "{a=60L b=7L}"},
		{"float", "a = 1.5", "{a=f1.5}"},
		{"double suffix", "a = 1.5d", "{a=f1.5}"},
		{"float suffix", "a = 2.0f\nb = 5F", "{a=f2.0 b=f5.0}"},
		{"booleans and null", "a = true\nb = false\nc = null", "{a=true b=false c=null}"},
		{"bare word value", "socket = plain", "{socket=plain}"},
		{"dotted bare word", "cls = tigase.server.xmppclient.SeeOtherHostHashed", "{cls=tigase.server.xmppclient.SeeOtherHostHashed}"},
		{"list", "a = [ 'a', 'b' ]", `{a=["a","b"]}`},
		{"empty list", "a = []", "{a=[]}"},
		{"list trailing comma", "a = [ 1, 2, ]", "{a=[1,2]}"},
		{"list across lines", "a = [\n  'x',\n  'y'\n]", `{a=["x","y"]}`},
		{"list newline separated", "a = [\n  'x'\n  'y'\n]", `{a=["x","y"]}`},
		{"mixed list", "a = [ 1, 'two', 3.0, true, null, [4] ]", `{a=[1,"two",f3.0,true,null,[4]]}`},
		{"commas separate entries", "a = 1, b = 2, c = 3", "{a=1 b=2 c=3}"},
		{"trailing comma in map", "m { a = 1, }", "{m={a=1}}"},
		{"map", "c2s { x = 1 }", "{c2s={x=1}}"},
		{"empty map", "c2s { }", "{c2s={}}"},
		{"map assigned", "m = { a = 1 }", "{m={a=1}}"},
		{"bean", "c2s () { x = 1 }", "{c2s=(){x=1}}"},
		{"bean without body", "'sess-man' () {\n  pep ()\n}", "{sess-man=(){pep=(){}}}"},
		{"bean inactive", "pep (active: false) {}", "{pep=(active=false){}}"},
		{"bean class", "socks5 (class: tigase.socks5.Socks5Component) {}", "{socks5=(class=tigase.socks5.Socks5Component){}}"},
		{"bean quoted class", "x (class: 'a.B', exportable: true) {}", "{x=(class=a.B,exportable=true){}}"},
		{"bean header all three", "x (class: a.B, active: false, exportable: true) { }", "{x=(class=a.B,active=false,exportable=true){}}"},
		{"bean header on lines", "x (\n class: a.B,\n active: true\n) {}", "{x=(class=a.B){}}"},
		{"numeric bean name", "5277 () {}", "{5277=(){}}"},
		{"quoted numeric key", "'5277' () { socket = 'tls' }", `{5277=(){socket="tls"}}`},
		{"nested beans", "'cl-comp' { connections { 5277 () { ifc = [ '*' ]\n socket = 'plain' } } }",
			`{cl-comp={connections={5277=(){ifc=["*"] socket="plain"}}}}`},
		{"c2s two listeners", "c2s {\n connections {\n  5222 () {}\n  5223 () { socket = 'ssl' }\n }\n}",
			`{c2s={connections={5222=(){} 5223=(){socket="ssl"}}}}`},
		{"see other host", "c2s { seeOtherHost (class: tigase.server.xmppclient.SeeOtherHostHashed) {\n phases = [ 'OPEN', 'LOGIN' ]\n defaultHost = [ 'a' ] } }",
			`{c2s={seeOtherHost=(class=tigase.server.xmppclient.SeeOtherHostHashed){phases=["OPEN","LOGIN"] defaultHost=["a"]}}}`},
		{"key with colon quoted", "'jabber:iq:register' () {}", "{jabber:iq:register=(){}}"},
		{"product", "t = 5L * 60 * 1000", "{t=300000L}"},
		{"precedence", "a = 2 + 3 * 4\nb = (2 + 3) * 4\nc = 10 - 4 - 3", "{a=14 b=20 c=3}"},
		{"exact division stays integer", "a = 10 / 2", "{a=5}"},
		{"inexact division is decimal", "a = 5 / 2", "{a=f2.5}"},
		{"float arithmetic", "a = 1.5 * 2", "{a=f3.0}"},
		{"string concat", "uri = 'jdbc:' + 'pg' + '://x'", `{uri="jdbc:pg://x"}`},
		{"string plus number", "a = 'port ' + 5222\nb = 5 + 'x'\nc = 'v' + 1.5", `{a="port 5222" b="5x" c="v1.5"}`},
		{"number sum then string", "a = 1 + 2 + 'x'", `{a="3x"}`},
		{"string plus bool", "a = 'on=' + true", `{a="on=true"}`},
		{"operator continues line", "a = 1 +\n  2", "{a=3}"},
		{"env", "h = env('DB_HOST')", `{h="db.example.org"}`},
		{"env default unused", "h = env('DB_HOST', 'localhost')", `{h="db.example.org"}`},
		{"env default used", "h = env('NOPE', 'localhost')", `{h="localhost"}`},
		{"env empty is set", "h = env('EMPTY', 'x')", `{h=""}`},
		{"env default of other type", "p = env('NOPE', 5222)", "{p=5222}"},
		{"env in expression", "uri = 'postgresql://' + env('DB_HOST') + ':5432/db'", `{uri="postgresql://db.example.org:5432/db"}`},
		{"prop", "n = prop('node.name', 'x')\nm = prop('missing', 'd')\no = prop('missing')", `{n="n1" m="d" o=null}`},
		{"env as a key", "env = 1", "{env=1}"},
		{"env as a bare value", "a = env", "{a=env}"},
		{"crlf", "a = 1\r\nb = 2\r\n", "{a=1 b=2}"},
		{"bom", "\ufeffa = 1", "{a=1}"},
		{"unicode", "'vhost' = 'bücher.example'", `{vhost="bücher.example"}`},
		{"dotted bare key", "example.com () {}", "{example.com=(){}}"},
		{"blank lines and indentation", "\n\n   a = 1\n\n\tb = 2\n\n", "{a=1 b=2}"},
		{"same key in different maps", "a { x = 1 }\nb { x = 2 }", "{a={x=1} b={x=2}}"},
		{"unary plus", "a = +5", "{a=5}"},
		{"double negative", "a = - -5", "{a=5}"},
		{"tigase style document", `admins = [ 'admin@example.com' ]
'config-type' = 'default'
debug = [ 'server' ]
'default-virtual-host' = 'example.com'
dataSource {
    default () {
        uri = 'jdbc:postgresql://localhost/tigase?user=tigase&password=secret'
    }
}
http () {}
pubsub () {
    trusted = [ 'http@{clusterNode}' ]
}
'sess-man' () {
    'jabber:iq:register' () {}
}
`, `{admins=["admin@example.com"] config-type="default" debug=["server"] default-virtual-host="example.com" dataSource={default=(){uri="jdbc:postgresql://localhost/tigase?user=tigase&password=secret"}} http=(){} pubsub=(){trusted=["http@{clusterNode}"]} sess-man=(){jabber:iq:register=(){}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("t.tdsl", []byte(tt.src), testOpts)
			if err != nil {
				var e *Error
				if errors.As(err, &e) {
					t.Fatalf("Parse: %s", e.Caret())
				}
				t.Fatalf("Parse: %v", err)
			}
			if got := dumpMap(m); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			// What String writes must read back as the same tree.
			again, err := Parse("again", []byte(m.String()), Options{})
			if err != nil {
				t.Fatalf("re-parse of String() failed: %v\n%s", err, m.String())
			}
			if got := dumpMap(again); got != tt.want {
				t.Errorf("String() round trip:\ngot  %s\nwant %s\ntext:\n%s", got, tt.want, m.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		pos  string // line:col
		msg  string // substring of the message
	}{
		{"semicolon separator", "a = 1; b = 2", "1:6", "';' is not a separator"},
		{"semicolon in bean", "5277 () { ifc = [ '*' ]; socket = 'plain' }", "1:24", "';' is not a separator"},
		{"semicolon after key", "a;", "1:2", "';' is not a separator"},
		{"semicolon in list", "a = [ 1; 2 ]", "1:8", "';' is not a separator"},
		{"duplicate key", "a = 1\nb = 2\na = 3", "3:1", "duplicate key 'a': set at line 1 and again at line 3"},
		{"duplicate nested", "m {\n x = 1\n x = 2\n}", "3:2", "set at line 2 and again at line 3"},
		{"duplicate quoted and bare", "'a' = 1\na = 2", "2:1", "duplicate key 'a'"},
		{"unterminated string", "a = 'abc\nb = 1", "1:5", "never closed"},
		{"unclosed map", "c2s {\n a = 1\n", "3:1", "'{' opened at line 1, column 5 is never closed"},
		{"unclosed list", "a = [ 1, 2", "1:11", "'[' opened at line 1, column 5 is never closed"},
		{"unclosed bean header", "a (active: true", "1:16", "'(' opened at line 1, column 3"},
		{"stray close", "}", "1:1", "unexpected '}'"},
		{"key without value", "a\nb = 1", "1:1", "key 'a' has no value"},
		{"missing separator", "a = 1 b = 2", "1:7", "expected a new line or ','"},
		{"missing value", "a = ", "1:5", "expected a value, found end of file"},
		{"unknown header field", "x (enabled: true) {}", "1:4", "unknown bean header field 'enabled'"},
		{"active not bool", "x (active: 'yes') {}", "1:12", "bean 'active' must be true or false"},
		{"duplicate header field", "x (active: true, active: false) {}", "1:18", "duplicate bean header field"},
		{"env missing", "a = 1\nh = env('NOPE')", "2:5", "environment variable NOPE is not set"},
		{"env bad arity", "h = env()", "1:5", "takes a name"},
		{"env three args", "h = env('A', 'b', 'c')", "1:5", "got 3 arguments"},
		{"env non-string name", "h = env(5)", "1:9", "name must be a string"},
		{"string minus", "a = 'x' - 1", "1:9", "not defined for strings"},
		{"string times", "a = 'x' * 2", "1:9", "not defined for strings"},
		{"bool arithmetic", "a = true + 1", "1:10", "needs numbers or strings"},
		{"null concat", "a = 'x' + null", "1:11", "cannot concatenate null"},
		{"list concat", "a = 'x' + [1]", "1:11", "cannot concatenate list"},
		{"unary minus string", "a = -'x'", "1:5", "needs a number"},
		{"division by zero", "a = 1 / 0", "1:7", "division by zero"},
		{"float division by zero", "a = 1.0 / 0", "1:9", "division by zero"},
		{"overflow", "a = 9223372036854775807 + 1", "1:25", "integer overflow"},
		{"multiplication overflow", "a = 4294967296 * 4294967296", "1:16", "integer overflow"},
		{"too big literal", "a = 99999999999999999999", "1:5", "does not fit in 64 bits"},
		{"bad number", "a = 5m", "1:5", "invalid number '5m'"},
		{"ip address unquoted", "ifc = 127.0.0.1", "1:7", "invalid number '127.0.0.1'"},
		{"non-integer numeric key", "1.5 = 2", "1:1", "not a plain integer"},
		{"bad character", "a = 1 & 2", "1:7", "unexpected character '&'"},
		{"dash in bare key", "cluster-mode = true", "1:8", "keys containing '-' must be quoted: write 'cluster-mode'"},
		{"colon in bare key", "urn:xmpp:sm:3 { a = 1 }", "1:9", "quote keys and values that contain ':'"},
		{"dash in numeric key", "5-2 = 1", "1:2", "expected '=', ':', '(' or '{' after key '5', found '-'"},
		{"list missing comma", "a = [ 1 2 ]", "1:9", "expected ',' or ']' in list"},
		{"unclosed paren", "a = (1 + 2", "1:11", "expected ')'"},
		{"invalid utf8", "a = 1\n\xff", "2:1", "invalid UTF-8"},
		{"key is a list", "[1] = 2", "1:1", "expected a key"},
		{"newline between bean and body", "x ()\n{ a = 1 }", "2:1", "expected a key"},
		{"deep nesting", "a = " + strings.Repeat("[", 500), "1:205", "nesting deeper than"},
		{"deep unary", "a = " + strings.Repeat("-", 500) + "1", "1:205", "nesting deeper than"},
		{"error after multibyte", "a = 'ü' b", "1:9", "expected a new line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("conf.tdsl", []byte(tt.src), testOpts)
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.msg)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *tdsl.Error", err, err)
			}
			if got := fmt.Sprintf("%d:%d", e.Pos.Line, e.Pos.Col); got != tt.pos {
				t.Errorf("position %s, want %s (%v)", got, tt.pos, err)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "conf.tdsl:"+tt.pos+": ") {
				t.Errorf("Error() = %q, want prefix conf.tdsl:%s: ", err.Error(), tt.pos)
			}
			checkErrorPos(t, []byte(tt.src), e)
		})
	}
}

// checkErrorPos verifies that an error's line and column agree with its
// byte offset and that the offset lies within the input.
func checkErrorPos(t *testing.T, src []byte, e *Error) {
	t.Helper()
	if e.Pos.Offset < 0 || e.Pos.Offset > len(src) {
		t.Fatalf("error offset %d outside input of %d bytes: %v", e.Pos.Offset, len(src), e)
	}
	line, col := 1, 1
	off := 0
	if len(src) >= 3 && string(src[:3]) == "\ufeff" {
		off = 3
	}
	for off < e.Pos.Offset {
		r, size := utf8.DecodeRune(src[off:])
		off += size
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	if off != e.Pos.Offset || line != e.Pos.Line || col != e.Pos.Col {
		t.Fatalf("error position %d:%d (offset %d) inconsistent with input (computed %d:%d at %d): %v",
			e.Pos.Line, e.Pos.Col, e.Pos.Offset, line, col, off, e)
	}
	_ = e.Caret()
}

func TestCaret(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"spaces", "c2s {\n    x = 1; y = 2\n}",
			"f.tdsl:2:10: " + semicolonMsg + "\n    x = 1; y = 2\n         ^"},
		{"tabs kept", "c2s {\n\t\tx = 1; y = 2\n}",
			"f.tdsl:2:8: " + semicolonMsg + "\n\t\tx = 1; y = 2\n\t\t     ^"},
		{"at end of file", "a = [",
			"f.tdsl:1:6: '[' opened at line 1, column 5 is never closed (missing ']')\na = [\n     ^"},
		{"multibyte before", "a = 'ü' ?",
			"f.tdsl:1:9: unexpected character '?'\na = 'ü' ?\n        ^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.tdsl", []byte(tt.src), Options{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %v", err)
			}
			if got := e.Caret(); got != tt.want {
				t.Errorf("Caret():\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestPositions(t *testing.T) {
	src := "# header\n'cl-comp' {\n  connections {\n    5277 () {\n      ifc = [ '10.0.0.1', \"*\" ]\n    }\n  }\n}\nx = 'multi\nline' + 'y'\n"
	m, err := Parse("p.tdsl", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := m.Get("cl-comp")
	listener := cl.Value.Map.Get("connections").Value.Map.Get("5277")
	ifc := listener.Value.Map.Get("ifc")
	x := m.Get("x")
	tests := []struct {
		name string
		got  Pos
		want string
	}{
		{"quoted key", cl.KeyPos, "p.tdsl:2:1"},
		{"map value at brace", cl.Value.Pos, "p.tdsl:2:11"},
		{"numeric key", listener.KeyPos, "p.tdsl:4:5"},
		{"bean at paren", listener.Value.Map.Bean.Pos, "p.tdsl:4:10"},
		{"key in bean", ifc.KeyPos, "p.tdsl:5:7"},
		{"list", ifc.Value.Pos, "p.tdsl:5:13"},
		{"first item", ifc.Value.List[0].Pos, "p.tdsl:5:15"},
		{"second item", ifc.Value.List[1].Pos, "p.tdsl:5:27"},
		{"expression takes left operand position", x.Value.Pos, "p.tdsl:9:5"},
	}
	for _, tt := range tests {
		if got := tt.got.String(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if got := x.Value.Str; got != "multi\nliney" {
		t.Errorf("x = %q", got)
	}
	if m.Get("missing") != nil || (*Map)(nil).Get("a") != nil || (*Map)(nil).Len() != 0 {
		t.Error("Get of a missing key should be nil")
	}
}

func TestNilLookups(t *testing.T) {
	// With no Env function every variable is unset.
	if _, err := Parse("", []byte("a = env('HOME')"), Options{}); err == nil {
		t.Error("env() without an Env function and without default should fail")
	}
	m, err := Parse("", []byte("a = env('HOME', 'd')"), Options{})
	if err != nil || m.Get("a").Value.Str != "d" {
		t.Errorf("env default with nil Env: %v %v", m, err)
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"a = 1",
		"'config-type' = 'default'\nadmins = [ 'a@b' ]",
		"c2s { connections { 5222 () {}\n 5223 () { socket = 'ssl' } } }",
		"x (class: a.B, active: false, exportable: true) { y = [1, 2.5, 60L, 'z', null, true] }",
		"t = 5L * 60 * 1000\ns = 'a' + env('X', 'b') + prop('p', 'q')",
		"a = 'multi\nline' # c\nb : \"#\"",
		"a = 1; b = 2",
		"a = [",
		"a = -(-9223372036854775807 - 1)",
		"m = { a = { b = [ { c = 1 } ] } }",
		"'cm-traffic-throttling' = 'xmpp:2500:0:disc,bin:20m:0:disc'",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := Parse("fuzz", src, Options{Env: testEnv, Props: testProps})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *tdsl.Error", err, err)
			}
			checkErrorPos(t, src, e)
			return
		}
		// A parsed tree written back must read as the same tree, unless
		// it holds a string with both quote characters (no escapes exist).
		text := m.String()
		if strings.Contains(text, `'`) && strings.Contains(text, `"`) {
			return
		}
		again, err := Parse("again", []byte(text), Options{})
		if err != nil {
			t.Fatalf("String() output does not parse: %v\n%s", err, text)
		}
		if a, b := dumpMap(m), dumpMap(again); a != b {
			t.Fatalf("round trip changed the tree:\n%s\n%s", a, b)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	src := []byte(strings.Repeat(`'config-type' = 'default'
'virtual-hosts' = [ 'a.example', 'b.example' ]
'cl-comp' { connections { 5277 () { ifc = [ '*' ], socket = 'plain' } } }
c2s { connections { 5222 () {}
 5223 () { socket = 'ssl' } }
 watchdog_timeout = 5L * 60 * 1000 }
`, 1))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse("bench", src, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
