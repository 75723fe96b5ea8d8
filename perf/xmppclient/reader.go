package xmppclient

import (
	"errors"
	"io"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

// reader pulls tokens from a connection through the project's incremental
// decoder (xmpp/xml): one Read per ReadFrom, tokens until ErrNeedMore.
type reader struct {
	r   io.Reader
	dec *xml.Decoder
}

func newReader(r io.Reader) *reader {
	return &reader{r: r, dec: xml.NewDecoder(xml.DefaultLimits())}
}

// next returns the next token, reading as needed. The token's element is
// valid until the following call.
func (rd *reader) next() (xml.Token, error) {
	for range 1 << 20 { // each pass reads at least one byte or fails
		tok, err := rd.dec.Next()
		if !errors.Is(err, xml.ErrNeedMore) {
			return tok, err
		}
		n, err := rd.dec.ReadFrom(rd.r)
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return xml.Token{}, err
		}
	}
	return xml.Token{}, errors.New("xmppclient: no token after many reads")
}

// restart prepares for a new stream header on the same connection (after
// SASL success or STARTTLS), reading from r from now on.
func (rd *reader) restart(r io.Reader) {
	rd.r = r
	rd.dec.Reset()
}
