package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
)

// testDocuments walks one owner's documents through put, replace, read and
// delete, beside another owner's, and checks that bytes come back exactly.
func testDocuments(t *testing.T, s storage.Store) {
	const a, b = "juliet@capulet.lit", "romeo@montague.lit"
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	bookmarks := "{storage:bookmarks}storage"
	// Bytes that a re-serialising store would change: quote style, spacing,
	// a CDATA section, a character reference, non-ASCII text.
	v1 := []byte("<vCard xmlns=\"vcard-temp\" >\n  <FN>Juliet &#x43;apulet ♥</FN><DESC><![CDATA[<b>]]></DESC></vCard>")
	v2 := []byte("<vCard xmlns='vcard-temp'><NICKNAME>jc</NICKNAME></vCard>")
	bm := []byte("<storage xmlns='storage:bookmarks'><conference jid='council@chat.example.org' autojoin='true'/></storage>")
	steps := []struct {
		name       string
		op         func() error
		owner      string
		kind, key  string
		want       []byte // nil: want ErrNotFound
		wantPutErr error
	}{
		{"nothing yet", nil, a, storage.KindVCard, "", nil, nil},
		{"put vcard", func() error { return s.PutDocument(ctx(t), a, storage.KindVCard, "", v1) }, a, storage.KindVCard, "", v1, nil},
		{"other owner untouched", nil, b, storage.KindVCard, "", nil, nil},
		{"other kind untouched", nil, a, storage.KindPrivate, "", nil, nil},
		{"replace vcard", func() error { return s.PutDocument(ctx(t), a, storage.KindVCard, "", v2) }, a, storage.KindVCard, "", v2, nil},
		{"put private", func() error { return s.PutDocument(ctx(t), a, storage.KindPrivate, bookmarks, bm) }, a, storage.KindPrivate, bookmarks, bm, nil},
		{"key is exact", nil, a, storage.KindPrivate, "{storage:bookmarks}Storage", nil, nil},
		{"vcard kept", nil, a, storage.KindVCard, "", v2, nil},
		{"put for other owner", func() error { return s.PutDocument(ctx(t), b, storage.KindVCard, "", v1) }, b, storage.KindVCard, "", v1, nil},
		{"delete vcard", func() error { return s.DeleteDocument(ctx(t), a, storage.KindVCard, "") }, a, storage.KindVCard, "", nil, nil},
		{"delete again", func() error { return s.DeleteDocument(ctx(t), a, storage.KindVCard, "") }, a, storage.KindVCard, "", nil, nil},
		{"other owner's vcard kept", nil, b, storage.KindVCard, "", v1, nil},
		{"private kept", nil, a, storage.KindPrivate, bookmarks, bm, nil},
		{"unknown owner put", func() error { return s.PutDocument(ctx(t), "ghost@example.org", storage.KindVCard, "", v1) }, "ghost@example.org", storage.KindVCard, "", nil, storage.ErrNotFound},
		{"delete for unknown owner", func() error { return s.DeleteDocument(ctx(t), "ghost@example.org", storage.KindVCard, "") }, "ghost@example.org", storage.KindVCard, "", nil, nil},
	}
	for _, st := range steps {
		if st.op != nil {
			err := st.op()
			if st.wantPutErr != nil {
				wantErr(t, st.name, err, st.wantPutErr)
			} else if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		got, err := s.Document(ctx(t), st.owner, st.kind, st.key)
		if st.want == nil {
			wantErr(t, st.name+": Document", err, storage.ErrNotFound)
			continue
		}
		if err != nil || !bytes.Equal(got, st.want) {
			t.Fatalf("%s: Document = %q, %v; want %q", st.name, got, err, st.want)
		}
	}
}

// testDocumentLimits checks the size bound, the per-kind quota and argument
// validation, and that a refused write leaves the stored document alone.
func testDocumentLimits(t *testing.T, s storage.Store) {
	const a = "juliet@capulet.lit"
	mustCreate(t, s, a)
	doc := func(n int) []byte {
		return []byte("<x xmlns='urn:example'>" + strings.Repeat("a", n-len("<x xmlns='urn:example'></x>")) + "</x>")
	}
	if err := s.PutDocument(ctx(t), a, storage.KindVCard, "", doc(storage.MaxDocumentBytes)); err != nil {
		t.Fatalf("PutDocument of exactly MaxDocumentBytes: %v", err)
	}
	wantErr(t, "PutDocument one byte over", s.PutDocument(ctx(t), a, storage.KindVCard, "", doc(storage.MaxDocumentBytes+1)), storage.ErrTooLarge)
	if got, err := s.Document(ctx(t), a, storage.KindVCard, ""); err != nil || len(got) != storage.MaxDocumentBytes {
		t.Fatalf("Document after refused put = %d bytes, %v; want the %d stored before", len(got), err, storage.MaxDocumentBytes)
	}

	invalid := []struct {
		name, kind, key string
		xml             []byte
	}{
		{"empty document", storage.KindPrivate, "{a}b", nil},
		{"empty kind", "", "{a}b", []byte("<b xmlns='a'/>")},
		{"upper-case kind", "Private", "{a}b", []byte("<b xmlns='a'/>")},
		{"long kind", strings.Repeat("k", 33), "{a}b", []byte("<b xmlns='a'/>")},
		{"key with NUL", storage.KindPrivate, "{a}\x00b", []byte("<b xmlns='a'/>")},
		{"key not UTF-8", storage.KindPrivate, "{a}\xffb", []byte("<b xmlns='a'/>")},
		{"long key", storage.KindPrivate, "{" + strings.Repeat("n", storage.MaxDocumentKeyBytes) + "}b", []byte("<b xmlns='a'/>")},
	}
	for _, tt := range invalid {
		wantErr(t, tt.name, s.PutDocument(ctx(t), a, tt.kind, tt.key, tt.xml), storage.ErrInvalid)
	}

	key := func(i int) string { return fmt.Sprintf("{urn:example:%d}x", i) }
	for i := range storage.MaxDocumentsPerKind {
		if err := s.PutDocument(ctx(t), a, storage.KindPrivate, key(i), []byte("<x/>")); err != nil {
			t.Fatalf("PutDocument %d of %d: %v", i+1, storage.MaxDocumentsPerKind, err)
		}
	}
	wantErr(t, "PutDocument over the quota", s.PutDocument(ctx(t), a, storage.KindPrivate, key(storage.MaxDocumentsPerKind), []byte("<x/>")), storage.ErrQuotaExceeded)
	// Replacing a document the owner has adds none: a full store stays writable.
	if err := s.PutDocument(ctx(t), a, storage.KindPrivate, key(0), []byte("<x>new</x>")); err != nil {
		t.Fatalf("replace in a full store: %v", err)
	}
	// The quota counts per kind: the vCard is still writable.
	if err := s.PutDocument(ctx(t), a, storage.KindVCard, "", []byte("<vCard xmlns='vcard-temp'/>")); err != nil {
		t.Fatalf("vCard beside a full private store: %v", err)
	}
	// Deleting makes room again.
	if err := s.DeleteDocument(ctx(t), a, storage.KindPrivate, key(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDocument(ctx(t), a, storage.KindPrivate, key(storage.MaxDocumentsPerKind), []byte("<x/>")); err != nil {
		t.Fatalf("PutDocument after a delete freed room: %v", err)
	}
}

// testDocumentQuotaConcurrent races writers of new keys against the quota:
// exactly MaxDocumentsPerKind of them may succeed.
func testDocumentQuotaConcurrent(t *testing.T, s storage.Store) {
	const a = "juliet@capulet.lit"
	mustCreate(t, s, a)
	const workers, extra = 8, 24
	var ok, over atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, storage.MaxDocumentsPerKind+extra)
	next := atomic.Int64{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= storage.MaxDocumentsPerKind+extra {
					return
				}
				err := s.PutDocument(ctx(t), a, storage.KindPrivate, fmt.Sprintf("{urn:race}k%d", i), []byte("<k/>"))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, storage.ErrQuotaExceeded):
					over.Add(1)
				default:
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ok.Load() != storage.MaxDocumentsPerKind || over.Load() != extra {
		t.Errorf("%d puts stored and %d refused; want %d and %d", ok.Load(), over.Load(), storage.MaxDocumentsPerKind, extra)
	}
}
