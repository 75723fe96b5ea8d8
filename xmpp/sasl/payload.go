package sasl

import "encoding/base64"

// maxEncodedPayload bounds the base64 text of one SASL element.
var maxEncodedPayload = base64.StdEncoding.EncodedLen(MaxMessageSize)

// DecodePayload decodes the character data of an <auth/>, <response/>,
// <challenge/> or <success/> element (RFC 6120 §6.4). Empty text means no
// data and gives nil; a single "=" means data of zero length and gives a
// non-nil empty slice (the distinction [Server.Step] relies on for the
// initial response). Invalid base64 is a *Failure with incorrect-encoding,
// oversized data one with malformed-request.
func DecodePayload(text []byte) ([]byte, error) {
	switch {
	case len(text) == 0:
		return nil, nil
	case len(text) == 1 && text[0] == '=':
		return []byte{}, nil
	case len(text) > maxEncodedPayload:
		return nil, newFailure(MalformedRequest, "payload too long")
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(out, text)
	if err != nil || n == 0 {
		return nil, newFailure(IncorrectEncoding, "")
	}
	return out[:n], nil
}

// EncodePayload returns the character data carrying data in an <auth/> or
// <response/>: base64, or "=" for data of zero length. (A <challenge/> or
// <success/> without data is simply written empty.)
func EncodePayload(data []byte) string {
	if len(data) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(data)
}

// AppendPayload is EncodePayload appending to b.
func AppendPayload(b, data []byte) []byte {
	if len(data) == 0 {
		return append(b, '=')
	}
	return base64.StdEncoding.AppendEncode(b, data)
}
