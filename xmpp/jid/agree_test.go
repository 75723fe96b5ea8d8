package jid

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// agree checks that Parse (fast checks) and parse(s, true) (PRECIS and
// IDNA on every part) give the same JID or fail in the same part, and that
// the zero-copy scan accepts only canonical input.
func agree(t *testing.T, s string) (fast bool) {
	t.Helper()
	got, gotErr := Parse(s)
	want, wantErr := parse(s, true)
	if (gotErr == nil) != (wantErr == nil) || got != want {
		t.Fatalf("%q: Parse = %#v, %v; full preparation = %#v, %v", s, got, gotErr, want, wantErr)
	}
	if gotErr != nil {
		var g, w *Error
		if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) || g.Part != w.Part {
			t.Fatalf("%q: Parse error %v, full preparation error %v", s, gotErr, wantErr)
		}
	}
	if b, err := ParseBytes([]byte(s)); b != got || (err == nil) != (gotErr == nil) {
		t.Fatalf("%q: ParseBytes = %#v, %v; Parse = %#v, %v", s, b, err, got, gotErr)
	}
	_, _, upper, ok := scanASCII(s)
	if ok && (wantErr != nil || !upper && want.String() != s) {
		t.Fatalf("%q: fast scan accepted (upper=%v), full preparation gives %q, %v", s, upper, want, wantErr)
	}
	return ok
}

// TestFastPathAgrees runs a large random set of ASCII addresses, biased
// toward the characters and shapes the fast checks decide on, through
// both paths.
func TestFastPathAgrees(t *testing.T) {
	pieces := []string{
		"a", "b", "z", "0", "9", "A", "Z", "-", "--", ".", "..", "@", "/", " ", "_",
		"\"", "&", "'", ":", "<", ">", "~", "!", "\\", "\x00", "\t", "\x7f",
		"xn--", "xn--bcher-kva", "XN--", "ex", "com", "[", "]", "::1", "1.2.3.4",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 100000
	if testing.Short() {
		n = 10000
	}
	fast := 0
	for range n {
		var b strings.Builder
		for k := rng.IntN(12); k >= 0; k-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		if agree(t, b.String()) {
			fast++
		}
	}
	// Well-formed shapes, so that the fast path gets real work too.
	for range n / 4 {
		s := randomLabel(rng) + "@" + randomLabel(rng) + "." + randomLabel(rng)
		if rng.IntN(2) == 0 {
			s += "/" + randomLabel(rng)
		}
		if agree(t, s) {
			fast++
		}
	}
	if fast < n/20 {
		t.Errorf("fast path taken %d times in %d inputs: the test does not exercise it", fast, n+n/4)
	}
	t.Logf("fast path taken for %d of %d inputs", fast, n+n/4)
}

func randomLabel(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-ABC._"
	b := make([]byte, 1+rng.IntN(8))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// TestFastPathAgreesAtLimits checks both paths at the length limits.
func TestFastPathAgreesAtLimits(t *testing.T) {
	for _, n := range []int{1, 2, 1022, 1023, 1024, 1025, 3069, 3070, 4092, 4093} {
		for _, s := range []string{
			strings.Repeat("a", n) + "@example.com",
			strings.Repeat("A", n) + "@example.com",
			"example.com/" + strings.Repeat("r", n),
			longDomain(n),
			longDomain(n) + ".",
			longDomain(n) + "/r",
			strings.Repeat("a", min(n, 1023)) + "@" + longDomain(n) + "/" + strings.Repeat("r", min(n, 1023)),
		} {
			agree(t, s)
		}
	}
}
