package router_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
)

// blocker is a router.Blocker over a fixed table: owner → blocked JIDs, matched exactly or by the
// contact's bare JID. The real matching rules are node/im/blocking's and tested there; this checks
// what the router does with the answer. Lookups convert with string(b) and allocate nothing.
type blocker map[string]map[string]bool

func (b blocker) Blocks(_ context.Context, owner, contact []byte) bool {
	l := b[string(owner)]
	if l == nil {
		return false
	}
	if l[string(contact)] {
		return true
	}
	if i := bytes.IndexByte(contact, '/'); i >= 0 {
		return l[string(contact[:i])]
	}
	return false
}

func TestBlocking(t *testing.T) {
	tests := []struct {
		name       string
		from       string // nurse, romeo (offline account, bound only when sending) or juliet
		stanza     string
		blocks     blocker
		wantSender string // error condition the sender gets; "blocked" for not-acceptable with <blocked/>
		wantJuliet bool
		wantStored bool
		wantIQ     bool // the urn:test handler ran
	}{
		{name: "nobody blocks", from: "nurse", stanza: `<message to='juliet@example.org' type='chat'><body>x</body></message>`, wantJuliet: true},
		{name: "recipient blocks sender's bare JID", from: "nurse", blocks: blocker{"juliet@example.org": {"nurse@example.org": true}},
			stanza: `<message to='juliet@example.org' type='chat'><body>x</body></message>`, wantSender: "service-unavailable"},
		{name: "recipient blocks sender's full JID, message to a full JID", from: "nurse", blocks: blocker{"juliet@example.org": {"nurse@example.org/home": true}},
			stanza: `<message to='juliet@example.org/balcony' type='chat'><body>x</body></message>`, wantSender: "service-unavailable"},
		{name: "recipient blocks someone else", from: "nurse", blocks: blocker{"juliet@example.org": {"tybalt@example.org": true}},
			stanza: `<message to='juliet@example.org' type='chat'><body>x</body></message>`, wantJuliet: true},
		{name: "sender blocks recipient", from: "nurse", blocks: blocker{"nurse@example.org": {"juliet@example.org": true}},
			stanza: `<message to='juliet@example.org/balcony' type='chat'><body>x</body></message>`, wantSender: "blocked"},
		{name: "sender blocks a non-canonical address", from: "nurse", blocks: blocker{"nurse@example.org": {"juliet@example.org": true}},
			stanza: `<message to='Juliet@EXAMPLE.org' type='chat'><body>x</body></message>`, wantSender: "blocked"},
		{name: "offline recipient blocks sender: not stored", from: "nurse", blocks: blocker{"romeo@example.org": {"nurse@example.org": true}},
			stanza: `<message to='romeo@example.org' type='chat'><body>x</body></message>`, wantSender: "service-unavailable"},
		{name: "offline recipient blocks someone else: stored", from: "nurse", blocks: blocker{"romeo@example.org": {"tybalt@example.org": true}},
			stanza: `<message to='romeo@example.org' type='chat'><body>x</body></message>`, wantStored: true},
		{name: "blocked error message gets no answer", from: "nurse", blocks: blocker{"juliet@example.org": {"nurse@example.org": true}},
			stanza: `<message to='juliet@example.org' type='error'><body>x</body></message>`},
		{name: "message to oneself is never blocked", from: "juliet", blocks: blocker{"juliet@example.org": {"juliet@example.org": true}},
			stanza: `<message to='juliet@example.org/balcony' type='chat'><body>x</body></message>`, wantJuliet: true},
		{name: "iq get to a resource of a blocker", from: "nurse", blocks: blocker{"juliet@example.org": {"nurse@example.org": true}},
			stanza: `<iq type='get' id='1' to='juliet@example.org/balcony'><q xmlns='urn:other'/></iq>`, wantSender: "service-unavailable"},
		{name: "iq result to a blocker dropped", from: "nurse", blocks: blocker{"juliet@example.org": {"nurse@example.org": true}},
			stanza: `<iq type='result' id='1' to='juliet@example.org/balcony'/>`},
		{name: "iq result to a resource passes", from: "nurse",
			stanza: `<iq type='result' id='1' to='juliet@example.org/balcony'/>`, wantJuliet: true},
		{name: "iq set to a blocked resource", from: "nurse", blocks: blocker{"nurse@example.org": {"juliet@example.org": true}},
			stanza: `<iq type='set' id='1' to='juliet@example.org/balcony'><q xmlns='urn:other'/></iq>`, wantSender: "blocked"},
		{name: "iq to a blocker's bare JID is not handled", from: "nurse", blocks: blocker{"juliet@example.org": {"nurse@example.org": true}},
			stanza: `<iq type='get' id='1' to='juliet@example.org'><q xmlns='urn:test'/></iq>`, wantSender: "service-unavailable"},
		{name: "iq to a bare JID of someone else's blocker is handled", from: "nurse", blocks: blocker{"juliet@example.org": {"tybalt@example.org": true}},
			stanza: `<iq type='get' id='1' to='juliet@example.org'><q xmlns='urn:test'/></iq>`, wantIQ: true},
		{name: "iq to the server is not blocked", from: "nurse", blocks: blocker{"nurse@example.org": {"example.org": true}},
			stanza: `<iq type='get' id='1' to='example.org'><q xmlns='urn:test'/></iq>`, wantIQ: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, off := newRouter()
			if tt.blocks != nil {
				r.HandleBlocking(tt.blocks)
			}
			ran := false
			r.HandleIQ("urn:test", router.IQHandlerFunc(func(ctx context.Context, iq *router.IQ) error {
				ran = true
				return iq.Result(nil)
			}))
			_, js := bind(t, r, "juliet@example.org/balcony", true, 0)
			sender, ss := bind(t, r, tt.from+"@example.org/home", true, 0)
			if err := r.Route(t.Context(), sender, routertest.Parse(t, tt.stanza)); err != nil {
				t.Fatal(err)
			}
			got := ss.Take()
			if tt.wantIQ {
				got = nil // the handler's result
			}
			switch {
			case tt.wantSender == "" && len(got) != 0:
				t.Errorf("sender got %q, want nothing", got)
			case tt.wantSender != "":
				if len(got) != 1 {
					t.Fatalf("sender got %q, want one error", got)
				}
				rep := routertest.DecodeReply(t, got[0])
				cond := rep.Condition()
				if tt.wantSender == "blocked" {
					if cond != "not-acceptable" || !strings.Contains(string(got[0]), "<blocked xmlns='urn:xmpp:blocking:errors'/>") {
						t.Errorf("sender got %s, want not-acceptable with <blocked/>", got[0])
					}
				} else if cond != tt.wantSender {
					t.Errorf("sender got %s, want %s", got[0], tt.wantSender)
				}
			}
			if (js.Len() > 0) != tt.wantJuliet {
				t.Errorf("juliet got %q, want delivery %v", js.Take(), tt.wantJuliet)
			}
			if (len(off.stored) > 0) != tt.wantStored {
				t.Errorf("stored %q, want %v", off.stored, tt.wantStored)
			}
			if ran != tt.wantIQ {
				t.Errorf("handler ran %v, want %v", ran, tt.wantIQ)
			}
		})
	}
}
