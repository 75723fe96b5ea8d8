package c2s

import (
	"math"
	"testing"
)

func TestAckCounting(t *testing.T) {
	tests := []struct {
		name      string
		sent      uint32 // counter before the queued stanzas
		queued    int
		h         uint32
		ok        bool
		remaining int
	}{
		{"nothing acknowledged", 0, 5, 0, true, 5},
		{"some", 0, 5, 3, true, 2},
		{"all", 0, 5, 5, true, 0},
		{"too many", 0, 5, 6, false, 5},
		{"behind what was acknowledged", 10, 5, 9, false, 5},
		{"across the 2^32 wrap", math.MaxUint32 - 1, 4, 1, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &sink{enabled: true, sent: tt.sent}
			for i := 0; i < tt.queued; i++ {
				k.sent++
				k.queue = append(k.queue, []byte("<message/>"))
			}
			if ok := k.ack(tt.h); ok != tt.ok || len(k.queue) != tt.remaining {
				t.Fatalf("ack(%d): ok %v, %d left; want %v, %d", tt.h, ok, len(k.queue), tt.ok, tt.remaining)
			}
		})
	}
}

func TestStorableMessage(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{"<message to='a@b/c' type='chat'><body>x</body></message>", true},
		{"<message to='a@b/c'><body>x</body></message>", true},
		{"<message to='a@b/c' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", false},
		{"<message to='a@b/c' type='headline'><body>x</body></message>", false},
		{"<message to='a@b/c' type='groupchat'><body>x</body></message>", false},
		{"<presence/>", false},
		{"<iq type='result' id='1'/>", false},
		{"<message", false},
	}
	for _, tt := range tests {
		if got := storableMessage([]byte(tt.raw)); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.raw, got, tt.want)
		}
	}
}
