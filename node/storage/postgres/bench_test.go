package postgres

import (
	"testing"

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/storagetest"
)

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, func(b *testing.B) storage.Store {
		s, err := Open(b.Context(), storagetest.PostgresSchema(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
