package jid

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// validTests are addresses that must parse, with their expected parts.
// The first block is RFC 7622 §3.5.1 verbatim.
var validTests = []struct {
	in                      string
	local, domain, resource string
}{
	// RFC 7622 §3.5.1.
	{"juliet@example.com", "juliet", "example.com", ""},
	{"juliet@example.com/foo", "juliet", "example.com", "foo"},
	{"juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
	{"juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
	{`foo\20bar@example.com`, `foo\20bar`, "example.com", ""},
	{"fussball@example.com", "fussball", "example.com", ""},
	{"fußball@example.com", "fußball", "example.com", ""},
	{"π@example.com", "π", "example.com", ""},
	{"Σ@example.com/foo", "σ", "example.com", "foo"},
	{"σ@example.com/foo", "σ", "example.com", "foo"},
	{"ς@example.com/foo", "ς", "example.com", "foo"},
	{"king@example.com/♚", "king", "example.com", "♚"},
	{"example.com", "", "example.com", ""},
	{"example.com/foobar", "", "example.com", "foobar"},
	{"a.example.com/b@example.net", "", "a.example.com", "b@example.net"},

	// Case mapping: localpart and domainpart lowercased, resource kept.
	{"Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony"},
	{"ROMEO@MONTAGUE.LIT", "romeo", "montague.lit", ""},
	{"ΣΑΣ@example.com", "σασ", "example.com", ""},
	// Width mapping (localpart) and UTS #46 mapping (domainpart).
	{"ＪＵＬＩＥＴ@example.com", "juliet", "example.com", ""},
	{"juliet@ｅｘａｍｐｌｅ.com", "juliet", "example.com", ""},
	{"juliet@example。com", "juliet", "example.com", ""},
	// Normalisation to NFC in localpart and resourcepart.
	{"e\u0301@example.com/e\u0301", "é", "example.com", "é"},
	// OpaqueString maps non-ASCII spaces to U+0020 and keeps everything else.
	{"example.com/a\u00a0b", "", "example.com", "a b"},
	{"example.com/ leading and trailing ", "", "example.com", " leading and trailing "},
	{"example.com/a/b/c", "", "example.com", "a/b/c"},
	{"example.com/@@@", "", "example.com", "@@@"},
	// Printable ASCII symbols other than " & ' / : < > @ are fine in a
	// localpart.
	{"a!#$%*+-=?^_`{|}~.;,()[]\\@example.com", "a!#$%*+-=?^_`{|}~.;,()[]\\", "example.com", ""},
	// IDN domains become lowercase U-labels, whichever form they came in.
	{"juliet@Bücher.example", "juliet", "bücher.example", ""},
	{"juliet@BÜCHER.example", "juliet", "bücher.example", ""},
	{"juliet@xn--bcher-kva.example", "juliet", "bücher.example", ""},
	{"juliet@XN--BCHER-KVA.example", "juliet", "bücher.example", ""},
	{"παράδειγμα.δοκιμή", "", "παράδειγμα.δοκιμή", ""},
	{"exa\u00admple.com", "", "example.com", ""}, // soft hyphen is ignored
	// IP literals.
	{"juliet@192.0.2.1/r", "juliet", "192.0.2.1", "r"},
	{"127.0.0.1", "", "127.0.0.1", ""},
	{"juliet@[2001:db8::1]/r", "juliet", "[2001:db8::1]", "r"},
	{"[2001:DB8:0:0::1]", "", "[2001:db8::1]", ""},
	{"[::1]", "", "[::1]", ""},
	{"[::ffff:192.0.2.1]", "", "[::ffff:192.0.2.1]", ""},
	// One trailing dot is stripped.
	{"example.com.", "", "example.com", ""},
	{"juliet@example.com./r", "juliet", "example.com", "r"},
	{"[::1].", "", "[::1]", ""},
	// Hyphens inside labels, digits anywhere, single-label domains.
	{"a-b.c-d.example", "", "a-b.c-d.example", ""},
	{"localhost", "", "localhost", ""},
	{"3com.example", "", "3com.example", ""},
	// The first '/' starts the resource even if an '@' follows.
	{"example.com/juliet@example.net", "", "example.com", "juliet@example.net"},
	// Longest parts.
	{strings.Repeat("a", 1023) + "@example.com", strings.Repeat("a", 1023), "example.com", ""},
	{"example.com/" + strings.Repeat("r", 1023), "", "example.com", strings.Repeat("r", 1023)},
	{longDomain(1023), "", longDomain(1023), ""},
	{strings.Repeat("Ａ", 1023) + "@example.com", strings.Repeat("a", 1023), "example.com", ""},
}

// invalidTests are addresses that must be rejected, with the part blamed
// and, where this package decides, the reason.
var invalidTests = []struct {
	in   string
	part Part
	err  error // nil: a PRECIS or IDNA error
}{
	// RFC 7622 §3.5.2.
	{`"juliet"@example.com`, PartLocal, ErrForbiddenChar},
	{"foo bar@example.com", PartLocal, nil},
	{"@example.com/", PartLocal, ErrEmpty},
	{"henryⅣ@example.com", PartLocal, nil},
	{"♚@example.com", PartLocal, nil},
	{"juliet@", PartDomain, ErrEmpty},
	{"/foobar", PartDomain, ErrEmpty},

	// Empty parts.
	{"", PartDomain, ErrEmpty},
	{"@d", PartLocal, ErrEmpty},
	{"d/", PartResource, ErrEmpty},
	{"a@d/", PartResource, ErrEmpty},
	{".", PartDomain, ErrEmpty},
	{"a@./r", PartDomain, ErrEmpty},
	// Forbidden localpart characters, also when width mapping makes them.
	{"a&b@example.com", PartLocal, ErrForbiddenChar},
	{"a'b@example.com", PartLocal, ErrForbiddenChar},
	{"a:b@example.com", PartLocal, ErrForbiddenChar},
	{"a<b@example.com", PartLocal, ErrForbiddenChar},
	{"a>b@example.com", PartLocal, ErrForbiddenChar},
	{"a＠b@example.com", PartLocal, ErrForbiddenChar},
	{"a／b@example.com", PartLocal, ErrForbiddenChar},
	// Controls and unassigned or disallowed code points.
	{"a\tb@example.com", PartLocal, nil},
	{"example.com/a\x00b", PartResource, nil},
	{"example.com/a\x7f", PartResource, nil},
	{"example.com/\u0007", PartResource, nil},
	{"a\u200bb@example.com", PartLocal, nil},
	// Invalid UTF-8 in every part.
	{"\xff@example.com", PartLocal, ErrInvalidUTF8},
	{"ex\xffample.com", PartDomain, ErrInvalidUTF8},
	{"example.com/\xff", PartResource, ErrInvalidUTF8},
	// Bidi rule (RFC 5893 via RFC 8264 and IDNA2008).
	{"\u05d0a@example.com", PartLocal, nil},
	{"a\u05d0@example.com", PartLocal, nil},
	{"\u05d0a.example", PartDomain, nil},
	{"1\u05d0.example", PartDomain, nil},
	// Domain names that are not NR-LDH, A-labels or U-labels.
	{"exa_mple.com", PartDomain, nil},
	{"exam ple.com", PartDomain, nil},
	{"-example.com", PartDomain, nil},
	{"example-.com", PartDomain, nil},
	{"ab--cd.example", PartDomain, nil},
	{"xn--.example", PartDomain, nil},
	{"xn--abc-.example", PartDomain, nil},
	{"xn--example-.com", PartDomain, nil}, // ASCII-only A-label
	{"a\u200db.example", PartDomain, nil}, // ZWJ outside its context
	{"♚.example", PartDomain, nil},
	{"aℵ.example", PartDomain, nil}, // maps to "aא", which fails the bidi rule
	{"a@b@example.com", PartDomain, nil},
	{"a..b", PartDomain, ErrEmptyLabel},
	{".example.com", PartDomain, ErrEmptyLabel},
	{"example.com..", PartDomain, ErrEmptyLabel},
	{"example.com。.", PartDomain, ErrEmptyLabel},
	// IP literals.
	{"[::1", PartDomain, ErrIPLiteral},
	{"[]", PartDomain, ErrIPLiteral},
	{"[192.0.2.1]", PartDomain, ErrIPLiteral},
	{"[fe80::1%eth0]", PartDomain, ErrIPLiteral},
	{"[::1]x", PartDomain, ErrIPLiteral},
	{"[2001:db8::g]", PartDomain, ErrIPLiteral},
	// Length limits, before and after preparation.
	{strings.Repeat("a", 1024) + "@example.com", PartLocal, ErrTooLong},
	{strings.Repeat("Ａ", 1024) + "@example.com", PartLocal, ErrTooLong},
	{strings.Repeat("a", 5000) + "@example.com", PartLocal, ErrTooLong},
	{longDomain(1024), PartDomain, ErrTooLong},
	{longDomain(1024) + ".", PartDomain, ErrTooLong},
	{strings.Repeat("ｅ", 1024), PartDomain, ErrTooLong},
	{"example.com/" + strings.Repeat("r", 1024), PartResource, ErrTooLong},
	{"example.com/" + strings.Repeat("é", 512), PartResource, ErrTooLong},
	{"example.com/" + strings.Repeat("r", 5000), PartResource, ErrTooLong},
}

// longDomain returns a valid domain name of exactly n bytes, made of
// 63-byte labels.
func longDomain(n int) string {
	k := (n - 1) / 64
	r := n - 64*k // 1..64
	tail := strings.Repeat("x", r)
	if r == 64 {
		tail = strings.Repeat("x", 61) + ".xx"
	}
	return strings.Repeat(strings.Repeat("x", 63)+".", k) + tail
}

func TestLongDomain(t *testing.T) {
	for _, n := range []int{1, 63, 64, 65, 1023, 1024} {
		d := longDomain(n)
		if _, ok := ldhLabels(d); len(d) != n || n <= maxPart && !ok {
			t.Errorf("longDomain(%d) = %d bytes, valid=%v", n, len(d), ok)
		}
	}
}

func TestParseValid(t *testing.T) {
	for _, tc := range validTests {
		want := tc.domain
		if tc.local != "" {
			want = tc.local + "@" + want
		}
		if tc.resource != "" {
			want += "/" + tc.resource
		}
		for _, full := range []bool{false, true} {
			var got JID
			var err error
			if full {
				got, err = parse(tc.in, true)
			} else {
				got, err = Parse(tc.in)
			}
			if err != nil {
				t.Errorf("Parse(%q) full=%v: %v", short(tc.in), full, err)
				continue
			}
			if got.Local() != tc.local || got.Domain() != tc.domain || got.Resource() != tc.resource {
				t.Errorf("Parse(%q) full=%v = (%q, %q, %q), want (%q, %q, %q)", short(tc.in), full,
					got.Local(), got.Domain(), got.Resource(), tc.local, tc.domain, tc.resource)
			}
			if got.String() != want {
				t.Errorf("Parse(%q).String() = %q, want %q", short(tc.in), short(got.String()), short(want))
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(Parse(%q).String()) = %v, %v; want idempotent", short(tc.in), again, err)
			}
			if b, err := ParseBytes([]byte(tc.in)); err != nil || b != got {
				t.Errorf("ParseBytes(%q) = %v, %v; want %v", short(tc.in), b, err, got)
			}
			if n, err := New(tc.local, tc.domain, tc.resource); err != nil || n != got {
				t.Errorf("New(%q, %q, %q) = %v, %v; want %v", short(tc.local), short(tc.domain), short(tc.resource), n, err, got)
			}
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidTests {
		for _, full := range []bool{false, true} {
			var got JID
			var err error
			if full {
				got, err = parse(tc.in, true)
			} else {
				got, err = Parse(tc.in)
			}
			if err == nil {
				t.Errorf("Parse(%q) full=%v = %q, want error", short(tc.in), full, short(got.String()))
				continue
			}
			var jerr *Error
			if !errors.As(err, &jerr) {
				t.Errorf("Parse(%q): error %T is not *Error", short(tc.in), err)
				continue
			}
			if jerr.Part != tc.part {
				t.Errorf("Parse(%q) full=%v: part %q, want %q (%v)", short(tc.in), full, jerr.Part, tc.part, err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Parse(%q) full=%v: %v, want %v", short(tc.in), full, err, tc.err)
			}
			if !strings.Contains(err.Error(), string(tc.part)) {
				t.Errorf("Parse(%q): message %q does not name the part", short(tc.in), err)
			}
			if jerr.Condition() != "jid-malformed" {
				t.Errorf("Condition() = %q", jerr.Condition())
			}
			if len(jerr.Value) > maxErrorValue+len("…") {
				t.Errorf("Parse(%q): error quotes %d bytes", short(tc.in), len(jerr.Value))
			}
			if _, err := ParseBytes([]byte(tc.in)); err == nil {
				t.Errorf("ParseBytes(%q) succeeded", short(tc.in))
			}
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		local, domain, resource string
		want                    string
		part                    Part // "" when valid
	}{
		{"", "example.com", "", "example.com", ""},
		{"Juliet", "Example.com.", "Balcony", "juliet@example.com/Balcony", ""},
		{"", "example.com", "r/s", "example.com/r/s", ""},
		{"", "", "", "", PartDomain},
		{"juliet", "", "", "", PartDomain},
		{"a@b", "example.com", "", "", PartLocal},
		{"a/b", "example.com", "", "", PartLocal},
		{"", "a/b", "", "", PartDomain},
		{"", "a@b", "", "", PartDomain},
		{"", "example.com", "\x00", "", PartResource},
	}
	for _, tc := range tests {
		got, err := New(tc.local, tc.domain, tc.resource)
		if tc.part != "" {
			var jerr *Error
			if !errors.As(err, &jerr) || jerr.Part != tc.part {
				t.Errorf("New(%q, %q, %q) = %v, %v; want error in %s", tc.local, tc.domain, tc.resource, got, err, tc.part)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("New(%q, %q, %q) = %q, %v; want %q", tc.local, tc.domain, tc.resource, got, err, tc.want)
		}
	}
}

func TestMustParse(t *testing.T) {
	if got := MustParse("Juliet@example.com"); got.String() != "juliet@example.com" {
		t.Errorf("MustParse = %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParse of an invalid JID did not panic")
		}
	}()
	MustParse("@")
}

// TestParseSharesInput checks that a canonical input is not copied and
// that a non-canonical one is.
func TestParseSharesInput(t *testing.T) {
	for _, in := range []string{"juliet@example.com/balcony", "fußball@example.com", "[::1]", "example.com/♚"} {
		j := MustParse(in)
		if j.String() != in {
			t.Fatalf("Parse(%q) = %q", in, j)
		}
		if !sameString(j.String(), in) {
			t.Errorf("Parse(%q) copied its canonical input", in)
		}
	}
}

// sameString reports whether a and b are the same bytes in memory.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// TestCodePointsIdempotent puts every BMP code point in each part, alone
// and after a letter, and checks that whatever parses is canonical: its
// String parses to the same JID. It found "aℵ.x", which UTS #46 maps to a
// label that fails the bidi rule.
func TestCodePointsIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("scans the BMP")
	}
	failures := 0
	for r := rune(0); r < 0x10000 && failures < 10; r++ {
		c := string(r)
		for _, s := range []string{c + "@x", "x/" + c, c + ".x", "a" + c + "@x", "x/a" + c, "a" + c + ".x"} {
			j, err := Parse(s)
			if err != nil {
				continue
			}
			if again, err := Parse(j.String()); err != nil || again != j {
				t.Errorf("%U: Parse(%q) = %q, which parses to %q, %v", r, s, j, again, err)
				failures++
			}
		}
	}
}
