package sasl

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Channel-binding types (RFC 5056 names) this package supports.
const (
	// TLSExporter binds to the TLS session's exporter (RFC 9266).
	TLSExporter = "tls-exporter"
	// TLSServerEndPoint binds to the server certificate (RFC 5929 §4).
	TLSServerEndPoint = "tls-server-end-point"
)

// RFC 9266 §2: label, an empty context, 32 bytes.
const (
	exporterLabel = "EXPORTER-Channel-Binding"
	exporterSize  = 32
)

// ErrNoServerCertificate is returned by [BindingData] for
// tls-server-end-point on the server side: tls.ConnectionState does not
// hold the server's own certificate, so servers use [ServerBinding] or
// [ServerEndPoint] with the certificate they serve.
var ErrNoServerCertificate = errors.New("sasl: the server's own certificate is not part of tls.ConnectionState")

// exporterAvailable reports whether tls-exporter is defined for the
// connection: always on TLS 1.3, and on TLS 1.2 only with the extended
// master secret (RFC 9266 §3). Go refuses to export keying material from a
// TLS 1.2 session without it, which is how EMS is detected — unless
// GODEBUG=tlsunsafeekm=1 lifts that refusal, in which case TLS 1.2 is not
// trusted at all. (A //go:debug directive setting it is not seen here.)
func exporterAvailable(state *tls.ConnectionState) bool {
	if state == nil || !state.HandshakeComplete {
		return false
	}
	switch state.Version {
	case tls.VersionTLS13:
	case tls.VersionTLS12:
		if strings.Contains(os.Getenv("GODEBUG"), "tlsunsafeekm=1") {
			return false
		}
	default:
		return false
	}
	_, err := exportBinding(state)
	return err == nil
}

// exportBinding returns the tls-exporter data. A ConnectionState built by
// hand rather than by crypto/tls has no exporter and would make
// ExportKeyingMaterial panic; that becomes an error here.
func exportBinding(state *tls.ConnectionState) (b []byte, err error) {
	defer func() {
		if recover() != nil {
			b, err = nil, errors.New("connection state has no keying material exporter")
		}
	}()
	// RFC 9266 asks for an empty context; TLS 1.3 hashes the context, so
	// nil and empty agree, and for TLS 1.2 nil matches what OpenSSL and
	// rustls send.
	return state.ExportKeyingMaterial(exporterLabel, nil, exporterSize)
}

// CBTypes lists the channel-binding types the connection supports, in
// preference order, as the client sees it: tls-exporter on TLS 1.3 (and
// TLS 1.2 with extended master secret), then tls-server-end-point when the
// peer's certificate has a signature hash RFC 5929 defines a binding for.
// A server's ConnectionState lacks its own certificate; servers use
// [ServerBinding], which also gives the list for XEP-0440's
// <sasl-channel-binding/>.
func CBTypes(state *tls.ConnectionState) []string {
	var out []string
	if exporterAvailable(state) {
		out = append(out, TLSExporter)
	}
	if state != nil && state.HandshakeComplete && len(state.PeerCertificates) > 0 {
		if _, err := ServerEndPoint(state.PeerCertificates[0]); err == nil {
			out = append(out, TLSServerEndPoint)
		}
	}
	return out
}

// BindingData returns the channel-binding data of the connection for
// cbType. serverSide tells which end state belongs to: a client's
// tls-server-end-point hashes the peer's certificate, while on the server
// side it returns ErrNoServerCertificate. tls-exporter data is the same on
// both ends.
func BindingData(state *tls.ConnectionState, cbType string, serverSide bool) ([]byte, error) {
	if state == nil || !state.HandshakeComplete {
		return nil, errors.New("sasl: channel binding: TLS handshake not complete")
	}
	switch cbType {
	case TLSExporter:
		if !exporterAvailable(state) {
			return nil, fmt.Errorf("sasl: channel binding: %s needs TLS 1.3 or TLS 1.2 with extended master secret", TLSExporter)
		}
		b, err := exportBinding(state)
		if err != nil {
			return nil, fmt.Errorf("sasl: channel binding: export keying material: %w", err)
		}
		return b, nil
	case TLSServerEndPoint:
		if serverSide {
			return nil, ErrNoServerCertificate
		}
		if len(state.PeerCertificates) == 0 {
			return nil, errors.New("sasl: channel binding: no peer certificate")
		}
		return ServerEndPoint(state.PeerCertificates[0])
	}
	return nil, fmt.Errorf("sasl: channel binding: unsupported type %q", cbType)
}

// ServerEndPoint returns the tls-server-end-point binding of a server
// certificate (RFC 5929 §4.1): its hash with the certificate's signature
// hash, SHA-256 when that is MD5 or SHA-1. Certificates signed without a
// single hash (Ed25519) have no defined binding and give an error.
func ServerEndPoint(cert *x509.Certificate) ([]byte, error) {
	if cert == nil {
		return nil, errors.New("sasl: tls-server-end-point: no certificate")
	}
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.DSAWithSHA256, x509.ECDSAWithSHA256, x509.SHA256WithRSAPSS:
		s := sha256.Sum256(cert.Raw)
		return s[:], nil
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		s := sha512.Sum384(cert.Raw)
		return s[:], nil
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		s := sha512.Sum512(cert.Raw)
		return s[:], nil
	}
	return nil, fmt.Errorf("sasl: tls-server-end-point: undefined for signature algorithm %v", cert.SignatureAlgorithm)
}

// ServerBinding prepares channel binding for the server side of a TLS
// connection: the types to offer, in preference order (for [Mechanisms] and
// XEP-0440), and the function for ServerConfig.ChannelBinding. cert is the
// leaf certificate the server presented (tls.Certificate.Leaf); nil leaves
// tls-server-end-point out. The data is computed once, here. Without a
// completed TLS handshake both results are nil, as ServerConfig expects of a
// connection that is not TLS.
func ServerBinding(state *tls.ConnectionState, cert *x509.Certificate) (types []string, binding func(cbType string) ([]byte, bool)) {
	if state == nil || !state.HandshakeComplete {
		return nil, nil
	}
	data := make(map[string][]byte, 2)
	if b, err := BindingData(state, TLSExporter, true); err == nil {
		data[TLSExporter] = b
		types = append(types, TLSExporter)
	}
	if cert != nil {
		if b, err := ServerEndPoint(cert); err == nil {
			data[TLSServerEndPoint] = b
			types = append(types, TLSServerEndPoint)
		}
	}
	return types, lookupBinding(data)
}

// ClientBinding is ServerBinding for the client side: the types the
// connection supports (as [CBTypes]) and the function for
// ClientConfig.ChannelBinding; both nil without a completed TLS handshake.
func ClientBinding(state *tls.ConnectionState) (types []string, binding func(cbType string) ([]byte, bool)) {
	if state == nil || !state.HandshakeComplete {
		return nil, nil
	}
	data := make(map[string][]byte, 2)
	for _, t := range CBTypes(state) {
		if b, err := BindingData(state, t, false); err == nil {
			data[t] = b
			types = append(types, t)
		}
	}
	return types, lookupBinding(data)
}

// lookupBinding returns a ChannelBinding function over precomputed data.
func lookupBinding(data map[string][]byte) func(string) ([]byte, bool) {
	return func(cbType string) ([]byte, bool) {
		b, ok := data[cbType]
		return b, ok
	}
}

// AppendChannelBindingFeature appends the XEP-0440 stream feature that tells
// clients which channel-binding types the server supports, e.g.
//
//	<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/></sasl-channel-binding>
//
// It appends nothing for an empty list. Types that are not valid
// channel-binding names are skipped, so the output is always well-formed.
func AppendChannelBindingFeature(b []byte, types []string) []byte {
	if len(types) == 0 {
		return b
	}
	b = append(b, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"...)
	for _, t := range types {
		if !validCBName(t) {
			continue
		}
		b = append(b, "<channel-binding type='"...)
		b = append(b, t...)
		b = append(b, "'/>"...)
	}
	return append(b, "</sasl-channel-binding>"...)
}
