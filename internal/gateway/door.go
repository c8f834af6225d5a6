package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Door is the ban list as the gateway consults it: at accept, before the
// TLS handshake, a banned client's connection is closed unanswered.
type Door interface {
	Banned(addr netip.Addr) bool
}

// DoorFunc is a Door made of a function.
type DoorFunc func(addr netip.Addr) bool

// Banned calls f.
func (f DoorFunc) Banned(addr netip.Addr) bool { return f(addr) }

// Strike kinds the gateway reports (Config.Strike).
const (
	StrikeGarbage = "garbage" // a request that does not parse or breaks a hygiene limit
	StrikeSlow    = "slow"    // a request that stalled before it was read
)

// connKey finds a request's connection in its context.
type connKey struct{}

// clientConn is an accepted connection, tracked per client address so a
// new ban closes the client's open connections (CloseClients).
type clientConn struct {
	net.Conn
	addr     netip.Addr
	d        *door
	once     sync.Once
	actives  atomic.Int32 // requests the server began to read (ConnState)
	requests atomic.Int32 // requests that reached the handler
	lastRead atomic.Int64 // unix nanos of the last StateActive
	idle     atomic.Bool  // between requests of a keep-alive connection
}

func (c *clientConn) Close() error {
	c.once.Do(func() { c.d.forget(c) })
	return c.Conn.Close()
}

// door wraps the public listeners: it refuses banned clients and clients
// over the connection limit, and tracks connections by client.
type door struct {
	g     *Gateway
	mu    sync.Mutex
	conns map[netip.Addr]map[*clientConn]struct{}
	// Counters, for metrics and tests.
	refused, overLimit atomic.Int64
}

func newDoor(g *Gateway) *door {
	return &door{g: g, conns: map[netip.Addr]map[*clientConn]struct{}{}}
}

type doorListener struct {
	net.Listener
	d *door
}

// Accept returns the next connection that may come in; refused ones are
// closed here and never reach TLS.
func (l doorListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if cc := l.d.admit(c); cc != nil {
			return cc, nil
		}
	}
}

func (d *door) admit(c net.Conn) *clientConn {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		addr = ap.Addr().Unmap()
	}
	if door := d.g.cfg.Door; door != nil && addr.IsValid() && door.Banned(addr) {
		d.refused.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset: nothing lingers for a banned client
		}
		c.Close()
		return nil
	}
	cc := &clientConn{Conn: c, addr: addr, d: d}
	d.mu.Lock()
	set := d.conns[addr]
	if max := d.g.limits.ConnsPerClient; max > 0 && len(set) >= max {
		// Over the limit: an idle keep-alive connection of the client
		// makes room (clients that leak idle connections keep working);
		// with none, the new connection is refused.
		var victim *clientConn
		for o := range set {
			if o.idle.Load() {
				victim = o
				break
			}
		}
		d.mu.Unlock()
		d.overLimit.Add(1)
		if victim == nil {
			c.Close()
			d.g.log.Debug("connection refused: over the limit per client", "client", addr, "limit", max)
			return nil
		}
		victim.Close()
		d.mu.Lock()
		set = d.conns[addr]
	}
	if set == nil {
		set = map[*clientConn]struct{}{}
		d.conns[addr] = set
	}
	set[cc] = struct{}{}
	d.mu.Unlock()
	return cc
}

func (d *door) forget(c *clientConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if set := d.conns[c.addr]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(d.conns, c.addr)
		}
	}
}

// CloseClients closes every open connection from an address in p (a new
// ban) and returns how many it closed.
func (g *Gateway) CloseClients(p netip.Prefix) int {
	d := g.door
	d.mu.Lock()
	var victims []*clientConn
	for addr, set := range d.conns {
		if p.Contains(addr) {
			for c := range set {
				victims = append(victims, c)
			}
		}
	}
	d.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	return len(victims)
}

// Conns returns how many connections are open from addr.
func (g *Gateway) Conns(addr netip.Addr) int {
	g.door.mu.Lock()
	defer g.door.mu.Unlock()
	return len(g.door.conns[addr.Unmap()])
}

// connContext puts the connection in its requests' contexts.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if cc := clientConnOf(c); cc != nil {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

func clientConnOf(c net.Conn) *clientConn {
	for c != nil {
		switch v := c.(type) {
		case *clientConn:
			return v
		case interface{ NetConn() net.Conn }: // *tls.Conn
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// connState notices requests that began but never reached the handler:
// the server refused them as malformed (400, 431) or they stalled until
// the header timeout. Both are strikes against the client. HTTP/2
// connections are left out: their protocol errors are the h2 server's,
// and it reports a connection active once at its start and again for
// its first stream, so counting would take a client that opens a
// connection for one request (a monitor, curl) for a garbage sender.
func (g *Gateway) connState(c net.Conn, s http.ConnState) {
	cc := clientConnOf(c)
	if cc == nil {
		return
	}
	if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		return
	}
	switch s {
	case http.StateActive:
		cc.idle.Store(false)
		cc.actives.Add(1)
		cc.lastRead.Store(time.Now().UnixNano())
	case http.StateIdle:
		cc.idle.Store(true)
	case http.StateClosed:
		if cc.actives.Load() <= cc.requests.Load() {
			return
		}
		since := time.Since(time.Unix(0, cc.lastRead.Load()))
		if since >= g.limits.HeaderTimeout-100*time.Millisecond {
			g.strike(cc.addr, StrikeSlow, "request headers not sent within "+g.limits.HeaderTimeout.String())
		} else {
			g.strike(cc.addr, StrikeGarbage, "a request the server could not parse")
		}
	}
}

// countRequest records that a request reached the handler.
func countRequest(r *http.Request) {
	if cc, ok := r.Context().Value(connKey{}).(*clientConn); ok {
		cc.requests.Add(1)
	}
}

// strike reports an offence of a client to Config.Strike.
func (g *Gateway) strike(addr netip.Addr, kind, detail string) {
	if g.cfg.Strike != nil && addr.IsValid() {
		g.cfg.Strike(addr, kind, detail)
	}
}
