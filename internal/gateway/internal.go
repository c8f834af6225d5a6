package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// The internal listener is where workloads call each other: mutual TLS
// with the workload SVIDs of the platform CA (a client without one fails
// the handshake), routed by Host header to an app ("billing" or
// "billing.<domain>"), and judged by the Guard's AdmitWorkload with the
// calling workload as principal. Only clients from InternalFrom may
// connect at all.

// WorkloadGuard admits calls between workloads on the internal listener.
type WorkloadGuard interface {
	AdmitWorkload(w http.ResponseWriter, r *http.Request, app string) bool
}

// startInternal binds and serves the internal listener. The caller holds
// g.mu.
func (g *Gateway) startInternal(ctx context.Context, errLog *log.Logger) error {
	if g.cfg.InternalAddr == "" {
		return nil
	}
	if g.cfg.InternalTLS == nil || g.cfg.InternalTLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return errorf("starting the internal listener: its TLS configuration must require and verify client certificates")
	}
	wg, ok := g.cfg.Guard.(WorkloadGuard)
	if !ok {
		return errorf("starting the internal listener: the guard does not judge workloads")
	}
	lc := net.ListenConfig{}
	ln, err := lc.Listen(ctx, "tcp", g.cfg.InternalAddr)
	if err != nil {
		return listenError(g.cfg.InternalAddr, "--internal", err)
	}
	g.internalAddr = ln.Addr()
	g.internalSrv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serveInternal(w, r, wg) }),
		TLSConfig:         g.cfg.InternalTLS,
		ReadHeaderTimeout: g.limits.HeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    g.limits.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	filtered := &fromListener{Listener: ln, allow: g.cfg.InternalFrom}
	g.running.Go(func() { g.serve("internal", g.internalSrv.ServeTLS(filtered, "", "")) })
	return nil
}

// serveInternal routes a workload's call to an app.
func (g *Gateway) serveInternal(w http.ResponseWriter, r *http.Request, wg WorkloadGuard) {
	start := time.Now()
	id := requestID(r.Header)
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	app := strings.TrimSuffix(strings.ToLower(host), g.suffix)
	rw := getWriter(w)
	defer putWriter(rw)
	rt := g.routes.get(app)
	if rt != nil && !strings.HasPrefix(r.URL.Path, "/.noops/") {
		rw.span, rw.parent = startSpan(r.Header)
	}
	switch {
	case g.cfg.InternalPlatform != nil && strings.HasPrefix(r.URL.Path, "/.noops/"):
		rw.backend = "platform"
		g.cfg.InternalPlatform.ServeHTTP(rw, r)
		rt = nil // not a request to the app
	case rt == nil:
		g.page(rw, r, notFoundPage(r.Host, g.cfg.Domain, id))
	case !wg.AdmitWorkload(rw, r, app):
		rw.backend = "access"
	default:
		g.serveApp(rw, r, rt, id, start)
	}
	g.observe(rt, r, rw, start)
	if g.log.Enabled(r.Context(), debugLevel) {
		g.log.Log(r.Context(), debugLevel, "internal request", "method", r.Method, "host", r.Host, "path", r.URL.Path,
			"status", rw.status, "backend", rw.backend, "duration", time.Since(start), "request_id", id)
	}
}

// InternalAddr returns the internal listener's address, nil when off.
func (g *Gateway) InternalAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.internalAddr
}

// fromListener closes connections from addresses outside allow (an empty
// allow lets everyone in) before any byte is read.
type fromListener struct {
	net.Listener
	allow []netip.Prefix
}

func (l *fromListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || len(l.allow) == 0 {
			return c, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr == nil {
			for _, p := range l.allow {
				if p.Contains(ap.Addr().Unmap()) {
					return c, nil
				}
			}
		}
		c.Close()
	}
}

func errorf(msg string) error { return errors.New(msg) }
