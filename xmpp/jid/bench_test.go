package jid

import "testing"

// benchInputs are the shapes the server meets: canonical ASCII (the common
// case, fast path), ASCII needing case mapping, and Unicode needing PRECIS
// and IDNA.
var benchInputs = []struct{ name, in string }{
	{"path=fast", "juliet@example.com/balcony"},
	{"path=fast-domain", "example.com"},
	{"path=ascii-upper", "Juliet@Example.com/balcony"},
	{"path=precis", "fußball@bücher.example/♚"},
}

func BenchmarkParse(b *testing.B) {
	for _, bi := range benchInputs {
		b.Run(bi.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bi.in)))
			for b.Loop() {
				if _, err := Parse(bi.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseBytes(b *testing.B) {
	for _, bi := range benchInputs {
		in := []byte(bi.in)
		b.Run(bi.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := ParseBytes(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseInvalid(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("foo bar@example.com"); err == nil {
			b.Fatal("no error")
		}
	}
}

func BenchmarkWithResource(b *testing.B) {
	j := MustParse("juliet@example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.WithResource("balcony"); err != nil {
			b.Fatal(err)
		}
	}
}
