package migrate

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/starling-xmpp/starling/node/storage"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		file    string
		version int
		name    string
		wantErr bool
	}{
		{"0001_init.sql", 1, "init", false},
		{"12_add_index.sql", 12, "add_index", false},
		{"0001_init.txt", 0, "", true},
		{"init.sql", 0, "", true},
		{"_init.sql", 0, "", true},
		{"0001_.sql", 0, "", true},
		{"0000_zero.sql", 0, "", true},
		{"-1_neg.sql", 0, "", true},
		{"1a_x.sql", 0, "", true},
		{"99999999999999999999_big.sql", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			v, name, err := ParseName(tt.file)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseName(%q) error = %v, wantErr %v", tt.file, err, tt.wantErr)
			}
			if v != tt.version || name != tt.name {
				t.Errorf("ParseName(%q) = %d, %q; want %d, %q", tt.file, v, name, tt.version, tt.name)
			}
		})
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"0001_init.sql", "1_a.sql", "x.sql", "", "0_.sql"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		v, name, err := ParseName(file)
		if err != nil {
			return
		}
		if v <= 0 || name == "" {
			t.Fatalf("ParseName(%q) = %d, %q without error", file, v, name)
		}
	})
}

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name     string
		fs       fstest.MapFS
		versions []int
		wantErr  bool
	}{
		{"sorted", fstest.MapFS{"m/0002_b.sql": file("B"), "m/0001_a.sql": file("A"), "m/README": file("x")}, []int{1, 2}, false},
		{"gap", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0003_c.sql": file("C")}, nil, true},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": file("A"), "m/01_b.sql": file("B")}, nil, true},
		{"not from one", fstest.MapFS{"m/0002_a.sql": file("A")}, nil, true},
		{"empty file", fstest.MapFS{"m/0001_a.sql": file("  \n")}, nil, true},
		{"bad name", fstest.MapFS{"m/first.sql": file("A")}, nil, true},
		{"none", fstest.MapFS{"m/README": file("x")}, nil, true},
		{"no dir", fstest.MapFS{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Load(tt.fs, "m")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load error = %v, wantErr %v", err, tt.wantErr)
			}
			if len(ms) != len(tt.versions) {
				t.Fatalf("Load returned %d migrations, want %d", len(ms), len(tt.versions))
			}
			for i, m := range ms {
				if m.Version != tt.versions[i] {
					t.Errorf("migration %d has version %d, want %d", i, m.Version, tt.versions[i])
				}
			}
		})
	}
}

func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1, Name: "a", SQL: "A"}, {Version: 2, Name: "b", SQL: "B"}}
	tests := []struct {
		current int
		want    []int
		tooNew  bool
		wantErr bool
	}{
		{0, []int{1, 2}, false, false},
		{1, []int{2}, false, false},
		{2, nil, false, false},
		{3, nil, true, true},
		{-1, nil, false, true},
	}
	for _, tt := range tests {
		p, err := Pending(ms, tt.current)
		if (err != nil) != tt.wantErr {
			t.Fatalf("Pending(%d) error = %v, wantErr %v", tt.current, err, tt.wantErr)
		}
		if tt.tooNew != errors.Is(err, storage.ErrSchemaTooNew) {
			t.Errorf("Pending(%d) error = %v, want ErrSchemaTooNew: %v", tt.current, err, tt.tooNew)
		}
		if len(p) != len(tt.want) {
			t.Fatalf("Pending(%d) = %d migrations, want %d", tt.current, len(p), len(tt.want))
		}
		for i := range p {
			if p[i].Version != tt.want[i] {
				t.Errorf("Pending(%d)[%d] = version %d, want %d", tt.current, i, p[i].Version, tt.want[i])
			}
		}
	}
}
