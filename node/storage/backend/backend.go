// Package backend opens the storage backend that the configuration names
// (DESIGN §1, dataSource's uri): "sqlite:PATH" for the embedded SQLite
// file, relative to the node's data directory, or a "postgresql://" /
// "postgres://" URI. It sits apart from package storage because it imports
// both backends, which import storage.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/starling-xmpp/starling/node/storage"
	"github.com/starling-xmpp/starling/node/storage/postgres"
	"github.com/starling-xmpp/starling/node/storage/sqlite"
)

// DefaultURI is the data source used when the configuration names none:
// an SQLite file in the data directory.
const DefaultURI = "sqlite:starling.db"

// Kind names a backend.
type Kind string

// The backends.
const (
	SQLite     Kind = "sqlite"
	PostgreSQL Kind = "postgresql"
)

// Source is a parsed data source URI.
type Source struct {
	Kind Kind
	// Path is the SQLite file, joined to the data directory if relative.
	Path string
	// URI is the PostgreSQL connection URI, unchanged.
	URI string
}

// String describes the source without its password, for logs.
func (s Source) String() string {
	if s.Kind == SQLite {
		return "sqlite:" + s.Path
	}
	return redact(s.URI)
}

// Parse reads a data source URI; "" means DefaultURI. A relative SQLite path
// is joined to dataDir, which must then be set. Errors never quote a
// PostgreSQL URI, which carries the password.
func Parse(uri, dataDir string) (Source, error) {
	if uri == "" {
		uri = DefaultURI
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || scheme == "" {
		return Source{}, errors.New(`data source uri has no scheme: want "sqlite:PATH" or "postgresql://user:pass@host:port/db"`)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		path := rest
		if path == "" {
			return Source{}, errors.New(`data source "sqlite:" names no file: want "sqlite:PATH", e.g. "sqlite:starling.db"`)
		}
		if strings.HasPrefix(path, "//") {
			return Source{}, fmt.Errorf("data source %q: write sqlite:PATH (relative to the data directory) or sqlite:/absolute/path, without //", uri)
		}
		if path == ":memory:" || strings.ContainsAny(path, "?#\x00") {
			return Source{}, fmt.Errorf("data source %q: want a plain file path (no in-memory database, no '?', '#' or NUL)", uri)
		}
		if !filepath.IsAbs(path) {
			if dataDir == "" {
				return Source{}, fmt.Errorf("data source %q: a relative path needs a data directory", uri)
			}
			path = filepath.Join(dataDir, path)
		}
		return Source{Kind: SQLite, Path: filepath.Clean(path)}, nil
	case "postgresql", "postgres":
		if !strings.HasPrefix(rest, "//") {
			return Source{}, fmt.Errorf("data source with scheme %q: want %s://user:pass@host:port/db", scheme, scheme)
		}
		return Source{Kind: PostgreSQL, URI: uri}, nil
	case "jdbc":
		return Source{}, errors.New(`data source is a JDBC URL (Tigase): drop the "jdbc:" prefix and pass user and password in the URI, e.g. "postgresql://user:pass@host:port/db"`)
	default:
		return Source{}, fmt.Errorf("data source scheme %q is not supported: want \"sqlite:PATH\" or \"postgresql://user:pass@host:port/db\"", printable(scheme))
	}
}

// printable shortens and sanitises text quoted in an error.
func printable(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// redact drops the password from a PostgreSQL URI.
func redact(uri string) string {
	scheme, rest, _ := strings.Cut(uri, "://")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, _, _ := strings.Cut(rest[:at], ":")
		rest = user + ":***" + rest[at:]
	}
	return scheme + "://" + rest
}

// Option changes how Open opens a store.
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger sends the backend's messages (migrations applied) to l.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// Open parses uri (see Parse) and opens that backend, applying its schema
// migrations.
func Open(ctx context.Context, uri, dataDir string, opts ...Option) (storage.Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	src, err := Parse(uri, dataDir)
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	var s storage.Store
	switch src.Kind {
	case SQLite:
		st, err := sqlite.Open(ctx, src.Path, sqlite.Options{Logger: o.log})
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		s = st
	case PostgreSQL:
		st, err := postgres.Open(ctx, src.URI, postgres.Options{Logger: o.log})
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		s = st
	}
	o.log.Info("storage open", "backend", string(src.Kind), "source", src.String())
	return s, nil
}
