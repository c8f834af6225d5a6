package shield

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"noops/internal/gateway"
	"noops/internal/gateway/ban"
	"noops/internal/gateway/waf"
	"noops/internal/notify"
	"noops/internal/spec"
	"noops/internal/store"
)

var (
	certOnce sync.Once
	testCert tls.Certificate
	testPool *x509.CertPool

	engineOnce sync.Once
	engine     *waf.Engine
	engineErr  error
)

// crs compiles the production rule set once for the package's tests.
func crs(t testing.TB) *waf.Engine {
	engineOnce.Do(func() { engine, engineErr = waf.New(waf.Config{Setup: Defaults}) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

func selfSigned() (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "noops shield test"},
			DNSNames: []string{"localhost", "*.localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true, IsCA: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		testPool = x509.NewCertPool()
		testPool.AddCert(leaf)
	})
	return testCert, testPool
}

// platform is a gateway with a shield and a ban list in front of one app
// ("app"), served by upstream.
type platform struct {
	gw     *gateway.Gateway
	shield *Shield
	bans   *ban.List
	addr   string // the gateway's HTTPS address
	pool   *x509.CertPool

	mu     sync.Mutex
	events []Event
}

type options struct {
	upstream http.Handler
	manifest spec.Config
	engine   *waf.Engine
	limits   gateway.Limits
	banStore ban.Store
	rules    map[ban.Trigger]ban.Rule
	allow    []netip.Prefix
	flood    int
	notifier *notify.Notifier
	// domain is the gateway's domain ("localhost" when empty); apps are
	// apps served besides "app", with the same manifest and upstream;
	// log receives the gateway's log (nil: discarded).
	domain string
	apps   []string
	log    *slog.Logger
}

// start runs a platform for the test; it stops when the test ends.
func start(t testing.TB, o options) *platform {
	t.Helper()
	if o.upstream == nil {
		o.upstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Write([]byte("ok"))
		})
	}
	if o.engine == nil {
		o.engine = crs(t)
	}
	up := httptest.NewServer(o.upstream)
	t.Cleanup(up.Close)
	cert, pool := selfSigned()
	p := &platform{pool: pool}
	var gw *gateway.Gateway
	p.bans = ban.New(ban.Config{Store: o.banStore, Rules: o.rules, Allow: o.allow,
		OnBan: func(b ban.Ban) {
			if pr, err := netip.ParsePrefix(b.Prefix); err == nil && gw != nil {
				gw.CloseClients(pr)
			}
			p.shield.OnBan(b)
		},
		OnLift: func(b ban.Ban) { p.shield.OnLift(b) }})
	if err := p.bans.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go p.bans.Run(ctx)
	flood := DefaultFlood
	if o.flood != 0 {
		flood.Limit = o.flood
	}
	sh, err := New(Config{Engine: o.engine, Bans: p.bans, Flood: flood, Notify: o.notifier,
		Page:    func(w http.ResponseWriter, r *http.Request, status int, why string) { gw.ShieldPage(w, r, status, why) },
		OnEvent: func(e Event) { p.mu.Lock(); p.events = append(p.events, e); p.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	p.shield = sh
	gw = gateway.New(gateway.Config{HTTPSAddr: "127.0.0.1:0", Domain: cmp.Or(o.domain, "localhost"), Logger: o.log,
		TLS:    func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		Door:   gateway.DoorFunc(func(a netip.Addr) bool { _, b := p.bans.Banned(a); return b }),
		Shield: sh,
		Limits: o.limits,
		Strike: func(a netip.Addr, kind, detail string) { sh.Strike(a, kind, detail) }})
	if err := sh.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(o.manifest)
	for _, app := range append([]string{"app"}, o.apps...) {
		if err := sh.SetRelease(store.Release{App: app, Number: 1, Config: cfg}); err != nil {
			t.Fatal(err)
		}
		gw.SetBackends(app, []gateway.Backend{{ID: app + "-1", Addr: up.Listener.Addr().String()}}, "")
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		gw.Stop(context.Background())
		sh.Stop(context.Background())
	})
	https, _ := gw.Addr()
	p.addr, p.gw = https.String(), gw
	return p
}

// client returns an HTTP/1.1 client that reaches the gateway for any host,
// from the given local address (127.0.0.x) so tests can be different
// clients.
func (p *platform) client(from string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", p.addr) },
			TLSClientConfig:   &tls.Config{RootCAs: p.pool, ServerName: "app.localhost"},
			ForceAttemptHTTP2: false, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
}

// dialTLS opens a raw TLS connection to the gateway from a local address.
func (p *platform) dialTLS(from string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return tls.DialWithDialer(d, "tcp", p.addr, &tls.Config{RootCAs: p.pool, ServerName: "app.localhost", NextProtos: []string{"http/1.1"}})
}

// eventsOf returns the events of a kind so far.
func (p *platform) eventsOf(kind string) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// eventFor returns the WAF event of a request ID, waiting briefly: the
// event is emitted after the response is written.
func (p *platform) eventFor(id string) *Event {
	for i := 0; i < 200; i++ {
		p.mu.Lock()
		for j := range p.events {
			if p.events[j].RequestID == id {
				e := p.events[j]
				p.mu.Unlock()
				return &e
			}
		}
		p.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
