package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// ClientConfig is what a [Client] needs: the account and, for channel
// binding, the connection.
type ClientConfig struct {
	Username string // the account's localpart; prepared with UsernameCaseMapped
	Password string // prepared with OpaqueString
	Authzid  string // optional authorization identity (e.g. the bare JID)
	// ChannelBinding returns this connection's binding data for a type (see
	// [ClientBinding]); nil when not on TLS.
	ChannelBinding func(cbType string) ([]byte, bool)
	// PlusAdvertised tells that the server offered -PLUS mechanisms. With a
	// SCRAM mechanism without -PLUS, a client that has ChannelBinding but
	// saw no -PLUS offer sends the "y" flag, which lets the server detect
	// that an attacker removed its -PLUS offer (RFC 5802 §6); a client that
	// saw the offer and chose not to bind sends "n".
	PlusAdvertised bool
	// CBType is the channel-binding type used by -PLUS mechanisms; ""
	// means tls-exporter.
	CBType string
	// Cache, when set, keeps the keys derived from the password per (hash,
	// password, salt, iterations), so that repeated logins skip PBKDF2.
	Cache *SaltCache
}

// clientState is where a Client is in its exchange.
type clientState uint8

const (
	clientStart     clientState = iota // nothing sent yet
	clientSentFirst                    // client-first sent, waiting for server-first
	clientSentFinal                    // client-final sent, waiting for server-final
	clientDone                         // finished: success (or PLAIN sent)
	clientFailed                       // an error was returned
)

// Client runs the client side of one SASL exchange, without I/O. It is not
// safe for concurrent use.
type Client struct {
	cfg      ClientConfig
	mech     mechanism
	state    clientState
	username string // prepared
	password string // prepared
	gs2      string
	cbData   []byte
	bare     string // client-first-message-bare
	nonce    string // c-nonce
	verifier []byte // expected ServerSignature

	// newNonce makes the client nonce; tests replace it to replay RFC vectors.
	newNonce func() string
}

// NewClient prepares the client side of an exchange with mechanism mech
// (one of [Mechanisms]). It fails for an unknown mechanism, a username or
// password that does not prepare, or a -PLUS mechanism without binding data
// of the chosen type.
func NewClient(mech string, cfg ClientConfig) (*Client, error) {
	m, ok := parseMechanism(mech)
	if !ok {
		return nil, fmt.Errorf("sasl: new client: unknown mechanism %q", mech)
	}
	u, err := PrepareUsername(cfg.Username)
	if err != nil {
		return nil, fmt.Errorf("sasl: new client: %w", err)
	}
	p, err := PreparePassword(cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("sasl: new client: %w", err)
	}
	if !validAuthzid(cfg.Authzid) {
		return nil, errors.New("sasl: new client: invalid authzid")
	}
	c := &Client{cfg: cfg, mech: m, username: u, password: p, newNonce: rand.Text}
	if m.plain {
		if len(u) > maxPlainField || len(p) > maxPlainField || len(cfg.Authzid) > maxPlainField {
			return nil, errors.New("sasl: new client: PLAIN fields are limited to 255 bytes")
		}
		return c, nil
	}
	var gs2 strings.Builder
	switch {
	case m.plus:
		if cfg.CBType == "" {
			c.cfg.CBType = TLSExporter
		}
		if !validCBName(c.cfg.CBType) {
			return nil, fmt.Errorf("sasl: new client: invalid channel-binding type %q", c.cfg.CBType)
		}
		if cfg.ChannelBinding == nil {
			return nil, fmt.Errorf("sasl: new client: %s needs channel binding", mech)
		}
		data, ok := cfg.ChannelBinding(c.cfg.CBType)
		if !ok {
			return nil, fmt.Errorf("sasl: new client: channel binding %q not available", c.cfg.CBType)
		}
		c.cbData = data
		gs2.WriteString("p=" + c.cfg.CBType + ",")
	case cfg.ChannelBinding != nil && !cfg.PlusAdvertised:
		gs2.WriteString("y,")
	default:
		gs2.WriteString("n,")
	}
	if cfg.Authzid != "" {
		gs2.WriteString("a=" + encodeSASLName(cfg.Authzid))
	}
	gs2.WriteByte(',')
	c.gs2 = gs2.String()
	return c, nil
}

// Step consumes the server's raw data (nil for the first call, then each
// challenge, then the data of <success/>) and returns the raw response to
// send. For PLAIN the first call returns the whole message with done true.
// For SCRAM, done becomes true when the server's signature in the success
// data has been verified; a client must not treat a <success/> as
// authentication of the server before that.
func (c *Client) Step(in []byte) (out []byte, done bool, err error) {
	switch c.state {
	case clientStart:
		if len(in) != 0 {
			return c.fail(errors.New("unexpected data before the first message"))
		}
		if c.mech.plain {
			out = make([]byte, 0, len(c.cfg.Authzid)+len(c.username)+len(c.password)+2)
			out = append(out, c.cfg.Authzid...)
			out = append(out, 0)
			out = append(out, c.username...)
			out = append(out, 0)
			out = append(out, c.password...)
			c.state = clientDone
			return out, true, nil
		}
		c.nonce = c.newNonce()
		c.bare = "n=" + encodeSASLName(c.username) + ",r=" + c.nonce
		c.state = clientSentFirst
		return []byte(c.gs2 + c.bare), false, nil
	case clientSentFirst:
		return c.stepServerFirst(in)
	case clientSentFinal:
		sig, err := parseServerFinal(string(in))
		if err != nil {
			return c.fail(err)
		}
		if !hmac.Equal(sig, c.verifier) {
			return c.fail(errors.New("server signature mismatch: the server does not know the credentials"))
		}
		c.state = clientDone
		return nil, true, nil
	}
	return nil, false, errors.New("sasl: client: the exchange is over")
}

// fail ends the exchange with err.
func (c *Client) fail(err error) ([]byte, bool, error) {
	c.state = clientFailed
	return nil, false, fmt.Errorf("sasl: client: %w", err)
}

// stepServerFirst answers server-first-message with client-final-message.
func (c *Client) stepServerFirst(in []byte) ([]byte, bool, error) {
	sf, err := parseServerFirst(string(in))
	if err != nil {
		return c.fail(err)
	}
	if len(sf.nonce) <= len(c.nonce) || !strings.HasPrefix(sf.nonce, c.nonce) {
		return c.fail(errors.New("server nonce does not extend the client nonce"))
	}
	h := c.mech.hash
	k, err := c.keys(h, sf.salt, sf.iterations)
	if err != nil {
		return c.fail(err)
	}
	cb := make([]byte, 0, len(c.gs2)+len(c.cbData))
	cb = append(cb, c.gs2...)
	cb = append(cb, c.cbData...)

	out := make([]byte, 0, 256)
	out = append(out, "c="...)
	out = b64.AppendEncode(out, cb)
	out = append(out, ",r="...)
	out = append(out, sf.nonce...)
	withoutProof := len(out)

	authMsg := make([]byte, 0, len(c.bare)+len(in)+withoutProof+2)
	authMsg = append(authMsg, c.bare...)
	authMsg = append(authMsg, ',')
	authMsg = append(authMsg, in...)
	authMsg = append(authMsg, ',')
	authMsg = append(authMsg, out[:withoutProof]...)

	proof := hmacSum(h, k.storedKey, authMsg)
	for i := range proof {
		proof[i] ^= k.clientKey[i]
	}
	c.verifier = hmacSum(h, k.serverKey, authMsg)
	out = append(out, ",p="...)
	out = b64.AppendEncode(out, proof)
	c.state = clientSentFinal
	return out, false, nil
}

// keys derives (or fetches from the cache) the SCRAM keys for the password.
func (c *Client) keys(h Hash, salt []byte, iterations int) (keys, error) {
	if c.cfg.Cache != nil {
		if k, ok := c.cfg.Cache.get(h, c.password, salt, iterations); ok {
			return k, nil
		}
	}
	k, err := deriveKeys(h, c.password, salt, iterations)
	if err != nil {
		return keys{}, err
	}
	if c.cfg.Cache != nil {
		c.cfg.Cache.put(h, c.password, salt, iterations, k)
	}
	return k, nil
}
