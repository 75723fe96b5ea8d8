package router

import (
	"context"
	"errors"

	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// target is a parsed destination address. On the fast path (see splitCanonical) bare and resource
// point into the stanza's bytes and nothing is allocated.
type target struct {
	full     []byte // the whole address, prepared
	bare     []byte // local@domain, or domain
	domain   []byte
	resource []byte
	hasLocal bool
	hasRes   bool
}

// resolve parses a 'to' value into a target, taking the allocation-free path when the address is ASCII
// and already in its canonical (prepared) form, and full RFC 7622 preparation otherwise.
func resolve(b []byte) (target, error) {
	if t, ok := splitCanonical(b); ok {
		return t, nil
	}
	j, err := jid.ParseBytes(b)
	if err != nil {
		return target{}, err
	}
	t := target{domain: []byte(j.Domain()), hasLocal: j.Local() != "", hasRes: j.Resource() != ""}
	t.full = []byte(j.String())
	t.bare = t.full[:len(j.Bare().String())]
	t.resource = []byte(j.Resource())
	return t, nil
}

// splitCanonical recognises addresses that RFC 7622 preparation would leave unchanged: ASCII, a
// lower-case localpart of identifier characters, a lower-case host-name domain, a printable ASCII
// resource. Anything else goes through the jid package.
func splitCanonical(b []byte) (target, bool) {
	var t target
	at, slash := -1, -1
	for i, c := range b {
		if c == '/' {
			slash = i
			break
		}
		if c == '@' && at < 0 {
			at = i
		}
	}
	end := len(b)
	if slash >= 0 {
		end = slash
		res := b[slash+1:]
		if len(res) == 0 || len(res) > 1023 {
			return t, false
		}
		for _, c := range res {
			if c < 0x21 || c > 0x7e {
				return t, false
			}
		}
		t.resource, t.hasRes = res, true
	}
	dstart := 0
	if at >= 0 {
		local := b[:at]
		if len(local) == 0 || len(local) > 1023 {
			return t, false
		}
		for _, c := range local {
			if c < 0x21 || c > 0x7e || c >= 'A' && c <= 'Z' {
				return t, false
			}
			switch c {
			case '"', '&', '\'', '/', ':', '<', '>', '@':
				return t, false
			}
		}
		t.hasLocal = true
		dstart = at + 1
	}
	dom := b[dstart:end]
	if len(dom) == 0 || len(dom) > 253 || dom[0] == '.' || dom[len(dom)-1] == '.' || dom[0] == '-' {
		return t, false
	}
	prev := byte('.')
	for _, c := range dom {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok || c == '.' && prev == '.' {
			return t, false
		}
		prev = c
	}
	t.domain = dom
	t.full = b
	t.bare = b[:end]
	return t, true
}

func (r *Router) routeMessage(ctx context.Context, from *Resource, e *xml.Element) {
	typ := string(e.Attr("type"))
	switch typ {
	case "", "normal", "chat", "groupchat", "headline", "error":
	default:
		r.replyError(from, e, stanza.New(stanza.BadRequest, "unknown message type"))
		return
	}
	toRaw := e.Attr("to")
	var t target
	if len(toRaw) == 0 {
		// A message with no 'to' is for the sender's own account (RFC 6120 §10.3.1).
		t = target{bare: []byte(from.bare), hasLocal: true}
	} else {
		var err error
		if t, err = resolve(toRaw); err != nil {
			r.replyError(from, e, stanza.New(stanza.JIDMalformed, err.Error()))
			return
		}
		if !r.IsLocalDomain(string(t.domain)) {
			r.replyError(from, e, stanza.New(stanza.RemoteServerNotFound, "no route to "+string(t.domain)))
			return
		}
		if !t.hasLocal {
			return // messages to the server itself have no handler; RFC 6120 §10.3.1 lets it drop them
		}
		// Before any delivery, carbon or offline storage: a blocked message goes nowhere.
		if r.blocker != nil && string(t.bare) != from.bare && r.blocked(ctx, from, e, t.full, t.bare, true) {
			return
		}
	}
	set := from.stampFrom
	if t.hasRes {
		r.mu.RLock()
		for _, res := range r.users[string(t.bare)] {
			if res.jid.Resource() == string(t.resource) {
				res.Send(e, set...)
				r.copyCarbons(from, e, t.bare, res, -1<<31)
				r.mu.RUnlock()
				return
			}
		}
		r.mu.RUnlock()
		// RFC 6121 §8.5.3.2.1: no such resource.
		switch typ {
		case "groupchat":
			r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, ""))
			return
		case "headline", "error":
			return
		}
	}
	r.messageToBare(ctx, from, e, t.bare, typ, set)
}

// blocked applies XEP-0191 §3.3 to a stanza from a local resource to the entity to (whose bare JID
// is toBare), both prepared, and reports whether it was stopped. When the sender's account blocks
// the addressee, the sender gets not-acceptable with <blocked/>. When the addressee blocks the
// sender, the stanza is dropped as if nobody were there: a message or an iq request is answered with
// service-unavailable (what an account without sessions answers, so that the sender cannot tell it
// is blocked), anything else gets no answer. answer is false for stanzas that get no error either way
// (iq results and errors). It allocates nothing when nothing is blocked.
func (r *Router) blocked(ctx context.Context, from *Resource, e *xml.Element, to, toBare []byte, answer bool) bool {
	if r.blocker.Blocks(ctx, from.full[:len(from.bare)], to) {
		if answer {
			r.replyError(from, e, &stanza.Error{Condition: stanza.NotAcceptable, Type: "cancel", App: blockedApp})
		}
		return true
	}
	if r.blocker.Blocks(ctx, toBare, from.full) {
		if answer {
			r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, ""))
		}
		return true
	}
	return false
}

// blockedApp is XEP-0191's application condition for a stanza addressed to an entity the sender
// blocks; never modified.
var blockedApp = []byte("<blocked xmlns='urn:xmpp:blocking:errors'/>")

// messageToBare applies RFC 6121 §8.5.2 (the account has resources) and §8.5.3 (it has none).
func (r *Router) messageToBare(ctx context.Context, from *Resource, e *xml.Element, bare []byte, typ string, set []xml.Attr) {
	if typ == "groupchat" {
		r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, ""))
		return
	}
	delivered := false
	r.mu.RLock()
	best := -1 << 31
	for _, res := range r.users[string(bare)] {
		if p, ok := res.presenceOf(); ok && p >= 0 && p > best {
			best = p
		}
	}
	if best >= 0 {
		for _, res := range r.users[string(bare)] {
			p, ok := res.presenceOf()
			if !ok || p < 0 {
				continue
			}
			// chat and normal go to the most available resources; headline to all available ones.
			if typ == "headline" || p == best {
				if res.Send(e, set...) == nil {
					delivered = true
				}
			}
		}
	}
	if typ != "headline" {
		r.copyCarbons(from, e, bare, nil, best)
	}
	r.mu.RUnlock()
	if delivered || typ == "headline" || typ == "error" {
		return
	}
	owner := string(bare)
	exists, err := r.UserExists(ctx, owner)
	if err != nil {
		r.log.Error("message routing: account lookup failed", "to", owner, "err", err)
		r.replyError(from, e, stanza.New(stanza.InternalServerError, ""))
		return
	}
	if !exists {
		r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, ""))
		return
	}
	if r.opts.Offline == nil {
		r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, "offline storage is off"))
		return
	}
	if err := r.opts.Offline.StoreOffline(ctx, owner, e.AppendTo(nil, set...)); err != nil {
		r.log.Warn("offline message refused", "to", owner, "err", err)
		r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, "the recipient cannot receive more offline messages"))
	}
}

// presenceOf returns the resource's priority and whether it is available.
func (res *Resource) presenceOf() (int, bool) {
	res.mu.Lock()
	defer res.mu.Unlock()
	return res.priority, res.available
}

// IQ is an IQ request for a handler.
type IQ struct {
	From    *Resource
	To      jid.JID // zero when the request had no 'to' (it is for the sender's account)
	Type    string  // "get" or "set"
	ID      string
	Elem    *xml.Element // the whole stanza; valid only during HandleIQ
	Payload *xml.Element // its child
	router  *Router
	replied bool
}

// ToServer reports whether the request is addressed to a served domain itself.
func (q *IQ) ToServer() bool { return !q.To.IsZero() && q.To.Local() == "" && q.To.Resource() == "" }

// ToOwnAccount reports whether the request is for the sender's own account (no 'to', or its bare JID).
func (q *IQ) ToOwnAccount() bool {
	return q.To.IsZero() || q.To.IsBare() && q.To.String() == q.From.bare
}

// Result answers the request with payload (nil for an empty result).
func (q *IQ) Result(payload []byte) error {
	q.replied = true
	b := make([]byte, 0, 96+len(payload))
	b = append(b, "<iq type='result'"...)
	b = appendAttr(b, "id", q.ID)
	if !q.To.IsZero() {
		b = appendAttr(b, "from", q.To.String())
	}
	b = appendAttr(b, "to", string(q.From.full))
	if len(payload) == 0 {
		b = append(b, "/>"...)
	} else {
		b = append(b, '>')
		b = append(b, payload...)
		b = append(b, "</iq>"...)
	}
	return q.From.SendRaw(b)
}

// Error answers the request with a stanza error.
func (q *IQ) Error(serr *stanza.Error) error {
	q.replied = true
	from := ""
	if !q.To.IsZero() {
		from = q.To.String()
	}
	return q.From.SendRaw(serr.AppendReply(nil, "iq", q.ID, from, string(q.From.full), nil))
}

func appendAttr(b []byte, k, v string) []byte {
	b = append(b, ' ')
	b = append(b, k...)
	b = append(b, "='"...)
	b = xml.EscapeAttr(b, v)
	return append(b, '\'')
}

func (r *Router) routeIQ(ctx context.Context, from *Resource, e *xml.Element) {
	typ := string(e.Attr("type"))
	id := e.Attr("id")
	isRequest := typ == "get" || typ == "set"
	if !isRequest && typ != "result" && typ != "error" {
		r.replyError(from, e, stanza.New(stanza.BadRequest, "an iq needs type get, set, result or error"))
		return
	}
	if len(id) == 0 {
		r.replyError(from, e, stanza.New(stanza.BadRequest, "an iq needs an id"))
		return
	}
	var to jid.JID
	if raw := e.Attr("to"); len(raw) > 0 {
		var err error
		if to, err = jid.ParseBytes(raw); err != nil {
			r.replyError(from, e, stanza.New(stanza.JIDMalformed, err.Error()))
			return
		}
		if !r.IsLocalDomain(to.Domain()) {
			if isRequest {
				r.replyError(from, e, stanza.New(stanza.RemoteServerNotFound, "no route to "+to.Domain()))
			}
			return
		}
		// An iq to another account or one of its resources: blocking applies, whether a resource or a
		// handler on the account's behalf (vCard, say) would answer.
		if bare := to.Bare().String(); r.blocker != nil && to.Local() != "" && bare != from.bare {
			full := []byte(to.String())
			if r.blocked(ctx, from, e, full, full[:len(bare)], isRequest) {
				return
			}
		}
		if to.Resource() != "" {
			// To a full JID: the resource answers, or nobody does (RFC 6121 §8.5.3.1).
			if res := r.Resource(to); res != nil {
				res.Send(e, from.stampFrom...)
			} else if isRequest {
				r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, ""))
			}
			return
		}
	}
	if !isRequest {
		return // results and errors for the server or an account are not routed further
	}
	payload := e.FirstChild()
	if payload == nil || payload.NextSibling() != nil {
		r.replyError(from, e, stanza.New(stanza.BadRequest, "an iq get or set carries exactly one child"))
		return
	}
	h := r.iq[string(payload.Space())]
	if h == nil {
		r.replyError(from, e, stanza.New(stanza.ServiceUnavailable, ""))
		return
	}
	q := &IQ{From: from, To: to, Type: typ, ID: string(id), Elem: e, Payload: payload, router: r}
	err := h.HandleIQ(ctx, q)
	var serr *stanza.Error
	switch {
	case err == nil:
		if !q.replied {
			r.log.Error("iq handler returned without answering", "ns", string(payload.Space()))
			q.Error(stanza.New(stanza.InternalServerError, ""))
		}
	case errors.As(err, &serr):
		q.Error(serr)
	default:
		r.log.Error("iq handler failed", "ns", string(payload.Space()), "from", string(from.full), "err", err)
		q.Error(stanza.New(stanza.InternalServerError, ""))
	}
}

// copyCarbons sends XEP-0280 copies of a message from a local resource: "sent" to the sender's other
// resources, "received" to the recipient's resources that did not get the message itself (got, or,
// for a bare JID, those available at priority best). Called with r.mu read-locked. With no resource
// asking for carbons it does nothing, and allocates nothing.
func (r *Router) copyCarbons(from *Resource, e *xml.Element, toBare []byte, got *Resource, best int) {
	if r.carbons == nil {
		return
	}
	senders, recipients := r.users[from.bare], r.users[string(toBare)]
	if !anyCarbons(senders, from) && !anyCarbons(recipients, nil) || !r.carbons.Eligible(e) {
		return
	}
	for _, res := range senders {
		if res != from && res.carbons.Load() && res != got {
			r.carbons.Copy("sent", from.bare, res, e, from.stampFrom)
		}
	}
	if from.bare == string(toBare) {
		return // to oneself: the sent copies already reached every other resource
	}
	for _, res := range recipients {
		if !res.carbons.Load() || res == got {
			continue
		}
		if got == nil {
			if p, ok := res.presenceOf(); ok && p >= 0 && p == best {
				continue // it got the message itself
			}
		}
		r.carbons.Copy("received", res.bare, res, e, from.stampFrom)
	}
}

func anyCarbons(list []*Resource, except *Resource) bool {
	for _, res := range list {
		if res != except && res.carbons.Load() {
			return true
		}
	}
	return false
}
