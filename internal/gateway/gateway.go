// Package gateway is the front door of every app: it terminates TLS,
// redirects plain HTTP to HTTPS, routes each request by its Host header to
// one of the app's healthy sandboxes and proxies it there over a pool of
// keep-alive connections. The supervisor drives the route table
// (SetBackends, RemoveApp) and drains a sandbox before stopping it (Drain).
//
// The route table is an immutable map behind an atomic pointer: the request
// path takes no lock, writers copy the map. Requests without a body (nearly
// all of them) are forwarded on the handler's goroutine over the gateway's
// own keep-alive pool (upstream.go, forward.go); requests with a body and
// protocol upgrades go through httputil.ReverseProxy (proxy.go). A few
// hosts that are not apps (the image registry) are served by a handler of
// their own instead (Handle).
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"noops/internal/errkind"
)

// Config says where the gateway listens and what it serves.
type Config struct {
	HTTPSAddr string // default ":443"
	HTTPAddr  string // redirects to HTTPS; "" or "off" disables it
	Domain    string // apps are served at <app>.<Domain>; default "localhost"
	// TLS returns the certificate for a client hello (required).
	TLS    func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	Logger *slog.Logger

	// The activator: for an app with cold starts on (SetColdStart) and no
	// backend, up to HoldQueue requests (default DefaultHoldQueue) wait
	// up to HoldTimeout (default DefaultHoldTimeout) while Waker starts a
	// replica; ColdStart, when set, is told how long each held request
	// waited from its arrival to its response's first byte.
	Waker       Waker
	HoldQueue   int
	HoldTimeout time.Duration
	ColdStart   func(app string, firstByte time.Duration)

	// Guard, when set, decides every request to an app before it is
	// proxied (the access layer). Without one every app is public.
	Guard Guard

	// Shield, when set, inspects every request the Guard admitted before
	// it is proxied: the WAF and the rate rules.
	Shield Shield
	// Door, when set, is asked at accept whether a client is banned; a
	// banned client's connection is closed before the TLS handshake.
	Door Door
	// Strike, when set, is told of a client's offences the gateway sees
	// itself (StrikeGarbage, StrikeSlow): the ban triggers.
	Strike func(addr netip.Addr, kind, detail string)
	// Limits are the request hygiene rules (hygiene.go).
	Limits Limits
	// Observe, when set, is told of every request to an app the gateway
	// answered, on either listener, refused ones included: the access
	// log, the RED metrics and the gateway's span (observe.go). It must
	// not keep r or s after it returns.
	Observe func(r *http.Request, s *Served)

	// The internal listener (internal.go): InternalAddr "" turns it off;
	// InternalTLS must require and verify client certificates; only
	// clients from InternalFrom connect (all when empty).
	InternalAddr string
	InternalTLS  *tls.Config
	InternalFrom []netip.Prefix
	// InternalPlatform, when set, serves the paths under /.noops/ on the
	// internal listener, for any Host (publishing events); it
	// authenticates the workload itself.
	InternalPlatform http.Handler
}

// Guard admits or refuses requests to apps. Admit returns true to let the
// request go on; otherwise it has written the answer itself (a sign-in
// redirect, 401, 403). It may set request headers for the app.
type Guard interface {
	Admit(w http.ResponseWriter, r *http.Request, app string) bool
}

// Shield inspects requests to apps after the Guard. Inspect returns ok
// false when it has answered the request itself (a block, a challenge);
// otherwise the response goes through ww (w itself, or a writer that
// inspects the response) and done is called once the app has answered,
// with the status the client got.
type Shield interface {
	Inspect(w http.ResponseWriter, r *http.Request, app string) (ww http.ResponseWriter, done func(status int), ok bool)
}

// Server limits, shared by the listeners.
const (
	idleTimeout = 120 * time.Second
	hstsValue   = "max-age=31536000"
)

// Gateway serves apps over HTTPS. Create it with New, then Start it.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	suffix string // "." + domain, lower-case
	bufs   bufferPool
	routes routeTable
	// handlers maps a host name to the handler that serves it instead of
	// an app (Handle); like routes, an immutable map written under mu.
	handlers atomic.Pointer[map[string]http.Handler]

	mu           sync.Mutex // guards the fields below and all writes to routes
	backends     map[string]*backend
	loads        map[string]*appLoad // per app, kept across route versions
	httpsSrv     *http.Server
	httpSrv      *http.Server
	internalSrv  *http.Server
	internalAddr net.Addr
	httpsAddr    net.Addr
	httpAddr     net.Addr
	httpsPort    string         // ":PORT" appended to redirects, "" for 443
	stop         chan struct{}  // closed by Stop to end the janitor; nil before Start
	running      sync.WaitGroup // the servers' and the janitor's goroutines

	limits         Limits
	door           *door
	hygieneRefused atomic.Int64
}

// New returns a gateway that serves nothing until Start; SetBackends and
// HasHost work before it starts.
func New(cfg Config) *Gateway {
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = ":443"
	}
	if cfg.HTTPAddr == "off" {
		cfg.HTTPAddr = ""
	}
	cfg.Domain = strings.Trim(strings.ToLower(cfg.Domain), ".")
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HoldQueue <= 0 {
		cfg.HoldQueue = DefaultHoldQueue
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = DefaultHoldTimeout
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, suffix: "." + cfg.Domain, backends: map[string]*backend{}, loads: map[string]*appLoad{},
		limits: cfg.Limits.withDefaults()}
	g.door = newDoor(g)
	g.bufs.init()
	g.routes.init()
	g.handlers.Store(&map[string]http.Handler{})
	return g
}

// Start binds the listeners and serves them until Stop. A busy address is an
// errkind.Conflict, a privileged port without privilege an errkind.Permission.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.httpsSrv != nil {
		return errkind.Errorf(errkind.Conflict, "starting gateway: already started")
	}
	if g.cfg.TLS == nil {
		return errkind.Errorf(errkind.Invalid, "starting gateway: no TLS certificate source configured")
	}
	lc := net.ListenConfig{}
	httpsLn, err := lc.Listen(ctx, "tcp", g.cfg.HTTPSAddr)
	if err != nil {
		return listenError(g.cfg.HTTPSAddr, "--https", err)
	}
	var httpLn net.Listener
	if g.cfg.HTTPAddr != "" {
		if httpLn, err = lc.Listen(ctx, "tcp", g.cfg.HTTPAddr); err != nil {
			httpsLn.Close()
			return listenError(g.cfg.HTTPAddr, "--http", err)
		}
	}

	errLog := log.New(serverLogWriter{g.log}, "", 0)
	g.httpsAddr = httpsLn.Addr()
	if _, port, err := net.SplitHostPort(g.httpsAddr.String()); err == nil && port != "443" {
		g.httpsPort = ":" + port
	}
	httpsLn = doorListener{httpsLn, g.door}
	if httpLn != nil {
		httpLn = doorListener{httpLn, g.door}
	}
	g.httpsSrv = &http.Server{
		Handler:           g,
		TLSConfig:         tlsConfig(g.cfg.TLS),
		ReadHeaderTimeout: g.limits.HeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    g.limits.MaxHeaderBytes,
		ErrorLog:          errLog,
		ConnContext:       connContext,
		ConnState:         g.connState,
	}
	if err := g.startInternal(ctx, errLog); err != nil {
		g.httpsSrv = nil
		httpsLn.Close()
		if httpLn != nil {
			httpLn.Close()
		}
		return err
	}
	g.stop = make(chan struct{})
	stop := g.stop
	g.running.Go(func() { g.janitor(stop) })
	g.running.Go(func() { g.serve("https", g.httpsSrv.ServeTLS(httpsLn, "", "")) })
	if httpLn != nil {
		g.httpAddr = httpLn.Addr()
		g.httpSrv = &http.Server{
			Handler:           http.HandlerFunc(g.redirect),
			ReadHeaderTimeout: g.limits.HeaderTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    g.limits.MaxHeaderBytes,
			ErrorLog:          errLog,
			ConnContext:       connContext,
			ConnState:         g.connState,
		}
		g.running.Go(func() { g.serve("http", g.httpSrv.Serve(httpLn)) })
	}
	g.log.Info("gateway listening", "https", g.httpsAddr.String(), "http", addrString(g.httpAddr), "domain", g.cfg.Domain)
	return nil
}

// serve logs why a server stopped, unless Stop stopped it.
func (g *Gateway) serve(name string, err error) {
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.log.Error("gateway listener stopped", "listener", name, "err", err)
	}
}

// Stop shuts both servers down gracefully: it stops accepting, waits for
// requests in flight until ctx ends, then closes what is left.
func (g *Gateway) Stop(ctx context.Context) error {
	g.mu.Lock()
	srvs := []*http.Server{g.httpsSrv, g.httpSrv, g.internalSrv}
	stop := g.stop
	g.stop = nil
	g.mu.Unlock()
	if stop == nil {
		return nil // not started, or stopped already
	}
	close(stop)
	var errs []error
	for _, s := range srvs {
		if s == nil {
			continue
		}
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
			errs = append(errs, err)
		}
	}
	g.running.Wait()
	g.mu.Lock()
	for _, b := range g.backends {
		b.closeIdle()
	}
	g.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping gateway (requests in flight were cut): %w", err)
	}
	return nil
}

// Addr returns the bound HTTPS and HTTP addresses; http is nil when the
// HTTP listener is disabled, both are nil before Start.
func (g *Gateway) Addr() (https, http net.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.httpsAddr, g.httpAddr
}

// tlsConfig allows TLS 1.2 with forward-secret AEAD suites, and TLS 1.3.
// ServeTLS adds h2 to NextProtos.
func tlsConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: get,
		// Devices present their certificates; the access layer checks
		// them (chain, expiry, revocation) and says what is wrong, which a
		// failed handshake could not.
		ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"h2", "http/1.1"},
		CipherSuites: []uint16{ // TLS 1.2 only; TLS 1.3 suites are not configurable
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// listenError classifies a failed bind and says what to do about it.
func listenError(addr, flag string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return errkind.WithHint(errkind.Conflict, fmt.Errorf("listening on %s: %w", addr, syscall.EADDRINUSE),
			fmt.Sprintf("another process holds %s: stop it or pick another address with %s", addr, flag))
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return errkind.WithHint(errkind.Permission, fmt.Errorf("listening on %s: %w", addr, syscall.EACCES),
			fmt.Sprintf("ports below 1024 need root (or CAP_NET_BIND_SERVICE): run as root or pick a port above 1023 with %s", flag))
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return errkind.WithHint(errkind.Invalid, fmt.Errorf("listening on %s: %w", addr, syscall.EADDRNOTAVAIL),
			fmt.Sprintf("the IP address is not on this machine: pick one of its addresses (or none) with %s", flag))
	}
	var addrErr *net.AddrError
	var dnsErr *net.DNSError
	if errors.As(err, &addrErr) || errors.As(err, &dnsErr) {
		return errkind.WithHint(errkind.Invalid, fmt.Errorf("listening on %s: %w", addr, err),
			fmt.Sprintf("give %s as HOST:PORT or :PORT", flag))
	}
	return fmt.Errorf("listening on %s: %w", addr, err)
}

// serverLogWriter sends net/http's server log to slog: TLS handshake
// failures (scanners, clients that distrust the certificate) at debug level,
// everything else at warn.
type serverLogWriter struct{ log *slog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, msg, "component", "gateway")
	return len(p), nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}
