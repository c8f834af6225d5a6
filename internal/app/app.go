// Package app is the composition root: it builds every subsystem from the
// server's configuration, starts them in dependency order and stops them in
// reverse. A start that fails halfway stops what had already started. Only
// cmd/ and tests import it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"noops/internal/access"
	"noops/internal/api"
	"noops/internal/apiclient"
	"noops/internal/apitype"
	"noops/internal/autoscale"
	"noops/internal/buildbox"
	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/events"
	"noops/internal/functions"
	"noops/internal/gateway"
	"noops/internal/gateway/ban"
	"noops/internal/identity"
	"noops/internal/identity/ca"
	"noops/internal/identity/workload"
	"noops/internal/image"
	"noops/internal/netns"
	"noops/internal/notify"
	"noops/internal/observe/export"
	"noops/internal/observe/history"
	"noops/internal/observe/logstore"
	"noops/internal/observe/metrics"
	"noops/internal/observe/otlp"
	"noops/internal/observe/tracestore"
	"noops/internal/registry"
	"noops/internal/runtime/runc"
	"noops/internal/shield"
	"noops/internal/stack"
	"noops/internal/store"
	"noops/internal/store/sqlite"
	"noops/internal/supervisor"

	// The built-in buildpacks register themselves.
	_ "noops/internal/build/golang"
	_ "noops/internal/build/node"
	_ "noops/internal/build/procfile"
	_ "noops/internal/build/python"
	_ "noops/internal/build/static"
)

// Config is the server's configuration.
type Config struct {
	Data   string // data folder (state, images, logs, CA)
	Domain string // apps are served at <app>.<Domain>
	HTTPS  string // HTTPS listen address
	HTTP   string // HTTP listen address ("" or "off" disables)
	Subnet string // sandbox network
	Bridge string // host bridge of the sandbox network ("" → noops0)
	// The build network: build steps that fetch packages reach the
	// outside through NAT here ("" → noopsb0, or Bridge+"b"; 10.89.0.0/16).
	BuildSubnet string
	BuildBridge string
	StackDebs   string   // downloaded Debian packages, shareable between data folders ("" → DATA/stacks/debs)
	BuildCache  string   // caches shared by every app's builds (Go's), shareable between data folders ("" → DATA/cache/.shared)
	Runc        string   // runc binary ("" → on PATH)
	PluginDirs  []string // CNI plugin folders
	Shim        []string // command that runs the sandbox shim (default: this binary's `shim`)
	Logger      *slog.Logger
	Version     string

	// Tuning, mostly for tests.
	StartTimeout  time.Duration
	DeviceCertTTL time.Duration // device certificates (default 1h)
	WorkloadTTL   time.Duration // workload SVIDs (default 1h)
	// Internal is the gateway's internal mTLS listener for calls between
	// workloads ("" → DefaultInternal; "off" disables it).
	Internal string
	// Protection configures the WAF, the ban list and security
	// notifications; Limits the gateway's request hygiene.
	Protection Protection
	Limits     gateway.Limits
	// Events configures the event bus (embedded NATS or --nats).
	Events Events
	// Observe configures the telemetry stores and the OTLP export.
	Observe Observe
}

func (c Config) runc() string {
	if c.Runc == "" {
		return "runc"
	}
	return c.Runc
}

// App is a running platform.
type App struct {
	cfg Config
	log *slog.Logger

	lock      *lock
	store     store.Store
	ca        *ca.CA
	identity  *identity.Service
	access    *access.Access
	workload  *workload.Provider
	firewall  *firewall
	images    *image.Store
	registry  *registry.Registry
	stacks    *stack.Manager
	net       *netns.Network
	buildNet  *netns.Network
	driver    *runc.Driver
	builds    *buildbox.Box
	gateway   *gateway.Gateway
	shield    *shield.Shield
	bus       *events.Bus
	functions *functions.Layer
	bans      *ban.List
	notify    *notify.Notifier
	super     *supervisor.Supervisor
	metrics   *metrics.Metrics
	logs      *logstore.Store                      // observe.go
	traces    *tracestore.Store                    // observe.go
	history   *history.DB                          // observe.go
	otlp      *otlp.Receiver                       // otlp.go
	otlpGRPC  *grpc.Server                         // otlp.go
	export    *export.Exporter                     // observe.go, when --otlp-endpoint is set
	batcher   *batcher                             // exportbatch.go
	watch     *watch                               // watch.go: monitors and alerts
	scaler    atomic.Pointer[autoscale.Autoscaler] // read by the gateway's requests
	plane     *control.Plane
	api       *http.Server
	apiLn     net.Listener

	started []component
}

type component struct {
	name string
	stop func(context.Context) error
}

// New checks the machine and configuration; Start does the work.
func New(cfg Config) (*App, error) {
	if cfg.Data == "" {
		return nil, errkind.Errorf(errkind.Invalid, "no data folder given")
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.HTTPS == "" {
		cfg.HTTPS = ":443"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if len(cfg.Shim) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the noops binary for the sandbox shim: %w", err)
		}
		cfg.Shim = []string{exe, "shim"}
	}
	abs, err := filepath.Abs(cfg.Data)
	if err != nil {
		return nil, fmt.Errorf("resolving data folder: %w", err)
	}
	cfg.Data = abs
	if err := Preflight(cfg); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: cfg.Logger, metrics: metrics.New()}
	a.watch = newWatch(a)
	return a, nil
}

func (a *App) path(elem ...string) string {
	return filepath.Join(append([]string{a.cfg.Data}, elem...)...)
}

// Start brings the platform up. On error everything started is stopped.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			if serr := a.Stop(context.WithoutCancel(ctx)); serr != nil {
				a.log.Warn("stopping after a failed start", "err", serr)
			}
		}
	}()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"data folder", a.startData},
		{"store", a.startStore},
		{"certificate authority", a.startCA},
		{"access", a.startAccess},
		{"image store", a.startImages},
		{"registry", a.startRegistry},
		{"stacks", a.startStacks},
		{"network", a.startNetwork},
		{"runtime", a.startRuntime},
		{"build sandboxes", a.startBuilds},
		{"telemetry", a.startTelemetry},
		{"shield", a.startShield},
		{"events", a.startEvents},
		{"gateway", a.startGateway},
		{"app firewall", a.startFirewall},
		{"supervisor", a.startSupervisor},
		{"autoscaler", a.startAutoscaler},
		{"control plane", a.startControl},
		{"monitors and alerts", a.startWatch},
		{"admin API", a.startAPI},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			if errkind.Of(err) != errkind.Internal {
				return err
			}
			return fmt.Errorf("starting %s: %w", s.name, err)
		}
	}
	a.log.Info("noops is serving", "data", a.cfg.Data, "https", a.HTTPSAddr(), "domain", a.cfg.Domain)
	return nil
}

func (a *App) started1(name string, stop func(context.Context) error) {
	a.started = append(a.started, component{name: name, stop: stop})
}

// Stop stops what was started, in reverse order. Sandboxes keep running
// and are adopted by the next server.
func (a *App) Stop(ctx context.Context) error {
	var errs []error
	for i := len(a.started) - 1; i >= 0; i-- {
		c := a.started[i]
		if err := c.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", c.name, err))
		}
	}
	a.started = nil
	return errors.Join(errs...)
}

// StopSandboxes stops every app's sandboxes (for `noops server
// --stop-sandboxes` and tests); a plain Stop leaves them running.
func (a *App) StopSandboxes(ctx context.Context) error {
	if a.super == nil {
		return nil
	}
	if err := a.super.StopAll(ctx); err != nil {
		return err
	}
	if a.firewall != nil {
		// No sandbox is left to confine.
		return a.firewall.fw.Close()
	}
	return nil
}

func (a *App) startData(context.Context) error {
	for _, d := range []string{a.cfg.Data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating data folder %s: %w", d, err)
		}
	}
	l, err := lockData(a.cfg.Data)
	if err != nil {
		return err
	}
	a.lock = l
	a.started1("data folder lock", func(context.Context) error { return l.release() })
	return nil
}

func (a *App) startStore(context.Context) error {
	db, err := sqlite.Open(a.path("state.db"))
	if err != nil {
		return err
	}
	a.store = eventLog{Store: db, a: a}
	a.started1("store", func(context.Context) error { return db.Close() })
	return nil
}

func (a *App) startCA(context.Context) error {
	c, err := ca.Open(a.path("ca"), time.Now)
	if err != nil {
		return err
	}
	a.ca = c
	return nil
}

// startAccess opens the identity store and the access layer that guards
// every app and the remote API.
func (a *App) startAccess(ctx context.Context) error {
	a.identity = identity.New(identity.Config{Domain: a.cfg.Domain, Issuer: a.ca, Logger: a.log, DeviceCertTTL: a.cfg.DeviceCertTTL,
		OnFailure: func(addr, user, reason string) {
			if a.shield != nil { // failed sign-ins strike the client (ban list)
				a.shield.LoginFailed(addr, user, reason)
			}
		}}, a.store)
	a.access = access.New(access.Config{Identity: a.identity, Audit: a.store, Logger: a.log,
		WAFHits: func(addr string) int {
			if a.shield == nil {
				return 0
			}
			return a.shield.WAFHits(addr)
		}})
	if err := a.access.Start(ctx); err != nil {
		return err
	}
	a.started1("access", a.access.Stop)
	a.workload = workload.New(workload.Config{Dir: a.path("identity"), Domain: a.cfg.Domain, Issuer: a.ca, TTL: a.cfg.WorkloadTTL, Logger: a.log})
	if err := a.workload.Start(ctx); err != nil {
		return err
	}
	a.started1("workload identities", a.workload.Stop)
	return nil
}

func (a *App) startImages(context.Context) error {
	im, err := image.Open(a.path("images"))
	if err != nil {
		return err
	}
	a.images = im
	return nil
}

func (a *App) startRegistry(context.Context) error {
	r, err := registry.New(registry.Config{Dir: a.path("registry"), Layout: a.path("images"), Images: a.images, Logger: a.log})
	if err != nil {
		return err
	}
	a.registry = r
	return nil
}

func (a *App) startStacks(context.Context) error {
	m, err := stack.Open(stack.Options{Dir: a.path("stacks"), Images: a.images, Logger: a.log, Debs: a.cfg.StackDebs})
	if err != nil {
		return err
	}
	a.stacks = m
	return nil
}

func (a *App) startNetwork(context.Context) error {
	// IPMasq gives sandboxes a default route, for the egress their
	// manifests allow; the app firewall rejects everything else.
	n, err := netns.New(netns.Config{Bridge: a.cfg.Bridge, Subnet: a.cfg.Subnet, IPMasq: true, PluginDirs: a.cfg.PluginDirs, StateDir: a.path("net")})
	if err != nil {
		return err
	}
	a.net = n
	// Stopped last of the sandbox parts: it releases the bridge and the
	// namespace mount only once no sandbox is attached.
	a.started1("network", n.Close)
	return nil
}

func (a *App) startRuntime(context.Context) error {
	d, err := runc.New(runc.Config{Root: a.path("sandboxes"), Runc: a.cfg.Runc, Shim: a.cfg.Shim, Logger: a.log})
	if err != nil {
		return err
	}
	a.driver = d
	return nil
}

// startBuilds makes the build network (NAT'd, for package registries) and
// the sandboxes build steps run in. Namespaces that a crashed server left
// on it are removed: builds do not outlive their server.
func (a *App) startBuilds(ctx context.Context) error {
	bridge := a.cfg.BuildBridge
	if bridge == "" {
		bridge = "noopsb0"
		if a.cfg.Bridge != "" {
			bridge = a.cfg.Bridge + "b"
		}
	}
	subnet := a.cfg.BuildSubnet
	if subnet == "" {
		subnet = "10.89.0.0/16"
	}
	n, err := netns.New(netns.Config{Bridge: bridge, Subnet: subnet, IPMasq: true, PluginDirs: a.cfg.PluginDirs, StateDir: a.path("buildnet")})
	if err != nil {
		return err
	}
	left, err := n.List()
	if err != nil {
		return err
	}
	for _, id := range left {
		if err := n.Teardown(ctx, id); err != nil {
			a.log.Warn("removing a build namespace left by an earlier server", "id", id, "err", err)
		}
	}
	a.buildNet = n
	a.started1("build network", n.Close)
	a.builds = buildbox.New(buildbox.Config{Driver: a.driver, Network: n, Logger: a.log})
	// Builds reach package registries, and nothing of this machine or its
	// networks: not the app sandboxes, not the host, not private ranges,
	// only the resolvers they are given.
	var allow []netip.AddrPort
	for _, ns := range a.builds.Nameservers() {
		if !ns.IsLoopback() {
			allow = append(allow, netip.AddrPortFrom(ns, 53))
		}
	}
	table := "noops_" + bridge
	fw := netns.FirewallConfig{Table: table, Bridge: n.Bridge(), Build: n.Subnet(), Protected: []netip.Prefix{a.net.Subnet()}, Allow: allow}
	if err := netns.ApplyFirewall(fw); err != nil {
		return fmt.Errorf("applying the build firewall: %w", err)
	}
	a.started1("build firewall", func(context.Context) error { return netns.RemoveFirewall(table) })
	return nil
}

func (a *App) startGateway(ctx context.Context) error {
	gc := gateway.Config{HTTPSAddr: a.cfg.HTTPS, HTTPAddr: a.cfg.HTTP, Domain: a.cfg.Domain, TLS: a.ca.GetCertificate, Logger: a.log,
		Waker: waker{a}, ColdStart: a.metrics.ColdStart, Observe: a.observed, Guard: healthGuard{a},
		Shield: chain{a.shield, a.functions}, Door: gateway.DoorFunc(a.banned), Strike: a.shield.Strike, Limits: a.cfg.Limits,
		InternalPlatform: internalPlatform{a}}
	if a.cfg.Internal != "off" {
		gc.InternalAddr = a.cfg.Internal
		if gc.InternalAddr == "" {
			gc.InternalAddr = DefaultInternal
		}
		gc.InternalTLS = internalTLS(a.ca, bridgeAddr(a.net.Subnet()))
		gc.InternalFrom = []netip.Prefix{a.net.Subnet(), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	g := gateway.New(gc)
	g.Handle(registry.Host(a.cfg.Domain), a.registry) // push and pull images: crane, skopeo
	a.ca.Allow(g.HasHost)
	a.ca.Fallback(a.cfg.Domain) // unknown apps get a 404 page over valid TLS
	if err := g.Start(ctx); err != nil {
		return err
	}
	a.gateway = g
	a.started1("gateway", g.Stop)
	return nil
}

func (a *App) startSupervisor(ctx context.Context) error {
	var env []string
	if ln := a.gateway.InternalAddr(); ln != nil {
		u := internalURL(bridgeAddr(a.net.Subnet()), ln)
		env = append(env, "NOOPS_GATEWAY_INTERNAL="+u, "NOOPS_EVENTS_URL="+strings.TrimSuffix(u, "/")+strings.TrimSuffix(functions.EventsPrefix, "/"))
		env = append(env, otelEnv(strings.TrimSuffix(u, "/")+OTLPPrefix)...)
	}
	s := supervisor.New(supervisor.Config{LogDir: a.path("logs"), StartTimeout: a.cfg.StartTimeout, Logger: a.log, Runner: a.driver,
		Guard: guards{a.access, a.shield, a.functions, a.watch}, Identities: a.workload, Firewall: a.firewall, Env: env},
		a.store, a.driver, a.net, a.images, a.gateway)
	if err := s.Start(ctx); err != nil {
		return err
	}
	a.super = s
	a.started1("supervisor", s.Stop)
	return nil
}

func (a *App) startAutoscaler(ctx context.Context) error {
	s := autoscale.New(autoscale.Config{Gateway: a.gateway, Scaler: a.super, Apps: a.super, Logger: a.log})
	if err := s.Start(ctx); err != nil {
		return err
	}
	a.scaler.Store(s)
	a.started1("autoscaler", s.Stop)
	return nil
}

// waker gives the gateway, which starts before it, the autoscaler's Wake.
type waker struct{ a *App }

func (w waker) Wake(app string) {
	if s := w.a.scaler.Load(); s != nil {
		s.Wake(app)
	}
}

func (a *App) startControl(ctx context.Context) error {
	p := control.New(control.Config{Data: a.cfg.Data, BuildCache: a.cfg.BuildCache, Domain: a.cfg.Domain, Port: portSuffix(a.HTTPSAddr()), Logger: a.log,
		Autoscaler: a.scaler.Load(), Metrics: a.metrics},
		a.store, a.images, a.stacks, a.builds, a.super)
	if err := p.Start(ctx); err != nil {
		return err
	}
	a.plane = p
	a.started1("control plane", p.Stop)
	return nil
}

func (a *App) startAPI(context.Context) error {
	sock := apiclient.SocketPath(a.cfg.Data)
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing stale socket %s: %w", sock, err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("restricting %s: %w", sock, err)
	}
	cfg := api.Config{Plane: a.plane, Audit: a.store, Events: a.store, Logs: observeAPI{a}, Observe: observeAPI{a}, Capture: a.capture,
		Status: a.status, CARoot: a.ca.RootPEM, Registry: a.registryInfo, Metrics: a.metrics.Handler(), Logger: a.log, Identity: a.identity,
		Bans: a.bans, Bus: a.bus}
	h := api.Handler(cfg)
	// The same API over mTLS for remote devices, at api.<domain>.
	remote := cfg
	remote.Remote = a.access
	a.gateway.Handle(APIHost(a.cfg.Domain), api.Handler(remote))
	srv := &http.Server{Handler: h, ConnContext: api.ConnContext, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin API stopped", "err", err)
		}
	}()
	a.api, a.apiLn = srv, ln
	a.started1("admin API", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx) // waits for requests in flight (deploys stream until done)
		_ = os.Remove(sock)
		return err
	})
	return nil
}

func (a *App) status() apitype.Status {
	s := apitype.Status{Version: a.cfg.Version, Domain: a.cfg.Domain, HTTPS: a.HTTPSAddr(), Data: a.cfg.Data, Pid: os.Getpid()}
	if _, h := a.gateway.Addr(); h != nil {
		s.HTTP = h.String()
	}
	return s
}

func (a *App) registryInfo() apitype.Registry {
	return apitype.Registry{Host: registry.Host(a.cfg.Domain) + portSuffix(a.HTTPSAddr()), User: registry.User, Token: a.registry.Token()}
}

// HTTPSAddr is the address the gateway serves HTTPS on.
func (a *App) HTTPSAddr() string {
	if a.gateway == nil {
		return ""
	}
	if h, _ := a.gateway.Addr(); h != nil {
		return h.String()
	}
	return ""
}

// portSuffix is ":PORT" for URLs, or "" for 443.
func portSuffix(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" || port == "" {
		return ""
	}
	return ":" + port
}

// APIHost is the host name of the remote admin API.
func APIHost(domain string) string { return "api." + domain }

// Domain is the domain apps are served under.
func (a *App) Domain() string { return a.cfg.Domain }

// RootPEM is the internal CA's root certificate.
func (a *App) RootPEM() []byte { return a.ca.RootPEM() }

// Images is the platform's image store (for tests that look inside images).
func (a *App) Images() *image.Store { return a.images }

// Stacks is the platform's stack manager (for tests).
func (a *App) Stacks() *stack.Manager { return a.stacks }
