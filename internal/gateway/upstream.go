package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// The upstream connection pool serves the common case (a request without a
// body) on the handler's own goroutine: it writes the request and reads the
// response on a pooled keep-alive connection, with none of http.Transport's
// per-connection reader and writer goroutines and hand-offs between them.
// Requests with a body and protocol upgrades go through
// httputil.ReverseProxy and http.Transport instead (see newBackend).

// Pool limits.
const (
	maxIdlePerBackend   = 1024
	upstreamIdleTimeout = 90 * time.Second
	// staleCheckAfter is how long a connection may sit idle before it is
	// checked for a close by the backend on its way out of the pool.
	staleCheckAfter = 100 * time.Millisecond
	upstreamBufSize = 16 << 10
)

var dialer = &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}

// upConn is a keep-alive HTTP/1.1 connection to a backend.
type upConn struct {
	nc    net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	since time.Time // when it last went idle
	used  bool      // served a request before: it may have been closed since
}

// connPool holds one backend's idle connections, most recently used last.
type connPool struct {
	addr   string
	mu     sync.Mutex
	idle   []*upConn
	closed bool // Drain closed it: connections are not kept any more
}

// get returns an idle connection that is still open, or dials a new one
// (always, when fresh).
func (p *connPool) get(ctx context.Context, fresh bool) (*upConn, error) {
	now := time.Now()
	for !fresh {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(c.since) < staleCheckAfter || c.alive() {
			return c, nil
		}
		c.nc.Close()
	}
	nc, err := dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &upConn{nc: nc, br: bufio.NewReaderSize(nc, upstreamBufSize), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

// put returns a connection whose last response was read to the end. The
// oldest idle connection goes when it has idled too long or the pool is full.
func (p *connPool) put(c *upConn) {
	c.since, c.used = time.Now(), true
	var drop *upConn
	p.mu.Lock()
	switch {
	case p.closed:
		drop = c
	case len(p.idle) >= maxIdlePerBackend || len(p.idle) > 0 && c.since.Sub(p.idle[0].since) > upstreamIdleTimeout:
		drop = p.idle[0]
		p.idle = append(p.idle[:0], p.idle[1:]...)
		p.idle = append(p.idle, c)
	default:
		p.idle = append(p.idle, c)
	}
	p.mu.Unlock()
	if drop != nil {
		drop.nc.Close()
	}
}

// close closes the idle connections, and those returned later.
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// sweep closes idle connections that idled past upstreamIdleTimeout or
// that the backend closed, so that a quiet app holds no dead sockets.
func (p *connPool) sweep(now time.Time) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var keep []*upConn
	for _, c := range idle {
		if now.Sub(c.since) < upstreamIdleTimeout && (now.Sub(c.since) < staleCheckAfter || c.alive()) {
			keep = append(keep, c)
		} else {
			c.nc.Close()
		}
	}
	if len(keep) == 0 {
		return
	}
	p.mu.Lock()
	// Connections returned meanwhile are newer: they go on top.
	p.idle = append(keep, p.idle...)
	p.mu.Unlock()
}

// sweepEvery is how often the janitor sweeps the pools.
const sweepEvery = 15 * time.Second

// janitor sweeps every backend's pool and prunes forgotten backends until
// stop is closed.
func (g *Gateway) janitor(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			g.mu.Lock()
			g.prune()
			pools := make([]*connPool, 0, len(g.backends))
			for _, b := range g.backends {
				pools = append(pools, b.pool)
			}
			g.mu.Unlock()
			for _, p := range pools {
				p.sweep(now)
			}
		}
	}
}

// reopen lets the pool keep connections again after close.
func (p *connPool) reopen() {
	p.mu.Lock()
	p.closed = false
	p.mu.Unlock()
}

// alive peeks at the socket without blocking: an idle connection has
// nothing to read, a closed one reads EOF or an error.
func (c *upConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false // bytes nobody asked for
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(rerr, syscall.EAGAIN)
		return true // never wait
	})
	return err == nil && alive
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
