package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/storage/storagetest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		uri, dataDir string
		want         Source
		wantErr      string // substring of the error; "" = no error
	}{
		{"", "/var/lib/starling", Source{Kind: SQLite, Path: "/var/lib/starling/starling.db"}, ""},
		{"sqlite:db/x.db", "/data", Source{Kind: SQLite, Path: "/data/db/x.db"}, ""},
		{"sqlite:/abs/x.db", "", Source{Kind: SQLite, Path: "/abs/x.db"}, ""},
		{"SQLite:x.db", "/d", Source{Kind: SQLite, Path: "/d/x.db"}, ""},
		{"sqlite:./a/../x.db", "/d", Source{Kind: SQLite, Path: "/d/x.db"}, ""},
		{"postgresql://u:p@db:5432/starling", "", Source{Kind: PostgreSQL, URI: "postgresql://u:p@db:5432/starling"}, ""},
		{"postgres://u@db/starling?sslmode=require", "", Source{Kind: PostgreSQL, URI: "postgres://u@db/starling?sslmode=require"}, ""},
		{"sqlite:", "/d", Source{}, "names no file"},
		{"sqlite:x.db", "", Source{}, "needs a data directory"},
		{"sqlite://x.db", "/d", Source{}, "without //"},
		{"sqlite::memory:", "/d", Source{}, "in-memory"},
		{"sqlite:x.db?mode=ro", "/d", Source{}, "plain file path"},
		{"postgresql:db", "", Source{}, "postgresql://user:pass@host:port/db"},
		{"mysql://u:secret@h/db", "", Source{}, `scheme "mysql" is not supported`},
		{"jdbc:postgresql://h/db?user=u&password=secret", "", Source{}, "JDBC"},
		{"starling.db", "/d", Source{}, "no scheme"},
		{":x", "/d", Source{}, "no scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := Parse(tt.uri, tt.dataDir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.uri, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q, %q) = %+v, %v; want %+v", tt.uri, tt.dataDir, got, err, tt.want)
			}
		})
	}
}

func TestSourceStringHidesPassword(t *testing.T) {
	src, err := Parse("postgresql://starling:s3cret@db.example:5432/xmpp", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := src.String(), "postgresql://starling:***@db.example:5432/xmpp"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "sqlite:x.db", "sqlite:/a", "postgres://u:p@h/db", "jdbc:x", "a:b", ":", "sqlite:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		src, err := Parse(uri, "/data")
		if err != nil {
			return
		}
		switch src.Kind {
		case SQLite:
			if !filepath.IsAbs(src.Path) || strings.ContainsAny(src.Path, "?#\x00") {
				t.Fatalf("Parse(%q) gave SQLite path %q", uri, src.Path)
			}
		case PostgreSQL:
			if src.URI != uri {
				t.Fatalf("Parse(%q) changed the URI to %q", uri, src.URI)
			}
		default:
			t.Fatalf("Parse(%q) = kind %q without error", uri, src.Kind)
		}
	})
}

func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), "sqlite:sub/node.db", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(t.Context(), "a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "node.db")); err != nil {
		t.Fatalf("database file not under the data dir: %v", err)
	}
}

func TestOpenPostgreSQL(t *testing.T) {
	s, err := Open(t.Context(), storagetest.PostgresSchema(t), "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(t.Context(), "a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UserExists(t.Context(), "a@example.org"); err != nil || !ok {
		t.Fatalf("UserExists = %v, %v", ok, err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct{ uri, dataDir, want string }{
		{"mysql://h/db", t.TempDir(), "not supported"},
		{"sqlite:x.db", "", "needs a data directory"},
		{"sqlite:" + filepath.Join(t.TempDir(), "not-a-dir-file", "x.db"), "", "open sqlite database"},
	}
	// A file where a directory should be makes the SQLite open fail.
	if err := os.WriteFile(strings.TrimSuffix(strings.TrimPrefix(tests[2].uri, "sqlite:"), "/x.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		s, err := Open(t.Context(), tt.uri, tt.dataDir)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", tt.uri)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tt.uri, err, tt.want)
		}
	}
}
