package c2s

import (
	"bytes"

	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// XEP-0352 client state indication: a client that says it is <inactive/> (a phone in a pocket) does not
// need every presence change and typing notification the moment it happens. While it is inactive the
// node holds those back, keeping only the latest from each sender, and sends them, in order, as soon
// as something that matters goes out (a message with a body, an IQ, a subscription request) or the
// client becomes <active/> again. Nothing the user would see is delayed; the radio wakes less often.

const (
	nsCSI        = "urn:xmpp:csi:0"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	maxHeld      = 1000 // past this, held stanzas are sent rather than kept
)

type held struct {
	from string
	kind byte // 'p' presence, 'c' chat state: one of each per sender is kept
	b    []byte
}

// holdLocked keeps a stanza back while the client is inactive, replacing an older one of the same kind
// from the same sender. It reports whether the stanza was held.
func (k *sink) holdLocked(kind byte, from string, b []byte) bool {
	for i := range k.held {
		if k.held[i].from == from && k.held[i].kind == kind {
			// The newer one replaces it, moving to the end so order among senders is kept.
			copy(k.held[i:], k.held[i+1:])
			k.held[len(k.held)-1] = held{from: from, kind: kind, b: b}
			return true
		}
	}
	if len(k.held) >= maxHeld {
		return false
	}
	k.held = append(k.held, held{from: from, kind: kind, b: b})
	return true
}

// flushHeldLocked sends what was held back, in order.
func (k *sink) flushHeldLocked() {
	held := k.held
	k.held = nil
	for _, h := range held {
		k.sendLocked(h.b)
	}
}

// setActive records the client's state; becoming active sends what was held.
func (k *sink) setActive(active bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.inactive = !active
	if active {
		k.flushHeldLocked()
	}
}

// classify says whether a stanza may wait while the client is inactive, and from whom it is.
func classify(e *xml.Element) (kind byte, from string) {
	switch string(e.Name()) {
	case "presence":
		switch string(e.Attr("type")) {
		case "", "unavailable":
			return 'p', string(e.Attr("from"))
		}
	case "message":
		if string(e.Attr("type")) == "error" || e.Child("", "body") != nil {
			return 0, ""
		}
		only := false
		for c := e.FirstChild(); c != nil; c = c.NextSibling() {
			if string(c.Space()) != nsChatStates {
				return 0, ""
			}
			only = true
		}
		if only {
			return 'c', string(e.Attr("from"))
		}
	}
	return 0, ""
}

// classifyRaw is classify for pre-serialised stanzas; it decodes only when the client is inactive and
// the stanza might be holdable.
func classifyRaw(b []byte) (kind byte, from string) {
	if !bytes.HasPrefix(b, []byte("<presence")) && !bytes.HasPrefix(b, []byte("<message")) {
		return 0, ""
	}
	stanza.Inspect(b, func(e *xml.Element) { kind, from = classify(e) })
	return kind, from
}
