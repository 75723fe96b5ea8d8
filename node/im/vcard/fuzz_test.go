package vcard

import (
	"context"
	"sync"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
	"github.com/starling-xmpp/starling/node/storage"
)

// memStore is a Store in a map, for the fuzz target, which runs too many requests for a database.
type memStore struct {
	mu   sync.Mutex
	docs map[string][]byte
}

func (m *memStore) Document(_ context.Context, owner, kind, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[owner+"\x00"+kind+"\x00"+key]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return d, nil
}

func (m *memStore) PutDocument(_ context.Context, owner, kind, key string, xml []byte) error {
	if err := storage.CheckDocument(kind, key, xml); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.docs[owner+"\x00"+kind+"\x00"+key] = xml
	return nil
}

func (m *memStore) DeleteDocument(_ context.Context, owner, kind, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.docs, owner+"\x00"+kind+"\x00"+key)
	return nil
}

func (m *memStore) UserExists(_ context.Context, user string) (bool, error) {
	return user == "alice@"+domain || user == "bob@"+domain, nil
}

// FuzzVCard sets an arbitrary vCard and reads it back from another account. Each request gets exactly
// one well-formed reply, and a vCard that was accepted comes back byte for byte, or as an empty
// <vCard/> if it carried nothing.
func FuzzVCard(f *testing.F) {
	for _, s := range []string{
		"<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>",
		"<vCard xmlns=\"vcard-temp\" version='3.0'>\n <PHOTO><BINVAL>AAAA\r\n</BINVAL></PHOTO></vCard>",
		"<vCard xmlns='vcard-temp'> </vCard>",
		"<vCard xmlns='vcard-temp'><![CDATA[x]]>&amp;</vCard>",
		"<v:vCard xmlns:v='vcard-temp'><v:FN/></v:vCard>",
		"<vcard xmlns='vcard-temp'/>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, card string) {
		set, ok := routertest.ParseOne([]byte("<iq type='set' id='f1'>" + card + "</iq>"))
		if !ok {
			return
		}
		r := router.New(router.Options{Domains: []string{domain}})
		Register(r, Options{Store: &memStore{docs: map[string][]byte{}}})
		alice := routertest.Bind(t, r, "alice@"+domain+"/phone")
		bob := routertest.Bind(t, r, "bob@"+domain+"/pc")
		if err := r.Route(t.Context(), alice.Resource, set); err != nil {
			t.Fatal(err)
		}
		out := alice.Sink.Take()
		if len(out) != 1 {
			t.Fatalf("set: %d replies", len(out))
		}
		setReply := routertest.DecodeReply(t, out[0])
		got := bob.Do(t, "<iq type='get' id='f2' to='alice@example.com'><vCard xmlns='vcard-temp'/></iq>")
		if got.Type != "result" {
			t.Fatalf("get: %s", got.Raw)
		}
		if setReply.Type != "result" {
			if string(got.Inner) != get {
				t.Fatalf("a refused set left %s", got.Inner)
			}
			return
		}
		payload := set.FirstChild()
		want := string(payload.AppendTo(nil))
		if isEmpty(payload) {
			want = get
		} else if payload.SelfContained() && want != string(payload.Raw()) {
			t.Fatalf("a self-contained vCard was stored changed: %s, sent %s", want, payload.Raw())
		}
		if string(got.Inner) != want {
			t.Fatalf("read back %q, want %q", got.Inner, want)
		}
	})
}
