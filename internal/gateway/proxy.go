package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"noops/internal/observe/trace"
	"sync"
	"time"
)

// Upstream timeouts. Sandboxes are on a local bridge: dials are fast or
// fail fast.
const (
	dialTimeout           = 5 * time.Second
	responseHeaderTimeout = 60 * time.Second
)

var hstsHeader = []string{hstsValue}

// ServeHTTP serves one request that arrived over HTTPS: a host given to
// Handle goes to its handler; any other is an app's, found by host, and the
// request is proxied to one of its backends.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	countRequest(r)
	id := requestID(r.Header)
	if h := g.handlerFor(r.Host); h != nil {
		g.serveHandled(w, r, h, id, start)
		return
	}
	app, ok := g.appOf(r.Host)
	var rt *route
	if ok {
		rt = g.routes.get(app)
	}
	rw := getWriter(w)
	defer putWriter(rw)
	if rt != nil {
		rw.span, rw.parent = startSpan(r.Header)
		rw.Header()["Traceresponse"] = []string{rw.span.String()}
	}
	switch {
	case rt == nil:
		g.page(rw, r, notFoundPage(r.Host, g.cfg.Domain, id))
	case !g.hygiene(rw, r, id):
	case g.cfg.Guard != nil && !g.cfg.Guard.Admit(rw, r, app):
		rw.backend = "access"
	case g.cfg.Shield != nil:
		g.shielded(rw, r, rt, app, id, start)
	default:
		g.serveApp(rw, r, rt, id, start)
	}
	g.observe(rt, r, rw, start)
	if g.log.Enabled(r.Context(), debugLevel) {
		g.log.Log(r.Context(), debugLevel, "request", "method", r.Method, "host", r.Host, "path", r.URL.Path,
			"status", rw.status, "backend", rw.backend, "duration", time.Since(start), "request_id", id,
			"proto", r.Proto)
	}
}

// shielded serves an admitted request through the Shield.
func (g *Gateway) shielded(rw *respWriter, r *http.Request, rt *route, app, id string, start time.Time) {
	rw.Header()["X-Request-Id"] = []string{id}
	ww, done, ok := g.cfg.Shield.Inspect(rw, r, app)
	if !ok {
		if rw.backend == "" {
			rw.backend = "shield"
		}
		return
	}
	if ww == http.ResponseWriter(rw) {
		g.serveApp(rw, r, rt, id, start)
	} else {
		inner := getWriter(ww)
		g.serveApp(inner, r, rt, id, start)
		rw.backend = inner.backend
		putWriter(inner)
	}
	if done != nil {
		done(rw.status)
	}
}

// serveApp proxies a request of an app, counting it in the app's load
// while it lasts (a panic that aborts the response included).
func (g *Gateway) serveApp(rw *respWriter, r *http.Request, rt *route, id string, start time.Time) {
	traced(r.Header)
	rt.load.arrived.Add(1)
	rt.load.inflight.Add(1)
	defer rt.load.inflight.Add(-1)
	g.proxy(rw, r, rt, id)
	if !rw.firstByte.IsZero() && g.cfg.ColdStart != nil {
		g.cfg.ColdStart(rt.app, rw.firstByte.Sub(start))
	}
}

// proxy sends the request to a backend of rt. A backend that cannot be
// dialled never saw the request: when the body can be sent again, the
// request goes once to the next backend.
func (g *Gateway) proxy(rw *respWriter, r *http.Request, rt *route, id string) {
	b := g.acquire(rt, nil)
	if b == nil && rt.load.cold.Load() {
		if b = g.hold(rw, r, rt, id); b == nil {
			return
		}
		rw.held = true // WriteHeader notes the first byte's time
	}
	if b == nil {
		g.page(rw, r, unavailablePage(rt.app, rt.reason, id))
		return
	}
	err := g.attempt(rw, r, b)
	if err != nil && isDialError(err) && replayable(r) && !rw.wroteHeader {
		if cur := g.routes.get(rt.app); cur != nil {
			if next := g.acquire(cur, b); next != nil {
				g.log.Debug("retrying on another backend", "app", rt.app, "failed", b.id, "next", next.id, "err", err, "request_id", id)
				err = g.attempt(rw, r, next)
			}
		}
	}
	if err == nil || rw.wroteHeader {
		return
	}
	if r.Context().Err() != nil {
		rw.status = 499 // the client went away; nobody reads a page
		return
	}
	if errors.Is(err, ErrBodyTooLarge) {
		r.Close = true
		g.page(rw, r, refusedPage(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over the limit of %d bytes", g.limits.MaxBody), id))
		return
	}
	g.log.Warn("app did not answer", "app", rt.app, "backend", rw.backend, "err", err, "request_id", id)
	g.page(rw, r, badGatewayPage(rt.app, id))
}

// attempt proxies to b, counting the request in flight until the response
// has been copied (or the copy panicked with http.ErrAbortHandler). It
// returns an error when b gave no response and nothing was written.
func (g *Gateway) attempt(rw *respWriter, r *http.Request, b *backend) error {
	defer b.release()
	rw.backend = b.id
	if fastPath(r) {
		return g.forward(rw, r, b)
	}
	// ReverseProxy adds the response's headers to the writer's: the
	// request ID set for the Shield's pages would be sent twice.
	delete(rw.Header(), "X-Request-Id")
	b.rp.ServeHTTP(rw, r)
	err := rw.err
	rw.err = nil
	return err
}

// newBackend builds the proxy and connection pool for one sandbox.
func (g *Gateway) newBackend(id, addr string) *backend {
	b := &backend{id: id, addr: addr, tr: newTransport(), pool: &connPool{addr: addr}}
	b.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.SetXForwarded() // Host stays the client's
		},
		Transport:      b.tr,
		BufferPool:     &g.bufs,
		ErrorHandler:   recordError,
		ModifyResponse: modifyResponse,
	}
	return b
}

// newTransport is the upstream HTTP/1.1 client for requests with a body and
// protocol upgrades: large keep-alive pools, no
// environment proxy, no transparent gzip (the client's Accept-Encoding
// passes through untouched).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0, // no total limit; per backend below
		MaxIdleConnsPerHost:   maxIdlePerBackend,
		IdleConnTimeout:       upstreamIdleTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

// modifyResponse stamps the request ID and HSTS on the upstream response
// before ReverseProxy copies its headers.
func modifyResponse(res *http.Response) error {
	res.Header["X-Request-Id"] = res.Request.Header["X-Request-Id"]
	if _, ok := res.Header["Strict-Transport-Security"]; !ok {
		res.Header["Strict-Transport-Security"] = hstsHeader[:1:1]
	}
	return nil
}

// recordError keeps the proxy error for proxy to decide on a retry or a page.
func recordError(w http.ResponseWriter, _ *http.Request, err error) {
	if rw, ok := w.(*respWriter); ok {
		rw.err = err
		return
	}
	http.Error(w, "the app did not answer", http.StatusBadGateway)
}

// isDialError reports whether err happened before the request left: the
// backend refused the connection, was unreachable or did not accept in time.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// replayable reports whether the request can be sent again: it has no body
// (ReverseProxy does not read a body of length 0).
func replayable(r *http.Request) bool {
	return r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody
}

// respWriter sees what the proxy writes: the status for the access log and
// the error ReverseProxy reports before writing anything.
type respWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	err         error
	backend     string
	held        bool         // the request waited for a cold start
	firstByte   time.Time    // when a held request's response began
	written     int64        // body bytes written
	span        trace.Parent // the gateway's span of the request (observe.go)
	parent      [8]byte      // the caller's span; zero when the gateway began the trace
}

var writers = sync.Pool{New: func() any { return new(respWriter) }}

func getWriter(w http.ResponseWriter) *respWriter {
	rw := writers.Get().(*respWriter)
	rw.ResponseWriter = w
	return rw
}

func putWriter(rw *respWriter) {
	*rw = respWriter{}
	writers.Put(rw)
}

func (w *respWriter) WriteHeader(code int) {
	if w.held && w.firstByte.IsZero() {
		w.firstByte = time.Now()
	}
	if code >= 200 && !w.wroteHeader || code == http.StatusSwitchingProtocols {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.held && w.firstByte.IsZero() {
		w.firstByte = time.Now()
	}
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush lets streamed responses (server-sent events) through at once.
func (w *respWriter) Flush() {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController (used by ReverseProxy for flushes
// and protocol upgrades) the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool recycles ReverseProxy's copy buffers without allocating: a
// channel of buffers rather than a sync.Pool, which would box each slice.
type bufferPool struct{ c chan []byte }

const copyBufferSize = 32 << 10

func (p *bufferPool) init() { p.c = make(chan []byte, 256) }

func (p *bufferPool) Get() []byte {
	select {
	case b := <-p.c:
		return b
	default:
		return make([]byte, copyBufferSize)
	}
}

func (p *bufferPool) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	select {
	case p.c <- b[:copyBufferSize]:
	default:
	}
}
