// Package disco answers Service Discovery (XEP-0030) for the server and, on their behalf, for its
// accounts.
//
// The server's disco#info lists the identity server/im and, as features, every namespace the router
// has an IQ handler for plus those other modules declare (AddFeatures): a feature appears exactly when
// its module is wired in. disco#items of the server, and named nodes such as the ad-hoc commands node,
// are contributed by other modules (AddItems, HandleNode); each request carries whether the requester
// is an admin, so a module can show some items to admins only.
//
// A disco#info to an account's bare JID is answered by the server with the identity account/registered,
// but only to the account's owner and to contacts the account shares presence with (subscription
// 'from' or 'both' in the account's roster); anyone else gets service-unavailable, exactly as for an
// account that does not exist, so that disco cannot be used to probe for accounts (XEP-0030 §3.1 and
// its security considerations).
//
// Roster versioning (urn:xmpp:features:rosterver) is a stream feature the client listener announces,
// not a disco feature, and is deliberately absent here.
//
// Try it: <iq type='get' to='example.com' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>.
package disco

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// The XEP-0030 namespaces.
const (
	NSInfo  = "http://jabber.org/protocol/disco#info"
	NSItems = "http://jabber.org/protocol/disco#items"
)

// FeatureMsgOffline is the disco feature of offline message storage (XEP-0160 §5): declare it with
// AddFeatures when offline storage is on.
const FeatureMsgOffline = "msgoffline"

// Identity is a disco identity (XEP-0030 §3.1; categories and types from the XMPP registrar).
type Identity struct {
	Category, Type, Name string
}

// Item is a disco item: an entity, or a node of one (XEP-0030 §4.1).
type Item struct {
	JID, Node, Name string
}

// Info is what a disco#info result holds.
type Info struct {
	Identities []Identity
	Features   []string
}

// Request says who asks about what, for the modules that contribute answers.
type Request struct {
	From  jid.JID // the requester's full JID
	To    jid.JID // the entity asked: a served domain, or an account's bare JID
	Node  string  // the 'node' attribute, "" for none
	Admin bool    // the requester is one of the configured admins
}

// Node answers disco requests for one named node of the server. Returning a *stanza.Error sends
// it; a node that the requester may not see should answer item-not-found, as for a node that does
// not exist.
type Node interface {
	DiscoInfo(ctx context.Context, req *Request) (Info, error)
	DiscoItems(ctx context.Context, req *Request) ([]Item, error)
}

// ItemSource contributes items to the server's own disco#items (no node).
type ItemSource interface {
	DiscoItems(ctx context.Context, req *Request) ([]Item, error)
}

// ItemSourceFunc adapts a function to ItemSource.
type ItemSourceFunc func(ctx context.Context, req *Request) ([]Item, error)

// DiscoItems calls f.
func (f ItemSourceFunc) DiscoItems(ctx context.Context, req *Request) ([]Item, error) {
	return f(ctx, req)
}

// Roster is the part of the roster storage disco needs to decide who may discover an account.
type Roster interface {
	// RosterItem returns owner's item for contact, or an error wrapping storage.ErrNotFound.
	RosterItem(ctx context.Context, owner, contact string) (storage.RosterItem, error)
}

// Namespaces lists the namespaces of the IQ handlers; *router.Router implements it.
type Namespaces interface {
	IQNamespaces() []string
}

// Options configure a Service.
type Options struct {
	// Name is the server identity's name; "" means "Starling".
	Name string
	// Admins are the bare JIDs with admin rights (the config's admins).
	Admins []jid.JID
	// Roster decides whether a contact may discover an account; nil answers only the owner.
	Roster Roster
}

// Service answers disco#info and disco#items.
type Service struct {
	name   string
	admins map[string]struct{}
	roster Roster

	mu          sync.RWMutex
	ns          Namespaces
	features    []string
	accFeatures []string
	identities  []Identity
	items       []ItemSource
	nodes       map[string]Node
	// info is the server's disco#info payload, built at the first request. The router takes its
	// handlers before the node accepts sessions, so the namespaces cannot change after that;
	// AddFeatures and AddIdentity drop it.
	info []byte
}

// New returns a Service; wire it with Register.
func New(opts Options) *Service {
	s := &Service{name: opts.Name, roster: opts.Roster, admins: make(map[string]struct{}), nodes: make(map[string]Node)}
	if s.name == "" {
		s.name = "Starling"
	}
	for _, a := range opts.Admins {
		s.admins[a.Bare().String()] = struct{}{}
	}
	return s
}

// Register makes r send disco requests to s, and makes s advertise r's IQ namespaces.
func (s *Service) Register(r *router.Router) {
	s.mu.Lock()
	s.ns = r
	s.info = nil
	s.mu.Unlock()
	r.HandleIQ(NSInfo, s)
	r.HandleIQ(NSItems, s)
}

// AddFeatures declares server features that are not IQ namespaces (e.g. msgoffline for XEP-0160).
func (s *Service) AddFeatures(vars ...string) {
	s.mu.Lock()
	s.features = append(s.features, vars...)
	s.info = nil
	s.mu.Unlock()
}

// AddAccountFeatures declares features the server offers on behalf of every account.
func (s *Service) AddAccountFeatures(vars ...string) {
	s.mu.Lock()
	s.accFeatures = append(s.accFeatures, vars...)
	s.mu.Unlock()
}

// AddIdentity adds an identity of the server besides server/im.
func (s *Service) AddIdentity(id Identity) {
	s.mu.Lock()
	s.identities = append(s.identities, id)
	s.info = nil
	s.mu.Unlock()
}

// AddItems adds a contributor to the server's disco#items.
func (s *Service) AddItems(src ItemSource) {
	s.mu.Lock()
	s.items = append(s.items, src)
	s.mu.Unlock()
}

// HandleNode makes n answer for the server's node name. A later call for the same name replaces it.
func (s *Service) HandleNode(name string, n Node) {
	s.mu.Lock()
	s.nodes[name] = n
	s.mu.Unlock()
}

// IsAdmin reports whether bare is one of the configured admins.
func (s *Service) IsAdmin(bare string) bool {
	_, ok := s.admins[bare]
	return ok
}

// ServerInfo is the server's own disco#info: its identities and sorted, distinct features.
func (s *Service) ServerInfo() Info {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := append([]Identity{{Category: "server", Type: "im", Name: s.name}}, s.identities...)
	f := []string{NSInfo, NSItems}
	if s.ns != nil {
		f = append(f, s.ns.IQNamespaces()...)
	}
	f = append(f, s.features...)
	return Info{Identities: ids, Features: distinct(f)}
}

// accountInfo is what the server tells about an account on its behalf.
func (s *Service) accountInfo() Info {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Info{
		Identities: []Identity{{Category: "account", Type: "registered"}},
		Features:   distinct(append([]string{NSInfo, NSItems}, s.accFeatures...)),
	}
}

func distinct(f []string) []string {
	slices.Sort(f)
	return slices.Compact(f)
}

// HandleIQ implements router.IQHandler for both disco namespaces.
func (s *Service) HandleIQ(ctx context.Context, q *router.IQ) error {
	info := q.Payload.Is(NSInfo, "query")
	if !info && !q.Payload.Is(NSItems, "query") {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if q.Type != "get" {
		// XEP-0030 defines only queries; publishing items was removed from it.
		return stanza.New(stanza.FeatureNotImplemented, "service discovery is read with iq get")
	}
	req := &Request{From: q.From.JID(), To: q.To, Node: string(q.Payload.Attr("node")), Admin: s.IsAdmin(q.From.Bare())}
	if req.To.IsZero() {
		req.To = q.From.JID().Bare()
	}
	if !q.ToServer() {
		return s.account(ctx, q, req, info)
	}
	if req.Node == "" {
		if info {
			return q.Result(s.serverInfoPayload())
		}
		items, err := s.serverItems(ctx, req)
		if err != nil {
			return err
		}
		return q.Result(appendItems(nil, "", items))
	}
	s.mu.RLock()
	n := s.nodes[req.Node]
	s.mu.RUnlock()
	if n == nil {
		return stanza.New(stanza.ItemNotFound, "no such node")
	}
	if info {
		in, err := n.DiscoInfo(ctx, req)
		if err != nil {
			return err
		}
		return q.Result(appendInfo(nil, req.Node, in))
	}
	items, err := n.DiscoItems(ctx, req)
	if err != nil {
		return err
	}
	return q.Result(appendItems(nil, req.Node, items))
}

// serverInfoPayload returns the cached disco#info payload of the server, building it if needed.
func (s *Service) serverInfoPayload() []byte {
	s.mu.RLock()
	p := s.info
	s.mu.RUnlock()
	if p != nil {
		return p
	}
	p = appendInfo(nil, "", s.ServerInfo())
	s.mu.Lock()
	s.info = p
	s.mu.Unlock()
	return p
}

func (s *Service) serverItems(ctx context.Context, req *Request) ([]Item, error) {
	s.mu.RLock()
	srcs := slices.Clone(s.items)
	s.mu.RUnlock()
	var out []Item
	for _, src := range srcs {
		items, err := src.DiscoItems(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("disco items of %s: %w", req.To, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// account answers on behalf of the account req.To.
func (s *Service) account(ctx context.Context, q *router.IQ, req *Request, info bool) error {
	ok, err := s.mayDiscover(ctx, q, req.To.String())
	if err != nil {
		return err
	}
	if !ok {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if req.Node != "" {
		return stanza.New(stanza.ItemNotFound, "no such node")
	}
	if info {
		return q.Result(appendInfo(nil, "", s.accountInfo()))
	}
	return q.Result(appendItems(nil, "", nil))
}

// mayDiscover reports whether the requester may learn about the account: it is the account, or a
// contact that receives the account's presence.
func (s *Service) mayDiscover(ctx context.Context, q *router.IQ, account string) (bool, error) {
	if q.ToOwnAccount() {
		return true, nil
	}
	if s.roster == nil {
		return false, nil
	}
	it, err := s.roster.RosterItem(ctx, account, q.From.Bare())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("disco of %s: roster lookup: %w", account, err)
	}
	return it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth, nil
}

// appendInfo appends a disco#info <query/>.
func appendInfo(dst []byte, node string, in Info) []byte {
	b := xml.NewBuilder(dst)
	startQuery(b, NSInfo, node)
	for _, id := range in.Identities {
		attrs := []string{"category", id.Category, "type", id.Type}
		if id.Name != "" {
			attrs = append(attrs, "name", id.Name)
		}
		b.Start("identity", attrs...)
		b.End()
	}
	for _, f := range in.Features {
		b.Start("feature", "var", f)
		b.End()
	}
	b.End()
	return b.Bytes()
}

// appendItems appends a disco#items <query/>.
func appendItems(dst []byte, node string, items []Item) []byte {
	b := xml.NewBuilder(dst)
	startQuery(b, NSItems, node)
	for _, it := range items {
		attrs := []string{"jid", it.JID}
		if it.Node != "" {
			attrs = append(attrs, "node", it.Node)
		}
		if it.Name != "" {
			attrs = append(attrs, "name", it.Name)
		}
		b.Start("item", attrs...)
		b.End()
	}
	b.End()
	return b.Bytes()
}

func startQuery(b *xml.Builder, ns, node string) {
	if node != "" {
		b.Start("query", "xmlns", ns, "node", node)
	} else {
		b.Start("query", "xmlns", ns)
	}
}
