// Package conn is the connection core shared by every kind of XMPP connection a node holds (client
// sessions now, cluster links later): one reader goroutine that holds no buffer while the peer is silent,
// an output queue written by a short-lived flusher with one writev per batch, a cap on pending output,
// idle handling, and an explicit reason for every close.
//
// It knows sockets and bytes, not XMPP: the owner (c2s, cluster) parses what is read and decides what is
// written.
package conn

// Reason says why a connection was closed. It is also the label of the close metric, so its String values
// are stable.
type Reason uint8

// Close reasons. ReasonNone means the connection is still open.
const (
	ReasonNone Reason = iota
	ReasonPeerClosed
	ReasonStreamEnd
	ReasonStreamError
	ReasonNotWellFormed
	ReasonPolicy
	ReasonIdle
	ReasonSlowConsumer
	ReasonReplaced
	ReasonAuthFailed
	ReasonTLSFailed
	ReasonReadError
	ReasonWriteError
	ReasonShutdown
	ReasonThrottled
	ReasonRedirected
	ReasonSetupFailed // the node could not set the connection up (say, the traffic meter refused it)
	reasonCount
)

var reasonNames = [reasonCount]string{
	ReasonNone:          "none",
	ReasonPeerClosed:    "peer_closed",
	ReasonStreamEnd:     "stream_end",
	ReasonStreamError:   "stream_error",
	ReasonNotWellFormed: "not_well_formed",
	ReasonPolicy:        "policy_violation",
	ReasonIdle:          "idle_timeout",
	ReasonSlowConsumer:  "slow_consumer",
	ReasonReplaced:      "replaced",
	ReasonAuthFailed:    "auth_failed",
	ReasonTLSFailed:     "tls_failed",
	ReasonReadError:     "read_error",
	ReasonWriteError:    "write_error",
	ReasonShutdown:      "shutdown",
	ReasonThrottled:     "throttled",
	ReasonRedirected:    "redirected",
	ReasonSetupFailed:   "setup_failed",
}

// String returns the metric label of r.
func (r Reason) String() string {
	if r < reasonCount {
		return reasonNames[r]
	}
	return "unknown"
}

// Reasons lists every close reason, for pre-creating metric series.
func Reasons() []Reason {
	rs := make([]Reason, 0, reasonCount-1)
	for r := ReasonPeerClosed; r < reasonCount; r++ {
		rs = append(rs, r)
	}
	return rs
}
