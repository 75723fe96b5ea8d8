package peer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuardServices(t *testing.T) {
	tests := []struct {
		name   string
		before *string // nil: no file
		after  *string // nil: no file after restore
	}{
		{"absent", nil, nil},
		{"already denies", ptr("#!/bin/sh\n# docker\nexit 101\n"), ptr("#!/bin/sh\n# docker\nexit 101\n")},
		{"allows starts", ptr("#!/bin/sh\nexit 0\n"), ptr("#!/bin/sh\nexit 0\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy-rc.d")
			if tt.before != nil {
				os.WriteFile(path, []byte(*tt.before), 0o755)
			}
			restore, err := guardServices(path)
			if err != nil {
				t.Fatal(err)
			}
			during, err := os.ReadFile(path)
			if err != nil || !contains(string(during), "exit 101") {
				t.Fatalf("during install policy-rc.d = %q, %v; want one that exits 101", during, err)
			}
			restore()
			got, err := os.ReadFile(path)
			switch {
			case tt.after == nil && !os.IsNotExist(err):
				t.Errorf("policy-rc.d left behind: %q", got)
			case tt.after != nil && string(got) != *tt.after:
				t.Errorf("policy-rc.d after = %q, want %q", got, *tt.after)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestAccountsAreStable(t *testing.T) {
	a, b := Accounts(3), Accounts(5)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("account %d differs between calls: %v vs %v", i, a[i], b[i])
		}
	}
	if a[2].User != "bench00002" || a[2].Password == "" {
		t.Errorf("account 2 = %+v", a[2])
	}
}

func TestMarker(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	create := func(_ ctxT, accts []Account, _ func(int)) error { calls += len(accts); return nil }
	if err := ensureAccounts(bg(), dir, Accounts(10), nil, create); err != nil {
		t.Fatal(err)
	}
	if err := ensureAccounts(bg(), dir, Accounts(15), nil, create); err != nil {
		t.Fatal(err)
	}
	if err := ensureAccounts(bg(), dir, Accounts(12), nil, create); err != nil {
		t.Fatal(err)
	}
	if calls != 15 {
		t.Errorf("created %d accounts, want 15 (10, then the 5 new ones, then none)", calls)
	}
}
