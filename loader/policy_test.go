package loader

import (
	"math"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	tests := []struct {
		w     Window
		t     time.Time
		index uint64
		start time.Time
		end   time.Time
	}{
		{Window{time.Minute}, time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC), 29929530, time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC), time.Date(2026, 11, 27, 9, 31, 0, 0, time.UTC)},
		{Window{time.Minute}, time.Date(2026, 11, 27, 9, 30, 59, 999999999, time.UTC), 29929530, time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC), time.Date(2026, 11, 27, 9, 31, 0, 0, time.UTC)},
		// Aligned to the clock, not to the zone: 10:30 in +01:00 is 9:30 UTC.
		{Window{time.Minute}, time.Date(2026, 11, 27, 10, 30, 5, 0, time.FixedZone("CET", 3600)), 29929530, time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC), time.Date(2026, 11, 27, 9, 31, 0, 0, time.UTC)},
		{Window{2 * time.Second}, time.Unix(101, 0), 50, time.Unix(100, 0), time.Unix(102, 0)},
		{Window{2 * time.Second}, time.Unix(0, 0), 0, time.Unix(0, 0), time.Unix(2, 0)},
	}
	for _, tt := range tests {
		if got := tt.w.Index(tt.t); got != tt.index {
			t.Errorf("%v.Index(%v) = %d, want %d", tt.w.Length, tt.t, got, tt.index)
		}
		if got := tt.w.Start(tt.index); !got.Equal(tt.start) {
			t.Errorf("%v.Start(%d) = %v, want %v", tt.w.Length, tt.index, got, tt.start)
		}
		if got := tt.w.End(tt.t); !got.Equal(tt.end) {
			t.Errorf("%v.End(%v) = %v, want %v", tt.w.Length, tt.t, got, tt.end)
		}
	}
}

func TestBytePolicyValidate(t *testing.T) {
	for _, tt := range []struct {
		p  BytePolicy
		ok bool
	}{
		{BytePolicy{}, true},
		{BytePolicy{PerWindow: 1, Lifetime: 1, Action: ActionDrop}, true},
		{BytePolicy{Action: 3}, false},
		{BytePolicy{PerWindow: math.MaxUint64}, false},
		{BytePolicy{Lifetime: math.MaxUint64/2 + 1}, false},
	} {
		if err := tt.p.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v", tt.p, err)
		}
	}
}

// TestAdmit walks the userspace decisions through the same steps as the
// kernel tests in prog_test.go.
func TestAdmit(t *testing.T) {
	type step struct {
		win     uint64
		n       uint64
		pass    uint64
		hit     *limitHit
		room    uint64 // headroom after the step
		dropped uint64
	}
	inf := uint64(math.MaxUint64)
	tests := []struct {
		name  string
		p     BytePolicy
		steps []step
	}{
		{"unlimited", BytePolicy{}, []step{
			{1, 1 << 40, 1 << 40, nil, inf, 0},
		}},
		{"disc cuts at the limit and fences for good", BytePolicy{PerWindow: 1000, Action: ActionDisc}, []step{
			{1, 1000, 1000, nil, inf, 0},
			{1, 10, 0, &limitHit{ActionDisc, ScopeWindow, true}, 0, 10},
			{1, 5, 0, nil, 0, 15},
			{2, 5, 0, nil, 0, 20},
		}},
		{"disc passes what fits", BytePolicy{Lifetime: 100, Action: ActionDisc}, []step{
			{1, 60, 60, nil, inf, 0},
			{2, 60, 40, &limitHit{ActionDisc, ScopeLifetime, true}, 0, 20},
		}},
		{"drop: one event per window, ceiling per window", BytePolicy{PerWindow: 1000, Action: ActionDrop}, []step{
			{1, 900, 900, nil, 600, 0},
			{1, 200, 200, &limitHit{ActionDrop, ScopeWindow, false}, 400, 0},
			{1, 300, 300, nil, 100, 0},
			{1, 300, 100, nil, 0, 200},
			{1, 1, 0, nil, 0, 201},
			{2, 1100, 1100, &limitHit{ActionDrop, ScopeWindow, false}, 400, 201},
		}},
		{"drop over the lifetime ceiling fences for good", BytePolicy{Lifetime: 100, Action: ActionDrop}, []step{
			{1, 120, 120, &limitHit{ActionDrop, ScopeLifetime, false}, 30, 0},
			{2, 100, 30, &limitHit{ActionDrop, ScopeLifetime, true}, 0, 70},
			{3, 1, 0, nil, 0, 71},
		}},
		{"none only counts", BytePolicy{PerWindow: 10, Action: ActionNone}, []step{
			{1, 100, 100, nil, inf, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d dirCounter
			var total uint64
			for i, s := range tt.steps {
				pass, hit := d.admit(tt.p, s.win, s.n)
				total += pass
				if pass != s.pass || (hit == nil) != (s.hit == nil) || (hit != nil && *hit != *s.hit) {
					t.Fatalf("step %d: admit(%d) = %d, %+v; want %d, %+v", i, s.n, pass, hit, s.pass, s.hit)
				}
				if room := d.headroom(tt.p, s.win); room != s.room {
					t.Fatalf("step %d: headroom %d, want %d", i, room, s.room)
				}
				if d.dropped != s.dropped || d.totalBytes != total {
					t.Fatalf("step %d: dropped %d total %d, want %d and %d", i, d.dropped, d.totalBytes, s.dropped, total)
				}
			}
		})
	}
}
