package xmppclient

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

const sampleStream = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost' version='1.0'>" +
	"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>" +
	" \n<!-- keepalive -->" +
	"<message from='a@localhost/r' to='b@localhost/r' id=\"m>1\" type='chat'><body>hi &lt; <![CDATA[<not a tag>]]></body><x/></message>" +
	"<presence/>" +
	"</stream:stream>"

var sampleFrames = []struct {
	kind FrameKind
	name string
}{
	{FrameHeader, "stream:stream"},
	{FrameElement, "stream:features"},
	{FrameElement, "message"},
	{FrameElement, "presence"},
	{FrameStreamEnd, ""},
}

// oneByteReader hands out one byte per Read to exercise every split point.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestFramerSplits(t *testing.T) {
	for _, chunk := range []int{1, 2, 3, 7, 64, 4096} {
		f := newFramer(&chunkReader{strings.NewReader(sampleStream), chunk}, 16, 1<<16)
		for i, want := range sampleFrames {
			got, err := f.Next()
			if err != nil {
				t.Fatalf("chunk %d frame %d: %v", chunk, i, err)
			}
			if got.Kind != want.kind || string(got.Name()) != want.name {
				t.Fatalf("chunk %d frame %d = %v %q, want %v %q", chunk, i, got.Kind, got.Name(), want.kind, want.name)
			}
		}
		if _, err := f.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("chunk %d: after the end got %v, want EOF", chunk, err)
		}
	}
}

func TestFrameAttrs(t *testing.T) {
	raw := []byte(`<message  from = 'a@x/r' id="m>1" type='chat' empty=''><body id='inner'>x</body></message>`)
	f := Frame{Kind: FrameElement, Raw: raw}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"from", "a@x/r", true},
		{"id", "m>1", true},
		{"type", "chat", true},
		{"empty", "", true},
		{"body", "", false},
		{"missing", "", false},
	}
	for _, tt := range tests {
		v, ok := f.Attr(tt.name)
		if ok != tt.ok || string(v) != tt.want {
			t.Errorf("Attr(%q) = %q, %v; want %q, %v", tt.name, v, ok, tt.want, tt.ok)
		}
	}
	if a := testing.AllocsPerRun(100, func() { f.Attr("type") }); a != 0 {
		t.Errorf("Attr allocates %v times", a)
	}
	if txt, ok := childText(raw, "body"); !ok || string(txt) != "x" {
		t.Errorf("childText(body) = %q, %v", txt, ok)
	}
	if txt := innerText([]byte("<success xmlns='x'>dj1hYg==</success>")); string(txt) != "dj1hYg==" {
		t.Errorf("innerText = %q", txt)
	}
}

func TestFramerErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"lt in tag", "<message <x>"},
		{"doctype", "<!DOCTYPE x>"},
		{"too large", "<message>" + strings.Repeat("a", 200) + "</message>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFramer(strings.NewReader(tt.in), 16, 128)
			if _, err := f.Next(); err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want a framing error", err)
			}
		})
	}
}

// FuzzFramer checks the framer against encoding/xml: every element it
// returns must be well-formed on its own, and it must never panic or loop.
func FuzzFramer(f *testing.F) {
	f.Add([]byte(sampleStream))
	f.Add([]byte("<a><b/><c x='>'/></a>"))
	f.Add([]byte("<a><![CDATA[</a>]]></a>"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFramer(bytes.NewReader(in), 8, 4096)
		for range len(in) + 1 {
			got, err := fr.Next()
			if err != nil {
				return
			}
			if got.Kind != FrameElement {
				continue
			}
			// The framer matches tags by depth only; where encoding/xml accepts
			// the frame, both must agree that it is exactly one element.
			d := xml.NewDecoder(bytes.NewReader(got.Raw))
			depth, closedAt := 0, int64(-1)
			for {
				tok, err := d.Token()
				if err != nil {
					if errors.Is(err, io.EOF) && closedAt >= 0 && closedAt != int64(len(got.Raw)) {
						t.Fatalf("frame %q: encoding/xml closed the element at %d of %d", got.Raw, closedAt, len(got.Raw))
					}
					break
				}
				switch tok.(type) {
				case xml.StartElement:
					if depth == 0 && closedAt >= 0 {
						t.Fatalf("frame %q holds two elements", got.Raw)
					}
					depth++
				case xml.EndElement:
					depth--
					if depth == 0 {
						closedAt = d.InputOffset()
					}
				}
			}
		}
	})
}

// BenchmarkFramerMessages is the receive path of a throughput run: frames
// cut from a buffer of messages, each one's id attribute read.
func BenchmarkFramerMessages(b *testing.B) {
	msg := []byte("<message from='bench00001@localhost/s' to='bench00051@localhost/r' type='chat' id='123456789'><body>" +
		strings.Repeat("x", 100) + "</body></message>")
	stream := bytes.Repeat(msg, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	f := newFramer(r, 16<<10, 1<<20)
	for b.Loop() {
		r.Reset(stream)
		f.reset(r)
		for range 256 {
			fr, err := f.Next()
			if err != nil {
				b.Fatal(err)
			}
			if id, ok := fr.Attr("id"); !ok || len(id) != 9 {
				b.Fatal("no id")
			}
		}
	}
}
