package jid

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAccessors(t *testing.T) {
	tests := []struct {
		in                       string
		bare, domainJID          string
		isBare, isDomain, isZero bool
		local, domain, resource  string
	}{
		{"juliet@example.com/balcony", "juliet@example.com", "example.com", false, false, false, "juliet", "example.com", "balcony"},
		{"juliet@example.com", "juliet@example.com", "example.com", true, false, false, "juliet", "example.com", ""},
		{"example.com/r", "example.com", "example.com", false, false, false, "", "example.com", "r"},
		{"example.com", "example.com", "example.com", true, true, false, "", "example.com", ""},
		{"", "", "", false, false, true, "", "", ""},
	}
	for _, tc := range tests {
		var j JID
		if tc.in != "" {
			j = MustParse(tc.in)
		}
		if got := j.Bare().String(); got != tc.bare {
			t.Errorf("%q.Bare() = %q, want %q", tc.in, got, tc.bare)
		}
		if got := j.DomainJID().String(); got != tc.domainJID {
			t.Errorf("%q.DomainJID() = %q, want %q", tc.in, got, tc.domainJID)
		}
		if j.IsBare() != tc.isBare || j.IsDomain() != tc.isDomain || j.IsZero() != tc.isZero {
			t.Errorf("%q: IsBare, IsDomain, IsZero = %v, %v, %v; want %v, %v, %v", tc.in,
				j.IsBare(), j.IsDomain(), j.IsZero(), tc.isBare, tc.isDomain, tc.isZero)
		}
		if j.Local() != tc.local || j.Domain() != tc.domain || j.Resource() != tc.resource {
			t.Errorf("%q: parts (%q, %q, %q)", tc.in, j.Local(), j.Domain(), j.Resource())
		}
		// Derived JIDs must be the same values a parse gives, so that they
		// work as map keys next to parsed ones.
		if tc.in != "" {
			if b := MustParse(tc.bare); b != j.Bare() {
				t.Errorf("%q.Bare() = %#v, Parse gives %#v", tc.in, j.Bare(), b)
			}
			if d := MustParse(tc.domainJID); d != j.DomainJID() {
				t.Errorf("%q.DomainJID() = %#v, Parse gives %#v", tc.in, j.DomainJID(), d)
			}
		}
		if got := string(j.AppendTo([]byte("to="))); got != "to="+tc.in {
			t.Errorf("AppendTo = %q", got)
		}
	}
}

func TestWithResource(t *testing.T) {
	tests := []struct {
		in, r, want string
		wantErr     Part
	}{
		{"juliet@example.com", "balcony", "juliet@example.com/balcony", ""},
		{"juliet@example.com/old", "new", "juliet@example.com/new", ""},
		{"juliet@example.com/old", "", "juliet@example.com", ""},
		{"example.com", "Ünïcode\u00a0r", "example.com/Ünïcode r", ""},
		{"juliet@example.com", "a\x00", "", PartResource},
		{"", "r", "", PartDomain},
	}
	for _, tc := range tests {
		var j JID
		if tc.in != "" {
			j = MustParse(tc.in)
		}
		got, err := j.WithResource(tc.r)
		if tc.wantErr != "" {
			var jerr *Error
			if !errors.As(err, &jerr) || jerr.Part != tc.wantErr {
				t.Errorf("%q.WithResource(%q) = %q, %v; want error in %s", tc.in, tc.r, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != MustParse(tc.want) {
			t.Errorf("%q.WithResource(%q) = %#v, %v; want %q", tc.in, tc.r, got, err, tc.want)
		}
	}
}

func TestEqualAndMapKey(t *testing.T) {
	forms := []string{"Juliet@Example.com/r", "juliet@example.com/r", "ＪＵＬＩＥＴ@example.com./r", "juliet@EXAMPLE.COM/r"}
	m := map[JID]int{}
	first := MustParse(forms[0])
	for _, f := range forms {
		j := MustParse(f)
		if !j.Equal(first) || j.Compare(first) != 0 {
			t.Errorf("%q not equal to %q", f, forms[0])
		}
		m[j]++
	}
	if len(m) != 1 {
		t.Errorf("map has %d keys, want 1", len(m))
	}
	other := MustParse("juliet@example.com/R")
	if other.Equal(first) || other.Compare(first) >= 0 {
		t.Errorf("resource case must matter: %q vs %q", other, first)
	}
	if (JID{}).Equal(first) || !(JID{}).Equal(JID{}) {
		t.Error("zero JID comparisons wrong")
	}
}

func TestText(t *testing.T) {
	type doc struct {
		To   JID  `json:"to"`
		From *JID `json:"from,omitempty"`
	}
	in := doc{To: MustParse("juliet@example.com/balcony")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"to":"juliet@example.com/balcony"}` {
		t.Errorf("Marshal = %s", b)
	}
	var out doc
	if err := json.Unmarshal([]byte(`{"to":"Juliet@Example.com/balcony"}`), &out); err != nil || out.To != in.To {
		t.Errorf("Unmarshal = %#v, %v", out, err)
	}
	var zero JID
	if b, _ := zero.MarshalText(); len(b) != 0 {
		t.Errorf("zero MarshalText = %q", b)
	}
	j := MustParse("example.com")
	if err := j.UnmarshalText(nil); err != nil || !j.IsZero() {
		t.Errorf("UnmarshalText(empty) = %v, %v", j, err)
	}
	err = j.UnmarshalText([]byte("@example.com"))
	var jerr *Error
	if !errors.As(err, &jerr) || jerr.Part != PartLocal {
		t.Errorf("UnmarshalText(bad) = %v", err)
	}
}

func TestAllocs(t *testing.T) {
	s := "juliet@example.com/balcony"
	b := []byte(s)
	ub := []byte("Juliet@Example.com/Balcony")
	var sink JID
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"Parse canonical", 0, func() { sink, _ = Parse(s) }},
		{"ParseBytes canonical", 1, func() { sink, _ = ParseBytes(b) }},
		{"Parse uppercase", 1, func() { sink, _ = Parse("Juliet@example.com/balcony") }},
		{"ParseBytes uppercase", 1, func() { sink, _ = ParseBytes(ub) }},
		{"Bare", 0, func() { sink = sink.Bare() }},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(100, tc.f); n > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.name, n, tc.max)
		}
	}
	_ = sink
}

// TestConcurrentParse runs preparation from several goroutines; run with
// -race, it checks that the shared PRECIS and IDNA profiles hold no
// per-call state.
func TestConcurrentParse(t *testing.T) {
	inputs := []string{"Σ@Bücher.example/♚", "ＪＵＬＩＥＴ@example.com/r", "juliet@xn--bcher-kva.example", "foo bar@example.com"}
	want := make([]string, len(inputs))
	for i, in := range inputs {
		j, _ := Parse(in)
		want[i] = j.String()
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for k := range 200 {
				i := (g + k) % len(inputs)
				if j, _ := Parse(inputs[i]); j.String() != want[i] && err == nil {
					err = fmt.Errorf("Parse(%q) = %q, want %q", inputs[i], j, want[i])
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestErrorQuotesWholeRunes(t *testing.T) {
	_, err := Parse("a" + strings.Repeat("é", 3000) + "@example.com")
	var jerr *Error
	if !errors.As(err, &jerr) || !utf8.ValidString(jerr.Value) || len(jerr.Value) > maxErrorValue+len("…") {
		t.Errorf("error value %q (%v)", jerr.Value, err)
	}
}
