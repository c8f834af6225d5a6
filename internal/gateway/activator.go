package gateway

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Waker starts a replica of an app that has none: the autoscaler. Wake
// must return at once.
type Waker interface{ Wake(app string) }

// Defaults of the activator.
const (
	DefaultHoldQueue   = 256              // requests held per app
	DefaultHoldTimeout = 30 * time.Second // longest a request waits for a cold start
)

// appLoad is the per-app state that outlives route table versions: its
// load, for the autoscaler, and the requests held while it has no replica.
type appLoad struct {
	inflight atomic.Int64  // requests being served or held
	arrived  atomic.Uint64 // since the gateway started
	cold     atomic.Bool   // hold requests while there is no backend

	mu    sync.Mutex
	held  int
	ready chan struct{} // closed when the app gets a backend; then replaced
}

func newAppLoad() *appLoad { return &appLoad{ready: make(chan struct{})} }

// signal wakes the requests held for the app: it has a backend now.
func (l *appLoad) signal() {
	l.mu.Lock()
	close(l.ready)
	l.ready = make(chan struct{})
	l.mu.Unlock()
}

// loadOf returns the app's load state, made on first use; routes point at
// it. Call with g.mu held.
func (g *Gateway) loadOf(app string) *appLoad {
	l := g.loads[app]
	if l == nil {
		l = newAppLoad()
		g.loads[app] = l
	}
	return l
}

// Load returns the app's requests in flight (held ones included) and how
// many have arrived since the gateway started.
func (g *Gateway) Load(app string) (inflight int64, arrived uint64) {
	rt := g.routes.get(strings.ToLower(app))
	if rt == nil {
		return 0, 0
	}
	return rt.load.inflight.Load(), rt.load.arrived.Load()
}

// SetColdStart makes the gateway hold the app's requests while it has no
// backend, and ask the Waker for one (on), or answer them at once with a
// 503 page (off, the default).
func (g *Gateway) SetColdStart(app string, on bool) {
	app = strings.ToLower(app)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !on && g.loads[app] == nil {
		return // nothing to turn off: keep no state for an app the gateway forgot
	}
	l := g.loadOf(app)
	l.cold.Store(on)
	if !on {
		l.signal() // held requests look again, and get their 503
	}
}

// hold keeps a request for an app without a backend until one serves, the
// client leaves, or HoldTimeout passes. It returns the backend acquired
// for the request, or nil once it has answered the request itself: a 503
// with Retry-After when the app's queue is full or the wait timed out.
func (g *Gateway) hold(rw *respWriter, r *http.Request, rt *route, id string) *backend {
	l := rt.load
	l.mu.Lock()
	if l.held >= g.cfg.HoldQueue {
		l.mu.Unlock()
		g.page(rw, r, unavailablePage(rt.app, "too many requests are waiting for the app to start", id))
		return nil
	}
	l.held++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.held--
		l.mu.Unlock()
	}()
	if g.cfg.Waker != nil {
		g.cfg.Waker.Wake(rt.app)
	}
	timer := time.NewTimer(g.cfg.HoldTimeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		ready := l.ready
		l.mu.Unlock()
		// The table is read after the channel: a backend published before
		// it was taken is seen here, one published after closes it.
		cur := g.routes.get(rt.app)
		if cur == nil {
			g.page(rw, r, notFoundPage(r.Host, g.cfg.Domain, id))
			return nil
		}
		if b := g.acquire(cur, nil); b != nil {
			return b
		}
		if !l.cold.Load() {
			g.page(rw, r, unavailablePage(rt.app, cur.reason, id))
			return nil
		}
		select {
		case <-ready:
		case <-r.Context().Done():
			rw.status = 499
			return nil
		case <-timer.C:
			g.page(rw, r, unavailablePage(rt.app, "the app did not start within "+g.cfg.HoldTimeout.String(), id))
			return nil
		}
	}
}
