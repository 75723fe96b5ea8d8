// Package rostercodec encodes a whole roster as one compact binary value, so
// that a backend stores a user's roster in one row and a login reads it with
// one lookup: reading twenty items as twenty rows of nine columns cost
// several times more than one blob (see the storage benchmarks).
//
// Format (version 1), all lengths and counts as unsigned varints:
//
//	0x01 count item*
//	item = contact name ngroups group* subscription flags stanza
//	contact, name, group, stanza = length bytes
//	subscription = 0 none | 1 to | 2 from | 3 both
//	flags = bit 0 PendingOut | bit 1 PendingIn | bit 2 PreApproved
//
// Items are kept sorted by contact with no duplicates, which Decode checks,
// so a lookup is a binary search. Decode treats its input as untrusted: a
// corrupt value yields an error, never a panic or an outsized allocation.
package rostercodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/starling-xmpp/starling/node/storage"
)

const version1 = 1

var subscriptions = [...]string{storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth}

const (
	flagPendingOut = 1 << iota
	flagPendingIn
	flagPreApproved
	flagsKnown = flagPendingOut | flagPendingIn | flagPreApproved
)

// Encode appends the encoding of items to dst. items must be sorted by
// contact without duplicates (Put keeps them so) and valid per
// storage.CheckRosterItem.
func Encode(dst []byte, items []storage.RosterItem) ([]byte, error) {
	dst = append(dst, version1)
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for i, it := range items {
		if i > 0 && items[i-1].Contact >= it.Contact {
			return nil, fmt.Errorf("encode roster: items not sorted by contact at %q", it.Contact)
		}
		sub := slices.Index(subscriptions[:], it.Subscription)
		if sub < 0 {
			return nil, fmt.Errorf("encode roster: item %q has subscription %q", it.Contact, it.Subscription)
		}
		dst = appendString(dst, it.Contact)
		dst = appendString(dst, it.Name)
		dst = binary.AppendUvarint(dst, uint64(len(it.Groups)))
		for _, g := range it.Groups {
			dst = appendString(dst, g)
		}
		var flags byte
		if it.PendingOut {
			flags |= flagPendingOut
		}
		if it.PendingIn {
			flags |= flagPendingIn
		}
		if it.PreApproved {
			flags |= flagPreApproved
		}
		dst = append(dst, byte(sub), flags)
		dst = binary.AppendUvarint(dst, uint64(len(it.PendingInStanza)))
		dst = append(dst, it.PendingInStanza...)
	}
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decode decodes a roster. Empty or nil data is an empty roster. The strings
// of all items share one allocation, and stanzas alias data, which the
// caller must not modify afterwards.
func Decode(data []byte) ([]storage.RosterItem, error) {
	if len(data) == 0 {
		return nil, nil
	}
	d := decoder{buf: data, str: string(data)}
	if v := d.byte(); v != version1 {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("decode roster: unknown format version %d", v)
	}
	n := d.uvarint()
	// Each item takes at least 6 bytes: bound the allocation by the input.
	if d.err == nil && n > uint64(len(data)-d.off)/6 {
		return nil, fmt.Errorf("decode roster: %d items cannot fit in %d bytes", n, len(data))
	}
	if d.err != nil {
		return nil, d.err
	}
	items := make([]storage.RosterItem, n)
	// Every item's groups are carved from one shared backing array, which
	// grows by appending: a slice handed out earlier keeps pointing at the
	// old array and stays valid. Twenty items then cost a few allocations
	// for their groups instead of twenty.
	var groups []string
	for i := range items {
		it := &items[i]
		it.Contact = d.string()
		it.Name = d.string()
		if ng := d.uvarint(); ng > 0 && d.err == nil {
			if ng > uint64(len(data)-d.off) {
				return nil, fmt.Errorf("decode roster: item %q claims %d groups", it.Contact, ng)
			}
			start := len(groups)
			for range ng {
				groups = append(groups, d.string())
			}
			it.Groups = groups[start:len(groups):len(groups)]
		}
		sub, flags := d.byte(), d.byte()
		if stanza := d.bytes(); len(stanza) > 0 {
			it.PendingInStanza = stanza
		}
		if d.err != nil {
			return nil, d.err
		}
		if int(sub) >= len(subscriptions) {
			return nil, fmt.Errorf("decode roster: item %q has subscription code %d", it.Contact, sub)
		}
		if flags&^flagsKnown != 0 {
			return nil, fmt.Errorf("decode roster: item %q has unknown flags %#x", it.Contact, flags)
		}
		it.Subscription = subscriptions[sub]
		it.PendingOut = flags&flagPendingOut != 0
		it.PendingIn = flags&flagPendingIn != 0
		it.PreApproved = flags&flagPreApproved != 0
		if i > 0 && items[i-1].Contact >= it.Contact {
			return nil, fmt.Errorf("decode roster: items not sorted by contact at %q", it.Contact)
		}
	}
	if d.off != len(data) {
		return nil, fmt.Errorf("decode roster: %d bytes after the last item", len(data)-d.off)
	}
	if len(items) == 0 {
		return nil, nil
	}
	return items, nil
}

// decoder reads from buf; str is buf as one string, so that decoded strings
// are substrings of it instead of an allocation each. The first error
// sticks and later reads return zero values.
type decoder struct {
	buf []byte
	str string
	off int
	err error
}

var errShort = errors.New("decode roster: value ends early")

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.buf) {
		d.err = cmpErr(d.err, errShort)
		return 0
	}
	b := d.buf[d.off]
	d.off++
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.err = errors.New("decode roster: bad length")
		return 0
	}
	d.off += n
	return v
}

// span returns the bounds of the next length-prefixed field.
func (d *decoder) span() (int, int) {
	n := d.uvarint()
	if d.err != nil {
		return 0, 0
	}
	if n > uint64(len(d.buf)-d.off) {
		d.err = errShort
		return 0, 0
	}
	start := d.off
	d.off += int(n)
	return start, d.off
}

func (d *decoder) string() string {
	start, end := d.span()
	return d.str[start:end]
}

func (d *decoder) bytes() []byte {
	start, end := d.span()
	return d.buf[start:end:end]
}

func cmpErr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// Find returns the index of contact in items sorted by contact, and whether
// it is there; if not, the index is where it would be inserted.
func Find(items []storage.RosterItem, contact string) (int, bool) {
	i := sort.Search(len(items), func(i int) bool { return items[i].Contact >= contact })
	return i, i < len(items) && items[i].Contact == contact
}

// Put returns items with it inserted in order, or replacing the item with
// the same contact.
func Put(items []storage.RosterItem, it storage.RosterItem) []storage.RosterItem {
	i, ok := Find(items, it.Contact)
	if ok {
		items[i] = it
		return items
	}
	return slices.Insert(items, i, it)
}

// Remove returns items without contact, and whether it was there.
func Remove(items []storage.RosterItem, contact string) ([]storage.RosterItem, bool) {
	i, ok := Find(items, contact)
	if !ok {
		return items, false
	}
	return slices.Delete(items, i, i+1), true
}
