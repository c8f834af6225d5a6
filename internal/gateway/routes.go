package gateway

import (
	"maps"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"time"
)

// Backend is one healthy sandbox of an app: ID names it (for Drain), Addr is
// where it serves plain HTTP/1.1, e.g. "10.88.0.5:8080".
type Backend struct{ ID, Addr string }

// route is one app's entry in the table. It is immutable once published,
// except for the round-robin cursor.
type route struct {
	app      string
	backends []*backend
	reason   string // why there are no backends, shown on the 503 page
	load     *appLoad
	next     atomic.Uint64
}

// backend is the state of one sandbox that outlives table versions: the
// in-flight counter Drain watches and the proxy with its connection pool.
type backend struct {
	id, addr  string
	inflight  atomic.Int64
	removed   atomic.Bool            // set once the backend left the table
	removedAt time.Time              // guarded by Gateway.mu
	pool      *connPool              // bodiless requests (forward)
	tr        *http.Transport        // requests with a body, upgrades
	rp        *httputil.ReverseProxy // over tr
}

// closeIdle closes the backend's idle connections, and those of the pool
// still in use once they are done.
func (b *backend) closeIdle() {
	b.pool.close()
	b.tr.CloseIdleConnections()
}

// routeTable maps app name to route. Readers Load; writers, serialised by
// Gateway.mu, copy the map and Store the copy.
type routeTable struct {
	p atomic.Pointer[map[string]*route]
}

func (t *routeTable) init() { t.p.Store(&map[string]*route{}) }

func (t *routeTable) get(app string) *route { return (*t.p.Load())[app] }

// pruneAfter is how long a removed backend nobody drained keeps its state.
const pruneAfter = 5 * time.Minute

// SetBackends replaces the app's set of healthy backends. With an empty set
// the app stays known and its requests get a 503 page showing reason.
func (g *Gateway) SetBackends(app string, backends []Backend, reason string) {
	app = strings.ToLower(app)
	g.mu.Lock()
	defer g.mu.Unlock()
	rt := &route{app: app, reason: reason, load: g.loadOf(app)}
	seen := make(map[string]bool, len(backends))
	for _, nb := range backends {
		if nb.ID == "" || nb.Addr == "" || seen[nb.ID] {
			continue
		}
		seen[nb.ID] = true
		b := g.backends[nb.ID]
		if b != nil && b.addr != nb.Addr {
			g.retire(b) // same sandbox ID at a new address: start a fresh pool
			b.closeIdle()
			b = nil
		}
		if b == nil {
			b = g.newBackend(nb.ID, nb.Addr)
			g.backends[nb.ID] = b
		}
		if b.removed.Swap(false) {
			b.pool.reopen() // back before its drain was over
		}
		rt.backends = append(rt.backends, b)
	}
	old := g.routes.get(app)
	g.publish(func(m map[string]*route) { m[app] = rt })
	if len(rt.backends) > 0 {
		rt.load.signal() // requests held for a cold start go now
	}
	if old != nil {
		for _, b := range old.backends {
			if !seen[b.id] {
				g.retire(b)
			}
		}
	}
	g.prune()
}

// RemoveApp forgets the app: its host gets a 404 page from now on.
func (g *Gateway) RemoveApp(app string) {
	app = strings.ToLower(app)
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.routes.get(app)
	if old == nil {
		return
	}
	g.publish(func(m map[string]*route) { delete(m, app) })
	if l := g.loads[app]; l != nil {
		delete(g.loads, app)
		l.signal() // held requests find no route: 404
	}
	for _, b := range old.backends {
		g.retire(b)
	}
	g.prune()
}

// HasHost reports whether host (without port) is <app>.<domain> of an app
// the gateway knows, with or without backends, or a host given to Handle.
// The certificate authority asks it before issuing a certificate for a
// client hello.
func (g *Gateway) HasHost(host string) bool {
	if g.handlerFor(host) != nil {
		return true
	}
	app, ok := g.appOf(host)
	return ok && g.routes.get(app) != nil
}

// publish stores a modified copy of the table. Call with g.mu held.
func (g *Gateway) publish(edit func(map[string]*route)) {
	m := maps.Clone(*g.routes.p.Load())
	edit(m)
	g.routes.p.Store(&m)
}

// retire marks b as out of the table. The table no longer holding b must
// be published first: a request that picked b from an older table sees the
// mark after counting itself in flight, and backs off (see acquire).
// Call with g.mu held.
func (g *Gateway) retire(b *backend) {
	if b.removed.Swap(true) {
		return
	}
	b.removedAt = time.Now()
}

// prune drops removed backends that nobody drained and that have been idle
// for a while, closing their pooled connections. Call with g.mu held.
func (g *Gateway) prune() {
	now := time.Now()
	for id, b := range g.backends {
		if b.removed.Load() && b.inflight.Load() == 0 && now.Sub(b.removedAt) > pruneAfter {
			b.closeIdle()
			delete(g.backends, id)
		}
	}
}

// hostName returns a Host header's name without port and trailing dot, in
// lower case ("Hello.localhost.:8443" → "hello.localhost"), or false for an
// IPv6 literal, which never names an app or a handled host.
func hostName(host string) (string, bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if strings.IndexByte(host, ']') >= 0 || strings.IndexByte(host[:i], ':') >= 0 {
			return "", false
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if hasUpper(host) {
		host = strings.ToLower(host)
	}
	return host, true
}

// appOf returns the app named by a Host header ("Hello.localhost:8443" →
// "hello"), or false when the host is not one DNS label (letters, digits,
// hyphens) under the domain.
func (g *Gateway) appOf(host string) (string, bool) {
	host, ok := hostName(host)
	if !ok || len(host) <= len(g.suffix) || !strings.HasSuffix(host, g.suffix) {
		return "", false
	}
	app := host[:len(host)-len(g.suffix)]
	if len(app) > 63 {
		return "", false
	}
	for i := 0; i < len(app); i++ {
		if c := app[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", false
		}
	}
	return app, true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// acquire picks the app's next backend in round-robin order, skipping
// avoid, and counts a request in flight on it. It returns nil when the app
// has no backend to offer. The caller must call release.
func (g *Gateway) acquire(rt *route, avoid *backend) *backend {
	for range 3 {
		n := uint64(len(rt.backends))
		if n == 0 {
			return nil
		}
		i := rt.next.Add(1) - 1
		b := rt.backends[i%n]
		if b == avoid {
			if n == 1 {
				return nil
			}
			b = rt.backends[(i+1)%n]
		}
		b.inflight.Add(1)
		if !b.removed.Load() {
			return b
		}
		// The table changed under us and b is being drained: back off and
		// look at the current table.
		b.inflight.Add(-1)
		if rt = g.routes.get(rt.app); rt == nil {
			return nil
		}
	}
	return nil
}

func (b *backend) release() { b.inflight.Add(-1) }
