package rostercodec

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
)

func sample() []storage.RosterItem {
	return []storage.RosterItem{
		{Contact: "benvolio@montague.lit", Groups: []string{"Montagues ♥", ""}, Subscription: storage.SubFrom, PreApproved: true},
		{Contact: "nurse@capulet.lit", Subscription: storage.SubNone, PendingIn: true,
			PendingInStanza: []byte("<presence from='nurse@capulet.lit' type='subscribe'/>")},
		{Contact: "romeo@montague.lit", Name: "Romeo", Groups: []string{"Friends", "Lovers"}, Subscription: storage.SubBoth, PendingOut: true},
		{Contact: "tybalt@capulet.lit", Name: strings.Repeat("x", 300), Subscription: storage.SubTo, PendingOut: true, PendingIn: true, PreApproved: true},
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		items []storage.RosterItem
	}{
		{"empty", nil},
		{"one", sample()[:1]},
		{"all", sample()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(nil, tt.items)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.items) {
				t.Fatalf("Decode(Encode(x)) =\n%+v\nwant\n%+v", got, tt.items)
			}
		})
	}
	if got, err := Decode(nil); err != nil || got != nil {
		t.Fatalf("Decode(nil) = %v, %v", got, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	s := sample()
	unsorted := []storage.RosterItem{s[1], s[0]}
	dup := []storage.RosterItem{s[0], s[0]}
	badSub := []storage.RosterItem{{Contact: "a@b", Subscription: "all"}}
	for name, items := range map[string][]storage.RosterItem{"unsorted": unsorted, "duplicate": dup, "subscription": badSub} {
		if _, err := Encode(nil, items); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := Encode(nil, sample()[:2])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"unknown version", []byte{2, 0}},
		{"only version", []byte{1}},
		{"count too large", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad varint", []byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"truncated", good[:len(good)-3]},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"trailing after empty", []byte{1, 0, 'x'}},
		{"string past end", []byte{1, 1, 50, 'a', 0, 0, 0, 0, 0}},
		{"subscription code", []byte{1, 1, 1, 'a', 0, 0, 4, 0, 0}},
		{"unknown flag", []byte{1, 1, 1, 'a', 0, 0, 0, 8, 0}},
		{"groups past end", []byte{1, 1, 1, 'a', 0, 100, 0, 0, 0}},
		{"unsorted", []byte{1, 2, 1, 'b', 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if items, err := Decode(tt.data); err == nil {
				t.Fatalf("Decode(% x) = %+v without error", tt.data, items)
			}
		})
	}
}

func TestPutRemoveFind(t *testing.T) {
	var items []storage.RosterItem
	for _, c := range []string{"m@x", "a@x", "z@x", "k@x"} {
		items = Put(items, storage.RosterItem{Contact: c, Subscription: storage.SubNone})
	}
	items = Put(items, storage.RosterItem{Contact: "k@x", Name: "K", Subscription: storage.SubBoth})
	var contacts []string
	for _, it := range items {
		contacts = append(contacts, it.Contact)
	}
	if want := []string{"a@x", "k@x", "m@x", "z@x"}; !reflect.DeepEqual(contacts, want) {
		t.Fatalf("contacts = %v, want %v", contacts, want)
	}
	if i, ok := Find(items, "k@x"); !ok || items[i].Name != "K" {
		t.Fatalf("Find(k@x) = %d, %v", i, ok)
	}
	items, ok := Remove(items, "m@x")
	if !ok || len(items) != 3 {
		t.Fatalf("Remove(m@x) = %v, %v", items, ok)
	}
	if _, ok := Remove(items, "m@x"); ok {
		t.Fatal("Remove of a missing contact reported true")
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(nil, sample())
	f.Add(good)
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 1, 'a', 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := Decode(data)
		if err != nil {
			return
		}
		// What decodes re-encodes, and decodes to the same items.
		b, err := Encode(nil, items)
		if err != nil {
			t.Fatalf("Encode of decoded items: %v", err)
		}
		again, err := Decode(b)
		if err != nil || !reflect.DeepEqual(again, items) {
			t.Fatalf("round trip changed %+v into %+v (%v)", items, again, err)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	var items []storage.RosterItem
	for i := range 20 {
		items = Put(items, storage.RosterItem{Contact: strings.Repeat(string(rune('a'+i)), 8) + "@example.org", Name: "Contact", Groups: []string{"Friends"}, Subscription: storage.SubBoth})
	}
	data, err := Encode(nil, items)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("items=20", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
