package xml_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

// A connection's read loop: drain tokens, read once more, repeat.
func ExampleDecoder() {
	conn := strings.NewReader(`<?xml version='1.0'?>` +
		`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>` +
		`<message to='romeo@example.net' type='chat'><body>Wherefore art thou?</body></message>` +
		` ` + // a whitespace keepalive
		`</stream:stream>`)
	d := xml.NewDecoder(xml.DefaultLimits())
	for {
		tok, err := d.Next()
		if errors.Is(err, xml.ErrNeedMore) {
			if _, err := d.ReadFrom(conn); err != nil && err != io.EOF {
				fmt.Println("read:", err)
				return
			}
			continue
		}
		if err == io.EOF {
			return
		}
		var xe *xml.Error
		if errors.As(err, &xe) {
			fmt.Println("send stream error", xe.Condition)
			return
		}
		switch tok.Kind {
		case xml.StreamStart:
			fmt.Printf("stream to %s\n", tok.Elem.Attr("to"))
		case xml.ElementKind:
			e := tok.Elem
			fmt.Printf("{%s}%s to=%s body=%q\n", e.Space(), e.Name(), e.Attr("to"), e.Child("", "body").Text())
		case xml.StreamEnd:
			fmt.Println("stream closed")
		}
	}
	// Output:
	// stream to example.com
	// {jabber:client}message to=romeo@example.net body="Wherefore art thou?"
	// stream closed
}

// The router stamps 'from' and rewrites 'to' while copying the raw bytes.
func ExampleElement_AppendTo() {
	d := xml.NewDecoder(xml.Limits{})
	d.Feed([]byte(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>` +
		`<message to='romeo@example.net' from='forged@evil.example'><body>hi</body></message>`))
	d.Next() // the stream header
	tok, _ := d.Next()
	out := tok.Elem.AppendTo(nil,
		xml.Attr{Name: []byte("from"), Value: []byte("juliet@example.com/balcony")},
		xml.Attr{Name: []byte("to"), Value: []byte("romeo@example.net/orchard")})
	fmt.Println(string(out))
	// Output:
	// <message to='romeo@example.net/orchard' from='juliet@example.com/balcony'><body>hi</body></message>
}

// Replies are built with escaping done for you.
func ExampleBuilder() {
	var b xml.Builder
	b.Start("iq", "type", "result", "id", "r1")
	b.Start("query", "xmlns", "jabber:iq:roster")
	b.Start("item", "jid", "nurse@example.com", "name", "Nurse & <Co>")
	b.End()
	b.End()
	b.End()
	fmt.Println(string(b.Bytes()))
	// Output:
	// <iq type='result' id='r1'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com' name='Nurse &amp; &lt;Co&gt;'/></query></iq>
}
