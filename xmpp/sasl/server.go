package sasl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Lookup returns the stored credentials of a user for one hash. username is
// the prepared authentication identity (see [PrepareUsername]). To say why
// there are none it returns an error wrapping [ErrUnknownUser],
// [ErrAccountDisabled], [ErrCredentialsExpired] or [ErrMechanismTooWeak];
// any other error is a storage failure and ends the exchange with
// temporary-auth-failure. It is called at most once per exchange.
type Lookup func(ctx context.Context, username string, h Hash) (Credentials, error)

// ServerConfig is what a [Server] needs to know about the account store and
// the connection.
type ServerConfig struct {
	// Lookup fetches stored credentials. Required.
	Lookup Lookup
	// ChannelBinding returns the channel-binding data of this connection for
	// a type ("tls-exporter", "tls-server-end-point"), or false when the
	// type is not available. nil when the connection is not TLS (see
	// [ServerBinding]).
	ChannelBinding func(cbType string) ([]byte, bool)
	// AdvertisedPlus tells whether the -PLUS mechanisms were offered to this
	// client. A client that answers "y" (it supports channel binding but
	// believes the server does not) is then the victim of a downgrade, and
	// the exchange fails with not-authorized.
	AdvertisedPlus bool
	// TLS tells that the stream is encrypted even though ChannelBinding is
	// nil. PLAIN is refused with encryption-required unless TLS is true or
	// ChannelBinding is set.
	TLS bool
	// Authorize decides whether the authenticated username may act as the
	// authorization identity the client asked for (XMPP clients send their
	// own bare JID, or nothing). It is called only for a non-empty authzid,
	// after the credentials were proven. A returned *Failure is sent as
	// is; any other error becomes invalid-authzid. When nil, any non-empty
	// authzid fails with invalid-authzid.
	Authorize func(ctx context.Context, username, authzid string) error
	// Secret keys the fake salts answered for unknown users. Nodes of one
	// cluster should share it, or a client could compare two nodes' answers
	// for the same name. When empty a random secret is made once per
	// process.
	Secret []byte
	// FakeIterations is the iteration count announced (and, for PLAIN, run)
	// for unknown users; set it to the count real accounts use. 0 means
	// DefaultIterations.
	FakeIterations int
	// PlainHash selects which stored credentials PLAIN checks the password
	// against. Only one hash is tried so that an unknown user costs the
	// same single lookup as a known one. "" means SHA-256.
	PlainHash Hash
}

// serverState is where a Server is in its exchange.
type serverState uint8

const (
	serverStart  serverState = iota // nothing received yet
	serverFinal                     // SCRAM: server-first sent, waiting for client-final
	serverDone                      // success returned
	serverFailed                    // a Failure returned; the exchange is over
)

// Server runs the server side of one SASL exchange. It does no I/O: each
// client message goes into Step, and what Step returns goes back to the
// client. A Server is not safe for concurrent use; make one per attempt.
type Server struct {
	cfg   ServerConfig
	name  string
	mech  mechanism
	state serverState

	askedInitial bool // an empty challenge was sent for a missing initial response
	username     string
	authzid      string
	cbType       string

	// SCRAM state between the two client messages.
	creds       Credentials
	fake        bool     // creds are made up: the user does not exist
	pending     *Failure // reported instead of success once the proof is checked
	gs2         string
	cbData      []byte
	bare        string // client-first-message-bare
	serverFirst string
	nonce       string // c-nonce + s-nonce

	// newNonce makes the server nonce; tests replace it to replay RFC vectors.
	newNonce func() string
}

// NewServer starts the server side of an exchange for the mechanism the
// client selected. An unknown mechanism, or a -PLUS one on a connection
// without channel binding, is a *Failure with invalid-mechanism; PLAIN on a
// connection that is not TLS is encryption-required. Other errors are
// configuration mistakes.
func NewServer(mech string, cfg ServerConfig) (*Server, error) {
	m, ok := parseMechanism(mech)
	if !ok {
		return nil, newFailure(InvalidMechanism, "")
	}
	if cfg.Lookup == nil {
		return nil, errors.New("sasl: new server: ServerConfig.Lookup is nil")
	}
	if cfg.FakeIterations == 0 {
		cfg.FakeIterations = DefaultIterations
	}
	if cfg.FakeIterations < 1 || cfg.FakeIterations > MaxIterations {
		return nil, fmt.Errorf("sasl: new server: FakeIterations %d not in 1..%d", cfg.FakeIterations, MaxIterations)
	}
	if cfg.PlainHash == "" {
		cfg.PlainHash = SHA256
	}
	if !cfg.PlainHash.Valid() {
		return nil, fmt.Errorf("sasl: new server: unknown PlainHash %q", cfg.PlainHash)
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = processSecret()
	}
	if m.plus && cfg.ChannelBinding == nil {
		return nil, newFailure(InvalidMechanism, "channel binding is not available on this connection")
	}
	if m.plain && !cfg.TLS && cfg.ChannelBinding == nil {
		return nil, newFailure(EncryptionRequired, "PLAIN requires TLS")
	}
	return &Server{cfg: cfg, name: mech, mech: m, newNonce: rand.Text}, nil
}

// processSecret is the fallback fake-salt key. It is the package's only
// global: a per-process random value that must stay fixed for the process's
// life, or an unknown user's salt would change between attempts and give
// the user away.
var processSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return b
})

// Mechanism returns the mechanism name the server was created for.
func (s *Server) Mechanism() string { return s.name }

// Username returns the prepared authentication identity once the client
// named it (it is set even when the exchange later fails, for logs).
func (s *Server) Username() string { return s.username }

// Authzid returns the authorization identity the client asked for, "" when
// none. Valid after success; it was accepted by ServerConfig.Authorize.
func (s *Server) Authzid() string { return s.authzid }

// ChannelBinding returns the channel-binding type the exchange was bound
// to, "" when none.
func (s *Server) ChannelBinding() string { return s.cbType }

// Abort ends the exchange after the client's <abort/> and returns the
// failure to send (RFC 6120 §6.4.4).
func (s *Server) Abort() *Failure {
	s.state = serverFailed
	return newFailure(Aborted, "")
}

// Step consumes one raw client message (the decoded payload of <auth/> or
// <response/>) and returns the raw data to send back. While done is false,
// out goes in a <challenge/>; when done is true, authentication succeeded
// and out (possibly empty) goes in <success/>. A non-nil err is a *Failure
// to send in <failure/> (see [Failure.AppendXML]); the exchange is then
// over.
//
// On the first call a nil in means the client sent no initial response:
// the server answers with an empty challenge. A non-nil empty in is the
// client's explicit empty response ("="), which no mechanism here accepts.
func (s *Server) Step(ctx context.Context, in []byte) (out []byte, done bool, err error) {
	switch s.state {
	case serverDone, serverFailed:
		return nil, false, newFailure(MalformedRequest, "the authentication exchange is over")
	}
	if len(in) > MaxMessageSize {
		return s.fail(newFailure(MalformedRequest, "message too long"))
	}
	if s.state == serverStart && in == nil && !s.askedInitial {
		s.askedInitial = true
		return []byte{}, false, nil
	}
	if s.mech.plain {
		return s.stepPlain(ctx, in)
	}
	if s.state == serverStart {
		return s.stepClientFirst(ctx, in)
	}
	return s.stepClientFinal(ctx, in)
}

// fail ends the exchange with f.
func (s *Server) fail(f *Failure) ([]byte, bool, error) {
	s.state = serverFailed
	return nil, false, f
}

// lookup fetches the credentials of s.username for h and decides how the
// exchange goes on: with real credentials, with fake ones (unknown user), or
// not at all (the returned Failure).
func (s *Server) lookup(ctx context.Context, h Hash) *Failure {
	c, err := s.cfg.Lookup(ctx, s.username, h)
	switch {
	case err == nil:
		if verr := c.Validate(); verr != nil || c.Hash != h {
			f := newFailure(TemporaryAuthFailure, "")
			f.cause = fmt.Errorf("stored %s credentials of %q are unusable: %v", h, s.username, verr)
			return f
		}
		s.creds = c
		return nil
	case errors.Is(err, ErrUnknownUser):
		s.setFake(h)
		return nil
	case errors.Is(err, ErrMechanismTooWeak):
		return newFailure(MechanismTooWeak, "")
	case errors.Is(err, ErrAccountDisabled), errors.Is(err, ErrCredentialsExpired):
		cond := AccountDisabled
		if errors.Is(err, ErrCredentialsExpired) {
			cond = CredentialsExpired
		}
		if c.Validate() != nil || c.Hash != h {
			// Without credentials the password cannot be checked, and the
			// condition must not be told to someone who did not prove it.
			s.setFake(h)
			return nil
		}
		s.creds = c
		s.pending = newFailure(cond, "")
		return nil
	default:
		f := newFailure(TemporaryAuthFailure, "")
		f.cause = fmt.Errorf("look up %s credentials of %q: %w", h, s.username, err)
		return f
	}
}

// setFake replaces the credentials with ones made up for an unknown user:
// the salt depends only on the secret, the hash and the username, so
// repeated attempts see the same salt, as they would for a real account.
func (s *Server) setFake(h Hash) {
	m := hmac.New(sha512.New, s.cfg.Secret)
	m.Write([]byte("starling sasl fake credentials\x00"))
	m.Write([]byte(h))
	m.Write([]byte{0})
	m.Write([]byte(s.username))
	sum := m.Sum(nil)
	s.fake = true
	s.creds = Credentials{
		Hash:       h,
		Salt:       sum[:SaltSize],
		Iterations: s.cfg.FakeIterations,
		// No password derives these keys except by a hash collision,
		// and the fake flag fails the exchange even then.
		StoredKey: hmacSum(h, sum, []byte("stored")),
		ServerKey: hmacSum(h, sum, []byte("server")),
	}
}

// authorize applies ServerConfig.Authorize to a non-empty authzid.
func (s *Server) authorize(ctx context.Context) *Failure {
	if s.authzid == "" {
		return nil
	}
	if s.cfg.Authorize == nil {
		return newFailure(InvalidAuthzid, "")
	}
	err := s.cfg.Authorize(ctx, s.username, s.authzid)
	if err == nil {
		return nil
	}
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	f = newFailure(InvalidAuthzid, "")
	f.cause = err
	return f
}

// maxAuthzidSize bounds authorization identities: a JID is at most three
// parts of 1023 bytes plus separators.
const maxAuthzidSize = 3071

// validAuthzid reports whether an authzid may be passed on: bounded, UTF-8,
// no NUL.
func validAuthzid(a string) bool {
	return len(a) <= maxAuthzidSize && utf8.ValidString(a) && strings.IndexByte(a, 0) < 0
}

// stepPlain checks a PLAIN message: [authzid] NUL authcid NUL passwd.
func (s *Server) stepPlain(ctx context.Context, in []byte) ([]byte, bool, error) {
	authzid, authcid, passwd, f := parsePlain(in)
	if f != nil {
		return s.fail(f)
	}
	username, err := PrepareUsername(authcid)
	if err != nil {
		// No account can have a name that does not prepare, so this
		// reveals nothing the client does not know.
		return s.fail(newFailure(NotAuthorized, ""))
	}
	s.username, s.authzid = username, authzid
	if f := s.lookup(ctx, s.cfg.PlainHash); f != nil {
		return s.fail(f)
	}
	// VerifyPlain runs PBKDF2 for fake credentials too, so an unknown
	// user takes as long as a wrong password.
	ok := VerifyPlain(s.creds, passwd)
	if !ok || s.fake {
		return s.fail(newFailure(NotAuthorized, ""))
	}
	return s.succeed(ctx, nil)
}

// succeed reports a pending account condition or the authzid decision, or
// ends the exchange successfully with out.
func (s *Server) succeed(ctx context.Context, out []byte) ([]byte, bool, error) {
	if s.pending != nil {
		return s.fail(s.pending)
	}
	if f := s.authorize(ctx); f != nil {
		return s.fail(f)
	}
	s.state = serverDone
	return out, true, nil
}

// maxPlainField is RFC 4616's bound on each PLAIN field.
const maxPlainField = 255

// parsePlain splits a PLAIN message into its three fields.
func parsePlain(in []byte) (authzid, authcid, passwd string, f *Failure) {
	a, rest, ok1 := bytes.Cut(in, []byte{0})
	c, p, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 || bytes.IndexByte(p, 0) >= 0 {
		return "", "", "", newFailure(MalformedRequest, "PLAIN message must have three NUL-separated fields")
	}
	if len(c) == 0 || len(p) == 0 {
		return "", "", "", newFailure(MalformedRequest, "empty PLAIN username or password")
	}
	if len(a) > maxPlainField || len(c) > maxPlainField || len(p) > maxPlainField {
		return "", "", "", newFailure(MalformedRequest, "PLAIN field longer than 255 bytes")
	}
	if !utf8.Valid(a) || !utf8.Valid(c) || !utf8.Valid(p) {
		return "", "", "", newFailure(IncorrectEncoding, "PLAIN field is not UTF-8")
	}
	return string(a), string(c), string(p), nil
}

// stepClientFirst handles client-first-message and returns
// server-first-message.
func (s *Server) stepClientFirst(ctx context.Context, in []byte) ([]byte, bool, error) {
	cf, f := parseClientFirst(string(in))
	if f != nil {
		return s.fail(f)
	}
	switch cf.flag {
	case 'n':
		if s.mech.plus {
			return s.fail(newFailure(MalformedRequest, "a -PLUS mechanism requires channel binding"))
		}
	case 'y':
		if s.mech.plus {
			return s.fail(newFailure(MalformedRequest, "a -PLUS mechanism requires channel binding"))
		}
		if s.cfg.AdvertisedPlus {
			// The client can bind, the server offered binding, yet the
			// client saw no -PLUS mechanism: someone removed them.
			return s.fail(newFailure(NotAuthorized, "channel binding downgrade detected"))
		}
	case 'p':
		if !s.mech.plus {
			return s.fail(newFailure(MalformedRequest, "channel binding requires a -PLUS mechanism"))
		}
		data, ok := s.cfg.ChannelBinding(cf.cbType)
		if !ok {
			return s.fail(newFailure(NotAuthorized, "unsupported channel-binding type"))
		}
		s.cbType, s.cbData = cf.cbType, data
	}
	if !validAuthzid(cf.authzid) {
		return s.fail(newFailure(InvalidAuthzid, ""))
	}
	username, err := PrepareUsername(cf.username)
	if err != nil {
		return s.fail(newFailure(MalformedRequest, "invalid username"))
	}
	s.username, s.authzid = username, cf.authzid
	if f := s.lookup(ctx, s.mech.hash); f != nil {
		return s.fail(f)
	}
	s.gs2, s.bare = cf.gs2, cf.bare
	s.nonce = cf.nonce + s.newNonce()

	out := make([]byte, 0, 2+len(s.nonce)+3+b64.EncodedLen(len(s.creds.Salt))+3+8)
	out = append(out, "r="...)
	out = append(out, s.nonce...)
	out = append(out, ",s="...)
	out = b64.AppendEncode(out, s.creds.Salt)
	out = append(out, ",i="...)
	out = strconv.AppendInt(out, int64(s.creds.Iterations), 10)
	s.serverFirst = string(out)
	s.state = serverFinal
	return out, false, nil
}

// stepClientFinal checks client-final-message and returns
// server-final-message.
func (s *Server) stepClientFinal(ctx context.Context, in []byte) ([]byte, bool, error) {
	cf, f := parseClientFinal(string(in))
	if f != nil {
		return s.fail(f)
	}
	// c= must repeat the GS2 header of the first message, followed by the
	// binding data when bound, so that a man in the middle who changed
	// either is caught.
	if len(cf.cb) != len(s.gs2)+len(s.cbData) ||
		string(cf.cb[:len(s.gs2)]) != s.gs2 ||
		!hmac.Equal(cf.cb[len(s.gs2):], s.cbData) {
		return s.fail(newFailure(NotAuthorized, "channel binding mismatch"))
	}
	if cf.nonce != s.nonce {
		return s.fail(newFailure(MalformedRequest, "nonce mismatch"))
	}
	h := s.creds.Hash
	if len(cf.proof) != h.Size() {
		return s.fail(newFailure(MalformedRequest, "proof has the wrong length"))
	}
	authMsg := make([]byte, 0, len(s.bare)+1+len(s.serverFirst)+1+len(cf.withoutProof))
	authMsg = append(authMsg, s.bare...)
	authMsg = append(authMsg, ',')
	authMsg = append(authMsg, s.serverFirst...)
	authMsg = append(authMsg, ',')
	authMsg = append(authMsg, cf.withoutProof...)

	// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof
	// is right when H(ClientKey) is StoredKey.
	clientKey := hmacSum(h, s.creds.StoredKey, authMsg)
	for i := range clientKey {
		clientKey[i] ^= cf.proof[i]
	}
	ok := hmac.Equal(h.sum(clientKey), s.creds.StoredKey)
	serverSig := hmacSum(h, s.creds.ServerKey, authMsg)
	if !ok || s.fake {
		return s.fail(newFailure(NotAuthorized, ""))
	}
	out := make([]byte, 0, 2+b64.EncodedLen(len(serverSig)))
	out = append(out, "v="...)
	out = b64.AppendEncode(out, serverSig)
	return s.succeed(ctx, out)
}
