package presence

import (
	"github.com/starling-xmpp/starling/node/storage"
)

// Type is a presence subscription stanza type (RFC 6121 §3).
type Type uint8

// The subscription stanza types.
const (
	Subscribe Type = iota + 1
	Subscribed
	Unsubscribe
	Unsubscribed
)

// String returns the 'type' attribute value.
func (t Type) String() string {
	switch t {
	case Subscribe:
		return "subscribe"
	case Subscribed:
		return "subscribed"
	case Unsubscribe:
		return "unsubscribe"
	case Unsubscribed:
		return "unsubscribed"
	}
	return "invalid"
}

// ParseType returns the subscription type named s; ok is false for any other value.
func ParseType(s string) (t Type, ok bool) {
	switch s {
	case "subscribe":
		return Subscribe, true
	case "subscribed":
		return Subscribed, true
	case "unsubscribe":
		return Unsubscribe, true
	case "unsubscribed":
		return Unsubscribed, true
	}
	return 0, false
}

func hasTo(sub string) bool   { return sub == storage.SubTo || sub == storage.SubBoth }
func hasFrom(sub string) bool { return sub == storage.SubFrom || sub == storage.SubBoth }

// subscription names the state with the given directions.
func subscription(to, from bool) string {
	switch {
	case to && from:
		return storage.SubBoth
	case to:
		return storage.SubTo
	case from:
		return storage.SubFrom
	}
	return storage.SubNone
}

// sameState reports whether a and b are in the same subscription state (RFC 6121 Appendix A.1, with
// the pre-approval of §3.4).
func sameState(a, b storage.RosterItem) bool {
	return a.Subscription == b.Subscription && a.PendingOut == b.PendingOut && a.PendingIn == b.PendingIn &&
		a.PreApproved == b.PreApproved
}

// Outbound applies a subscription stanza of type t that the user sent to the contact of it: the
// tables of RFC 6121 Appendix A.2 (§3.1.2, §3.2.2, §3.3.2, §3.1.5 and §3.4 for pre-approval). It
// returns the item's next state and whether the stanza is routed to the contact.
func Outbound(it storage.RosterItem, t Type) (next storage.RosterItem, route bool) {
	next = it
	if next.Subscription == "" {
		next.Subscription = storage.SubNone
	}
	to, from := hasTo(next.Subscription), hasFrom(next.Subscription)
	switch t {
	case Subscribe:
		// Always routed: a contact's server that lost its half of the state answers again.
		route = true
		if !to {
			next.PendingOut = true
		}
	case Unsubscribe:
		route = true
		next.PendingOut = false
		next.Subscription = subscription(false, from)
	case Subscribed:
		switch {
		case it.PendingIn:
			route = true
			next.PendingIn, next.PendingInStanza, next.PreApproved = false, nil, false
			next.Subscription = subscription(to, true)
		case !from:
			next.PreApproved = true // §3.4.2: approve before the request comes
		}
	case Unsubscribed:
		if it.PendingIn || from {
			route = true
			next.PendingIn, next.PendingInStanza = false, nil
			next.Subscription = subscription(to, false)
		}
		next.PreApproved = false // §3.4: unsubscribed also cancels a pre-approval
	}
	return next, route
}

// InboundResult is what a server does with an inbound subscription stanza besides changing state.
type InboundResult struct {
	// Deliver: the stanza goes to the user's available resources (and, for subscribe, is stored to
	// be delivered again at the next login until it is answered).
	Deliver bool
	// AutoSubscribed: the server answers with subscribed on the user's behalf, because the contact is
	// already subscribed (the '*' rows of A.3.1) or the user pre-approved it (§3.4).
	AutoSubscribed bool
}

// Inbound applies a subscription stanza of type t that the contact of it sent to the user: the
// tables of RFC 6121 Appendix A.3 (§3.1.3, §3.1.6, §3.2.3, §3.3.3) and pre-approval (§3.4).
func Inbound(it storage.RosterItem, t Type) (next storage.RosterItem, res InboundResult) {
	next = it
	if next.Subscription == "" {
		next.Subscription = storage.SubNone
	}
	to, from := hasTo(next.Subscription), hasFrom(next.Subscription)
	switch t {
	case Subscribe:
		switch {
		case from:
			res.AutoSubscribed = true
		case it.PreApproved:
			next.PreApproved, next.PendingIn, next.PendingInStanza = false, false, nil
			next.Subscription = subscription(to, true)
			res.AutoSubscribed = true
		case !it.PendingIn:
			next.PendingIn = true
			res.Deliver = true
		}
	case Subscribed:
		if it.PendingOut && !to {
			next.PendingOut = false
			next.Subscription = subscription(true, from)
			res.Deliver = true
		}
	case Unsubscribe:
		if it.PendingIn || from {
			next.PendingIn, next.PendingInStanza = false, nil
			next.Subscription = subscription(to, false)
			res.Deliver = true
		}
	case Unsubscribed:
		if it.PendingOut || to {
			next.PendingOut = false
			next.Subscription = subscription(false, from)
			res.Deliver = true
		}
	}
	return next, res
}

// empty reports whether an item carries nothing worth keeping: no subscription, nothing pending,
// no pre-approval, no name or groups. Such an item that was never visible is deleted rather than
// stored, so that a withdrawn request does not leave an item the user never added.
func empty(it storage.RosterItem) bool {
	return it.Subscription == storage.SubNone && !it.PendingOut && !it.PendingIn && !it.PreApproved &&
		it.Name == "" && len(it.Groups) == 0
}
