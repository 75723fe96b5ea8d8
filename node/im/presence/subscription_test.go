package presence

import (
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
)

// The nine states of RFC 6121 Appendix A.1.
var states = map[string]storage.RosterItem{
	"None":                  {Subscription: storage.SubNone},
	"None + Pending Out":    {Subscription: storage.SubNone, PendingOut: true},
	"None + Pending In":     {Subscription: storage.SubNone, PendingIn: true},
	"None + Pending Out/In": {Subscription: storage.SubNone, PendingOut: true, PendingIn: true},
	"To":                    {Subscription: storage.SubTo},
	"To + Pending In":       {Subscription: storage.SubTo, PendingIn: true},
	"From":                  {Subscription: storage.SubFrom},
	"From + Pending Out":    {Subscription: storage.SubFrom, PendingOut: true},
	"Both":                  {Subscription: storage.SubBoth},
}

func stateName(t *testing.T, it storage.RosterItem) string {
	t.Helper()
	for name, s := range states {
		if s.Subscription == it.Subscription && s.PendingOut == it.PendingOut && s.PendingIn == it.PendingIn {
			return name
		}
	}
	t.Fatalf("item %+v is in no state of Appendix A.1", it)
	return ""
}

// A "" next state means "no state change".
type row struct {
	before string
	yes    bool // route (outbound) or deliver (inbound)
	after  string
}

// outboundTables are the tables of RFC 6121 Appendix A.2: the 'yes' column is "route?".
var outboundTables = map[Type][]row{
	Subscribe: { // A.2.1
		{"None", true, "None + Pending Out"},
		{"None + Pending Out", true, ""},
		{"None + Pending In", true, "None + Pending Out/In"},
		{"None + Pending Out/In", true, ""},
		{"To", true, ""},
		{"To + Pending In", true, ""},
		{"From", true, "From + Pending Out"},
		{"From + Pending Out", true, ""},
		{"Both", true, ""},
	},
	Unsubscribe: { // A.2.2
		{"None", true, ""},
		{"None + Pending Out", true, "None"},
		{"None + Pending In", true, ""},
		{"None + Pending Out/In", true, "None + Pending In"},
		{"To", true, "None"},
		{"To + Pending In", true, "None + Pending In"},
		{"From", true, ""},
		{"From + Pending Out", true, "From"},
		{"Both", true, "From"},
	},
	Subscribed: { // A.2.3
		{"None", false, ""},
		{"None + Pending Out", false, ""},
		{"None + Pending In", true, "From"},
		{"None + Pending Out/In", true, "From + Pending Out"},
		{"To", false, ""},
		{"To + Pending In", true, "Both"},
		{"From", false, ""},
		{"From + Pending Out", false, ""},
		{"Both", false, ""},
	},
	Unsubscribed: { // A.2.4
		{"None", false, ""},
		{"None + Pending Out", false, ""},
		{"None + Pending In", true, "None"},
		{"None + Pending Out/In", true, "None + Pending Out"},
		{"To", false, ""},
		{"To + Pending In", true, "To"},
		{"From", true, "None"},
		{"From + Pending Out", true, "None + Pending Out"},
		{"Both", true, "To"},
	},
}

// TestOutboundTables checks every row of RFC 6121 Appendix A.2.
func TestOutboundTables(t *testing.T) {
	for typ, rows := range outboundTables {
		for _, r := range rows {
			t.Run(typ.String()+"/"+r.before, func(t *testing.T) {
				before := states[r.before]
				if before.PendingIn {
					before.PendingInStanza = []byte("<presence type='subscribe'/>")
				}
				next, route := Outbound(before, typ)
				want := r.after
				if want == "" {
					want = r.before
				}
				if got := stateName(t, next); got != want || route != r.yes {
					t.Errorf("%s in %q: got %q route=%v, want %q route=%v", typ, r.before, got, route, want, r.yes)
				}
				if !next.PendingIn && next.PendingInStanza != nil {
					t.Errorf("the stored request outlived the pending-in state")
				}
				// Only subscribed in the states without a request and without 'from' pre-approves (§3.4).
				wantPre := typ == Subscribed && !before.PendingIn && !hasFrom(before.Subscription)
				if next.PreApproved != wantPre {
					t.Errorf("pre-approved = %v, want %v", next.PreApproved, wantPre)
				}
			})
		}
	}
}

// irow is a row of an inbound table; auto marks the '*' rows, where the server answers subscribed.
type irow struct {
	row
	auto bool
}

// inboundTables are the tables of RFC 6121 Appendix A.3: the 'yes' column is "deliver?".
var inboundTables = map[Type][]irow{
	Subscribe: { // A.3.1
		{row{"None", true, "None + Pending In"}, false},
		{row{"None + Pending Out", true, "None + Pending Out/In"}, false},
		{row{"None + Pending In", false, ""}, false},
		{row{"None + Pending Out/In", false, ""}, false},
		{row{"To", true, "To + Pending In"}, false},
		{row{"To + Pending In", false, ""}, false},
		{row{"From", false, ""}, true},
		{row{"From + Pending Out", false, ""}, true},
		{row{"Both", false, ""}, true},
	},
	Unsubscribe: { // A.3.2
		{row{"None", false, ""}, false},
		{row{"None + Pending Out", false, ""}, false},
		{row{"None + Pending In", true, "None"}, false},
		{row{"None + Pending Out/In", true, "None + Pending Out"}, false},
		{row{"To", false, ""}, false},
		{row{"To + Pending In", true, "To"}, false},
		{row{"From", true, "None"}, false},
		{row{"From + Pending Out", true, "None + Pending Out"}, false},
		{row{"Both", true, "To"}, false},
	},
	Subscribed: { // A.3.3
		{row{"None", false, ""}, false},
		{row{"None + Pending Out", true, "To"}, false},
		{row{"None + Pending In", false, ""}, false},
		{row{"None + Pending Out/In", true, "To + Pending In"}, false},
		{row{"To", false, ""}, false},
		{row{"To + Pending In", false, ""}, false},
		{row{"From", false, ""}, false},
		{row{"From + Pending Out", true, "Both"}, false},
		{row{"Both", false, ""}, false},
	},
	Unsubscribed: { // A.3.4
		{row{"None", false, ""}, false},
		{row{"None + Pending Out", true, "None"}, false},
		{row{"None + Pending In", false, ""}, false},
		{row{"None + Pending Out/In", true, "None + Pending In"}, false},
		{row{"To", true, "None"}, false},
		{row{"To + Pending In", true, "None + Pending In"}, false},
		{row{"From", false, ""}, false},
		{row{"From + Pending Out", true, "From"}, false},
		{row{"Both", true, "From"}, false},
	},
}

// TestInboundTables checks every row of RFC 6121 Appendix A.3, with the auto-replies of the '*' rows.
func TestInboundTables(t *testing.T) {
	for typ, rows := range inboundTables {
		for _, r := range rows {
			t.Run(typ.String()+"/"+r.before, func(t *testing.T) {
				next, res := Inbound(states[r.before], typ)
				want := r.after
				if want == "" {
					want = r.before
				}
				if got := stateName(t, next); got != want || res.Deliver != r.yes || res.AutoSubscribed != r.auto {
					t.Errorf("%s in %q: got %q %+v, want %q deliver=%v auto=%v", typ, r.before, got, res, want, r.yes, r.auto)
				}
			})
		}
	}
}

// TestPreApproval checks §3.4: a pre-approved request is answered by the server and changes the
// state as an approval would; unsubscribed withdraws the pre-approval.
func TestPreApproval(t *testing.T) {
	tests := []struct {
		before string
		after  string
	}{
		{"None", "From"},
		{"None + Pending Out", "From + Pending Out"},
		{"To", "Both"},
	}
	for _, tc := range tests {
		t.Run(tc.before, func(t *testing.T) {
			it, route := Outbound(states[tc.before], Subscribed)
			if route || !it.PreApproved {
				t.Fatalf("subscribed in %q: route=%v pre-approved=%v, want a pre-approval that is not routed", tc.before, route, it.PreApproved)
			}
			withdrawn, route := Outbound(it, Unsubscribed)
			if route || withdrawn.PreApproved || stateName(t, withdrawn) != tc.before {
				t.Errorf("unsubscribed after pre-approval: route=%v %+v", route, withdrawn)
			}
			next, res := Inbound(it, Subscribe)
			if got := stateName(t, next); got != tc.after || res.Deliver || !res.AutoSubscribed || next.PreApproved {
				t.Errorf("pre-approved subscribe: %q %+v pre-approved=%v, want %q answered by the server", got, res, next.PreApproved, tc.after)
			}
		})
	}
}

func TestParseType(t *testing.T) {
	for _, typ := range []Type{Subscribe, Subscribed, Unsubscribe, Unsubscribed} {
		if got, ok := ParseType(typ.String()); !ok || got != typ {
			t.Errorf("ParseType(%q) = %v, %v", typ.String(), got, ok)
		}
	}
	for _, s := range []string{"", "probe", "Subscribe", "available"} {
		if _, ok := ParseType(s); ok {
			t.Errorf("ParseType(%q) accepted", s)
		}
	}
}
