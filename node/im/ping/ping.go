// Package ping answers XMPP Ping (XEP-0199) requests that clients address to the server or to their own
// account: an empty result proves the path from the client to the server is alive.
//
// Try it: from a client, send <iq type='get' to='example.com' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>
// and expect <iq type='result' id='p1' from='example.com'/>.
package ping

import (
	"context"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/stanza"
)

// NS is the XEP-0199 namespace.
const NS = "urn:xmpp:ping"

// Handler answers pings; register it with Register or router.HandleIQ(NS, Handler{}).
type Handler struct{}

// Register makes r answer pings; the namespace then shows in the server's service discovery.
func Register(r *router.Router) { r.HandleIQ(NS, Handler{}) }

// HandleIQ implements router.IQHandler.
func (Handler) HandleIQ(_ context.Context, q *router.IQ) error {
	if !q.Payload.Is(NS, "ping") {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if q.Type != "get" {
		// XEP-0199 §4 defines only the get; a set is a request for something the protocol lacks.
		return stanza.New(stanza.FeatureNotImplemented, "a ping is an iq of type get")
	}
	// A ping to another user's bare JID would be answered on that user's behalf and reveal whether
	// the account exists; only the server itself and the sender's own account answer.
	if !q.ToServer() && !q.ToOwnAccount() {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	return q.Result(nil)
}
