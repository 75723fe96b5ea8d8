// Package offline keeps messages for users who have no available resource and hands them over when
// the user comes back (XEP-0160, "Best Practices for Handling Offline Messages").
//
// The router stores a message through [Offline.StoreOffline] (it implements router.Offline) when no
// resource of the recipient could take it; it has already filtered out the types that are not kept
// (only normal and chat are). Each user's store is bounded (Options.Limit, 1000 by default): a full
// store refuses, and the router answers the sender with service-unavailable.
//
// The presence handler calls [Offline.Deliver] when a resource sends available presence with a
// non-negative priority (XEP-0160 §4). Each message goes out with a XEP-0203 <delay/> stamped with
// the time it was stored, and the messages are deleted only up to the last one the connection
// accepted: if the session breaks halfway, the rest wait for the next login and nothing is lost.
// One call delivers at most Options.BatchBytes (512 KiB by default, at least one message), so that a
// large backlog does not overflow the connection's output cap and get the session closed as a slow
// consumer with messages queued but never written; it reports that more is waiting, and the presence
// handler calls again at the resource's next available presence.
//
// To try it: send a chat message to an account with no session, then log that account in and send
// <presence/>; the message arrives with <delay xmlns="urn:xmpp:delay" from="example.com" stamp="…"/>.
package offline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NSDelay is the namespace of XEP-0203 delayed delivery.
const NSDelay = "urn:xmpp:delay"

// DefaultLimit is the number of messages kept per user when Options.Limit is 0.
const DefaultLimit = 1000

// Store is the part of the storage offline messages use.
type Store interface {
	StoreOffline(ctx context.Context, owner string, stanza []byte, limit int) error
	OfflineMessages(ctx context.Context, owner string) ([]storage.OfflineMessage, error)
	DeleteOffline(ctx context.Context, owner string, upToID int64) error
}

// DefaultBatchBytes is the most stanza bytes one Deliver call queues when Options.BatchBytes is 0.
// It is half the connection core's default output cap (1 MiB).
const DefaultBatchBytes = 512 << 10

// Options configure Offline.
type Options struct {
	Store Store
	// Limit is the most messages kept per user: 0 means DefaultLimit, a negative value no limit.
	Limit int
	// BatchBytes bounds the bytes one Deliver call queues (0 means DefaultBatchBytes); the first
	// message goes out whatever its size.
	BatchBytes int
	Logger     *slog.Logger
}

// Offline stores and delivers offline messages.
type Offline struct {
	store   Store
	limit   int
	batch   int
	log     *slog.Logger
	blocker Blocker
}

// Blocker says whether an account blocks a sender (XEP-0191); a message stored before the block is
// not delivered after it.
type Blocker interface {
	Blocks(ctx context.Context, owner, contact []byte) bool
}

// SetBlocker makes delivery skip (and delete) messages from senders the account now blocks.
func (o *Offline) SetBlocker(b Blocker) { o.blocker = b }

// New returns an Offline.
func New(opts Options) (*Offline, error) {
	if opts.Store == nil {
		return nil, errors.New("offline: Store is required")
	}
	limit := opts.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0:
		limit = 0 // the storage's "no limit"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	batch := opts.BatchBytes
	if batch <= 0 {
		batch = DefaultBatchBytes
	}
	return &Offline{store: opts.Store, limit: limit, batch: batch, log: log}, nil
}

var _ router.Offline = (*Offline)(nil)

// ErrFull is returned (wrapped) by StoreOffline when the owner's store holds the limit.
var ErrFull = storage.ErrQuotaExceeded

// StoreOffline implements router.Offline: it keeps stanza (a message with 'from' stamped) for owner.
func (o *Offline) StoreOffline(ctx context.Context, owner string, stanza []byte) error {
	if _, _, err := parseRoot(stanza); err != nil {
		return fmt.Errorf("store offline message for %s: %w", owner, err)
	}
	if err := o.store.StoreOffline(ctx, owner, stanza, o.limit); err != nil {
		return fmt.Errorf("store offline message for %s: %w", owner, err)
	}
	return nil
}

// Deliver sends res the messages kept for its account, oldest first, each with a <delay/>, up to
// the batch budget, and then deletes those that were queued. more reports that messages are still
// waiting because the budget was reached; messages not queued stay stored.
func (o *Offline) Deliver(ctx context.Context, res *router.Resource) (more bool, err error) {
	owner := res.Bare()
	msgs, err := o.store.OfflineMessages(ctx, owner)
	if err != nil {
		return false, fmt.Errorf("deliver offline messages to %s: %w", owner, err)
	}
	if len(msgs) == 0 {
		return false, nil
	}
	domain := owner[strings.IndexByte(owner, '@')+1:]
	var (
		last    int64 = -1
		sendErr error
		buf     []byte
		sent    int
	)
	for i, m := range msgs {
		if sent > 0 && sent+len(m.Stanza) > o.batch {
			more = true
			break
		}
		if o.blocker != nil {
			if from := senderOf(m.Stanza); from != nil && o.blocker.Blocks(ctx, []byte(owner), from) {
				last = m.ID // blocked since it was stored: never delivered
				continue
			}
		}
		buf, err = AppendDelayed(buf[:0], m.Stanza, domain, m.Stored)
		if err != nil {
			// A stored stanza that is not an element cannot be delivered now or ever; dropping it keeps
			// it from blocking the ones behind it.
			o.log.Error("offline message dropped: not a stanza", "owner", owner, "id", m.ID, "index", i, "err", err)
			last = m.ID
			continue
		}
		if sendErr = res.SendRaw(buf); sendErr != nil {
			break
		}
		sent += len(buf)
		last = m.ID
	}
	if last >= 0 {
		if err := o.store.DeleteOffline(ctx, owner, last); err != nil {
			// The messages were delivered but stay stored: the client gets them again next time, the
			// lesser evil than losing them.
			return false, fmt.Errorf("delete delivered offline messages of %s: %w", owner, err)
		}
	}
	if sendErr != nil {
		return false, fmt.Errorf("deliver offline messages to %s: %w", owner, sendErr)
	}
	return more, nil
}

// parseRoot checks that stanza is one element and returns the end of its start tag's name and where
// its closing part begins: the index of "</name>" or of "/>" when it is self-closed. It reads only
// the outline of the start tag and end tag; the content was checked by the parser that produced it.
func parseRoot(stanza []byte) (nameEnd, closeAt int, err error) {
	s := stanza
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if len(s) < 4 || s[0] != '<' || s[len(s)-1] != '>' {
		return 0, 0, errors.New("not an XML element")
	}
	i := 1
	for i < len(s) && !isSpace(s[i]) && s[i] != '/' && s[i] != '>' {
		i++
	}
	name := s[1:i]
	if len(name) == 0 || bytes.ContainsAny(name, "<'\"=&") {
		return 0, 0, errors.New("no element name")
	}
	// The start tag ends at the first '>' outside quotes.
	var q byte
	end := -1
	for j := i; j < len(s); j++ {
		c := s[j]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '<':
			return 0, 0, errors.New("'<' inside the start tag")
		case c == '>':
			end = j
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		return 0, 0, errors.New("unterminated start tag")
	}
	if s[end-1] == '/' {
		if end != len(s)-1 {
			return 0, 0, errors.New("content after a self-closed element")
		}
		return i, end - 1, nil
	}
	// The end tag is "</name" with optional white space before the final '>'.
	k := len(s) - 2
	for k > end && isSpace(s[k]) {
		k--
	}
	start := k + 1 - len(name) - 2
	if start <= end || s[start] != '<' || s[start+1] != '/' || !bytes.Equal(s[start+2:k+1], name) {
		return 0, 0, fmt.Errorf("does not end with </%s>", name)
	}
	return i, start, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// AppendDelayed appends stanza to dst with a XEP-0203 <delay xmlns='urn:xmpp:delay' from=from
// stamp=…/> added as its last child; stamp is given in UTC as XEP-0082 asks.
func AppendDelayed(dst, stanza []byte, from string, stamp time.Time) ([]byte, error) {
	nameEnd, closeAt, err := parseRoot(stanza)
	if err != nil {
		return dst, err
	}
	name := stanza[1:nameEnd]
	dst = append(dst, stanza[:closeAt]...)
	selfClosed := stanza[closeAt] == '/'
	if selfClosed {
		dst = append(dst, '>')
	}
	dst = append(dst, "<delay xmlns='"+NSDelay+"' from='"...)
	dst = xml.EscapeAttr(dst, from)
	dst = append(dst, "' stamp='"...)
	dst = stamp.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, "'/>"...)
	if selfClosed {
		dst = append(dst, "</"...)
		dst = append(dst, name...)
		return append(dst, '>'), nil
	}
	return append(dst, stanza[closeAt:]...), nil
}

// senderOf returns the 'from' of a stored stanza, or nil.
func senderOf(raw []byte) []byte {
	var from []byte
	stanza.Inspect(raw, func(e *xml.Element) { from = append([]byte(nil), e.Attr("from")...) })
	return from
}
