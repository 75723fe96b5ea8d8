// Package version answers Software Version (XEP-0092) requests addressed to the server: the name
// "Starling", the build's version, and the operating system only when the operator chose to publish it
// (XEP-0092 §5: the OS helps an attacker pick exploits, so it stays private by default).
//
// Try it: <iq type='get' to='example.com' id='v1'><query xmlns='jabber:iq:version'/></iq>.
package version

import (
	"context"
	"runtime/debug"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/stanza"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NS is the XEP-0092 namespace.
const NS = "jabber:iq:version"

// Name is the software name the server announces.
const Name = "Starling"

// Options configure the answer.
type Options struct {
	// Version is announced as is; "" means the version recorded in the binary (see BuildVersion).
	Version string
	// OS, if not empty, is announced in <os/>; empty keeps the operating system private.
	OS string
}

// Handler answers jabber:iq:version requests to the server.
type Handler struct {
	reply []byte // the <query/> payload, built once: it never changes while the node runs
}

// New returns a Handler for opts.
func New(opts Options) *Handler {
	v := opts.Version
	if v == "" {
		v = BuildVersion(debug.ReadBuildInfo)
	}
	var b xml.Builder
	b.Start("query", "xmlns", NS)
	b.Start("name")
	b.Text(Name)
	b.End()
	b.Start("version")
	b.Text(v)
	b.End()
	if opts.OS != "" {
		b.Start("os")
		b.Text(opts.OS)
		b.End()
	}
	b.End()
	return &Handler{reply: b.Bytes()}
}

// Register makes r answer version requests with opts.
func Register(r *router.Router, opts Options) { r.HandleIQ(NS, New(opts)) }

// HandleIQ implements router.IQHandler.
func (h *Handler) HandleIQ(_ context.Context, q *router.IQ) error {
	if !q.Payload.Is(NS, "query") {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	// A request to an account's bare JID is for that account, which the server does not answer on
	// its behalf (RFC 6121 §8.5.2.1.3: an unsupported namespace gets service-unavailable).
	if !q.ToServer() {
		return stanza.New(stanza.ServiceUnavailable, "")
	}
	if q.Type != "get" {
		return stanza.New(stanza.BadRequest, "the software version can only be read")
	}
	return q.Result(h.reply)
}

// BuildVersion derives a version string from the build information read: the module version for a
// tagged build, else the VCS revision (with "+dirty" for a modified tree), else "devel".
func BuildVersion(read func() (*debug.BuildInfo, bool)) string {
	info, ok := read()
	if !ok || info == nil {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "devel-" + rev + dirty
}
