// Package httpapi serves the node's HTTP endpoints: /metrics (Prometheus, from the node's own registry),
// /healthz (storage reachable) and /debug/pprof. Further admin views register their handlers here.
package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the handler.
type Options struct {
	Registry *prometheus.Registry
	// Health returns nil when the node can serve.
	Health func(ctx context.Context) error
	// Extra handlers by path (the throttling view, the cluster view).
	Extra map[string]http.Handler
}

// New returns the node's HTTP handler.
func New(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if o.Health != nil {
			if err := o.Health(ctx); err != nil {
				http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	// Profiles for operators chasing a memory or CPU question; the listener belongs on loopback or
	// an admin network (etc/starling.tdsl binds it to 127.0.0.1).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	for p, h := range o.Extra {
		mux.Handle(p, h)
	}
	return mux
}

// JSON serves what f returns as indented JSON.
func JSON(f func() any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(f()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}
