// Package router decides where a stanza goes once a client session has sent it: to a local resource,
// to offline storage, to a server-side handler, or back to the sender as an error (RFC 6120 §10,
// RFC 6121 §8). Features plug in as IQ handlers and a presence handler; the cluster plugs in as a Remote.
package router

import (
	"sync"
	"sync/atomic"

	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// Sink is where a resource's outgoing stanzas go: its connection.
type Sink interface {
	Write(p []byte) error
	WriteElement(e *xml.Element, set ...xml.Attr) error
}

// Closer ends a session with a stream error; the session's owner implements it.
type Closer interface {
	CloseStream(condition, text string)
}

// Resource is a bound client session: a full JID on this node with its presence state. The c2s
// session creates it at resource binding; features read and update its presence state.
type Resource struct {
	jid  jid.JID
	bare string // the bare JID, the router's map key
	full []byte // the full JID, stamped as 'from' on what this resource sends
	// stampFrom is the attribute set that rewrites 'from' to full, made once: a slice built per stanza
	// would escape through the Sink interface and allocate on every message.
	stampFrom []xml.Attr
	sink      Sink
	closer    Closer

	carbons atomic.Bool // XEP-0280: this resource wants copies of its account's chats

	mu              sync.Mutex
	available       bool
	priority        int
	presence        []byte // the last broadcast available presence, owned, with 'from' stamped
	rosterRequested bool
	directed        map[string]struct{} // full or bare JIDs this resource sent directed presence to
	initialDone     bool
}

// NewResource makes a resource for a bound session.
func NewResource(j jid.JID, sink Sink, closer Closer) *Resource {
	r := &Resource{jid: j, bare: j.Bare().String(), full: []byte(j.String()), sink: sink, closer: closer}
	r.stampFrom = []xml.Attr{{Name: attrFrom, Value: r.full}}
	return r
}

// JID is the resource's full JID.
func (r *Resource) JID() jid.JID { return r.jid }

// Bare is the resource's bare JID as a string.
func (r *Resource) Bare() string { return r.bare }

// Full is the resource's full JID as bytes; callers must not modify it.
func (r *Resource) Full() []byte { return r.full }

// Send queues e for the client with the given attributes replaced.
func (r *Resource) Send(e *xml.Element, set ...xml.Attr) error { return r.sink.WriteElement(e, set...) }

// SendRaw queues pre-serialised bytes for the client.
func (r *Resource) SendRaw(p []byte) error { return r.sink.Write(p) }

// Close ends the session with a stream error.
func (r *Resource) Close(condition, text string) { r.closer.CloseStream(condition, text) }

// Available reports whether the resource has sent available presence (RFC 6121 §4.2) and not since
// gone unavailable.
func (r *Resource) Available() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.available
}

// Priority is the priority of the resource's last available presence.
func (r *Resource) Priority() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.priority
}

// SetPresence records an available presence broadcast (raw with 'from' stamped) and its priority, or an
// unavailable one (available false). It reports whether this was the resource's initial presence.
func (r *Resource) SetPresence(available bool, priority int, raw []byte) (initial bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.available = available
	r.priority = priority
	if available {
		r.presence = append(r.presence[:0], raw...)
		initial = !r.initialDone
		r.initialDone = true
	} else {
		r.presence = nil
	}
	return initial
}

// LastPresence returns a copy of the last available presence broadcast, nil if unavailable.
func (r *Resource) LastPresence() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.presence == nil {
		return nil
	}
	return append([]byte(nil), r.presence...)
}

// SetRosterRequested marks the resource as interested in roster pushes (RFC 6121 §2.1.6: it asked for
// the roster).
func (r *Resource) SetRosterRequested() {
	r.mu.Lock()
	r.rosterRequested = true
	r.mu.Unlock()
}

// RosterRequested reports whether the resource asked for its roster.
func (r *Resource) RosterRequested() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rosterRequested
}

// AddDirected remembers that the resource sent directed presence to to (RFC 6121 §4.6), so that its
// unavailable presence reaches to as well.
func (r *Resource) AddDirected(to string) {
	r.mu.Lock()
	if r.directed == nil {
		r.directed = make(map[string]struct{})
	}
	r.directed[to] = struct{}{}
	r.mu.Unlock()
}

// RemoveDirected forgets a directed-presence recipient (it was sent unavailable presence).
func (r *Resource) RemoveDirected(to string) {
	r.mu.Lock()
	delete(r.directed, to)
	r.mu.Unlock()
}

// TakeDirected returns and forgets every directed-presence recipient.
func (r *Resource) TakeDirected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.directed))
	for k := range r.directed {
		out = append(out, k)
	}
	r.directed = nil
	return out
}

// SetCarbons turns message carbons (XEP-0280) on or off for the resource.
func (r *Resource) SetCarbons(on bool) { r.carbons.Store(on) }

// Carbons reports whether the resource wants message carbons.
func (r *Resource) Carbons() bool { return r.carbons.Load() }
