package xml

import (
	"strings"
	"testing"
)

var benchStanzas = []struct{ name, xml string }{
	{"message", `<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='ktx72v49' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><thread>e0ffe42b</thread><active xmlns='http://jabber.org/protocol/chatstates'/></message>`},
	{"presence", `<presence from='juliet@example.com/balcony'><show>away</show><status>Gone &amp; back</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`},
	{"iq-roster", `<iq type='result' id='r1'><query xmlns='jabber:iq:roster' ver='ver7'>` + strings.Repeat(`<item jid='nurse@example.com' name='Nurse' subscription='both'><group>Servants</group></item>`, 20) + `</query></iq>`},
	{"message-4k", `<message to='romeo@example.net' type='chat'><body>` + strings.Repeat("All the world's a stage. ", 170) + `</body></message>`},
}

// BenchmarkDecode measures Next on one complete stanza per iteration, the
// steady state of a connection (buffer and arenas warm).
func BenchmarkDecode(b *testing.B) {
	for _, s := range benchStanzas {
		b.Run("stanza="+s.name, func(b *testing.B) {
			d := NewDecoder(Limits{})
			d.Feed([]byte(streamHdr))
			if _, err := d.Next(); err != nil {
				b.Fatal(err)
			}
			in := []byte(s.xml)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				d.Feed(in)
				if _, err := d.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeSplit measures a stanza arriving in 64-byte pieces, so
// the framer resumes and the buffer compacts.
func BenchmarkDecodeSplit(b *testing.B) {
	s := benchStanzas[0].xml
	d := NewDecoder(Limits{})
	d.Feed([]byte(streamHdr))
	d.Next()
	in := []byte(s)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for p := in; len(p) > 0; {
			n := min(64, len(p))
			d.Feed(p[:n])
			p = p[n:]
			if _, err := d.Next(); err != nil && err != ErrNeedMore {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkAppendTo measures the router's rewrite of 'from' and 'to'.
func BenchmarkAppendTo(b *testing.B) {
	for _, s := range benchStanzas[:2] {
		b.Run("stanza="+s.name, func(b *testing.B) {
			e := firstElement(b, s.xml)
			set := []Attr{{Name: []byte("from"), Value: []byte("juliet@example.com/balcony")}, {Name: []byte("to"), Value: []byte("romeo@example.net/orchard")}}
			dst := make([]byte, 0, 1024)
			b.SetBytes(int64(len(s.xml)))
			b.ReportAllocs()
			for b.Loop() {
				dst = e.AppendTo(dst[:0], set...)
			}
		})
	}
}

// BenchmarkBuilder measures building a small disco#info reply.
func BenchmarkBuilder(b *testing.B) {
	bl := NewBuilder(make([]byte, 0, 1024))
	b.ReportAllocs()
	for b.Loop() {
		bl.Reset()
		bl.Start("iq", "type", "result", "id", "info1", "to", "romeo@example.net/orchard")
		bl.Start("query", "xmlns", "http://jabber.org/protocol/disco#info")
		bl.Start("identity", "category", "server", "type", "im", "name", "Starling")
		bl.End()
		bl.Start("feature", "var", "urn:xmpp:ping")
		bl.End()
		bl.End()
		bl.End()
	}
}

// BenchmarkIdle reports the decoder's footprint after Release.
func BenchmarkIdle(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(Limits{})
		d.Feed([]byte(streamHdr))
		d.Next()
		d.Release()
	}
}
