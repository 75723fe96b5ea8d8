// Package migrate reads a backend's versioned schema migrations from an
// embedded directory and decides which of them a database still needs.
// Applying them is the backend's job, in its own dialect and under its own
// lock, because SQLite and PostgreSQL serialise concurrent openers
// differently.
//
// A migration is a file named NNNN_description.sql; versions start at 1 and
// have no gaps, so that two binaries agree on what version N contains.
package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/starling-xmpp/starling/node/storage"
)

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string // the description part of the file name
	SQL     string
}

// ParseName splits a migration file name "0001_init.sql" into its version
// and description.
func ParseName(file string) (version int, name string, err error) {
	base, ok := strings.CutSuffix(file, ".sql")
	if !ok {
		return 0, "", fmt.Errorf("migration file %q: name does not end in .sql", file)
	}
	num, name, ok := strings.Cut(base, "_")
	if !ok || num == "" || name == "" {
		return 0, "", fmt.Errorf("migration file %q: name is not NNNN_description.sql", file)
	}
	for _, r := range num {
		if r < '0' || r > '9' {
			return 0, "", fmt.Errorf("migration file %q: version %q is not a decimal number", file, num)
		}
	}
	v, err := strconv.Atoi(num)
	if err != nil || v <= 0 {
		return 0, "", fmt.Errorf("migration file %q: version %q is not a positive number", file, num)
	}
	return v, name, nil
}

// Load reads every *.sql file in dir of fsys, sorted by version. It fails
// on a malformed name, a duplicate version, a gap or an empty file: those
// are build mistakes that must not reach a database.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations directory %q: %w", dir, err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		v, name, err := ParseName(e.Name())
		if err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", e.Name(), err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("migration %q is empty", e.Name())
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations found in " + dir)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			if i > 0 && m.Version == ms[i-1].Version {
				return nil, fmt.Errorf("two migrations with version %d", m.Version)
			}
			return nil, fmt.Errorf("migration versions have a gap: expected %d, found %d (%s)", i+1, m.Version, m.Name)
		}
	}
	return ms, nil
}

// Latest returns the highest version in ms, 0 if ms is empty.
func Latest(ms []Migration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Pending returns the migrations a database at version current still needs.
// A database newer than every known migration yields an error wrapping
// storage.ErrSchemaTooNew.
func Pending(ms []Migration, current int) ([]Migration, error) {
	if latest := Latest(ms); current > latest {
		return nil, fmt.Errorf("%w: database is at version %d, this binary knows up to %d", storage.ErrSchemaTooNew, current, latest)
	}
	if current < 0 {
		return nil, fmt.Errorf("database reports schema version %d", current)
	}
	return ms[current:], nil
}
