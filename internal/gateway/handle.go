package gateway

import (
	"fmt"
	"maps"
	"net/http"
	"time"
)

// Handle serves host with h instead of routing it to an app: its requests
// (on any port) go to h and are never proxied. They get the gateway's
// request ID and HSTS header like every other response (h may override
// them), and HasHost reports the host, so the certificate authority issues
// its certificate. host is a full name such as "registry.localhost"; a
// handled host wins over an app of the same name. A nil h stops handling
// host. Handle panics on a host that is not a name (empty, or an IPv6
// literal): that is a programming error.
func (g *Gateway) Handle(host string, h http.Handler) {
	name, ok := hostName(host)
	if !ok || name == "" {
		panic(fmt.Sprintf("gateway: Handle(%q): not a host name", host))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := maps.Clone(*g.handlers.Load())
	if h == nil {
		delete(m, name)
	} else {
		m[name] = h
	}
	g.handlers.Store(&m)
}

// handlerFor returns the handler given to Handle for a Host header's name,
// or nil. Without handled hosts it costs one atomic load.
func (g *Gateway) handlerFor(host string) http.Handler {
	hs := *g.handlers.Load()
	if len(hs) == 0 {
		return nil
	}
	name, ok := hostName(host)
	if !ok {
		return nil
	}
	return hs[name]
}

// serveHandled serves a request for a handled host with its handler.
func (g *Gateway) serveHandled(w http.ResponseWriter, r *http.Request, h http.Handler, id string, start time.Time) {
	rw := getWriter(w)
	defer putWriter(rw)
	hdr := rw.Header()
	hdr["X-Request-Id"] = []string{id}
	hdr["Strict-Transport-Security"] = hstsHeader[:1:1]
	h.ServeHTTP(rw, r)
	if g.log.Enabled(r.Context(), debugLevel) {
		g.log.Log(r.Context(), debugLevel, "request", "method", r.Method, "host", r.Host, "path", r.URL.Path,
			"status", rw.status, "handled", true, "duration", time.Since(start), "request_id", id, "proto", r.Proto)
	}
}
