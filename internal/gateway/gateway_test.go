package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/errkind"
)

const testDomain = "localhost"

var (
	certOnce sync.Once
	testCert tls.Certificate
	testPool *x509.CertPool
)

// selfSigned returns a certificate for *.localhost made for the tests, and
// a pool that trusts it.
func selfSigned(testing.TB) (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "noops gateway test"},
			DNSNames:              []string{"localhost", "*.localhost", "*.hello.localhost", "hello.example.com"},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		testPool = x509.NewCertPool()
		testPool.AddCert(leaf)
	})
	return testCert, testPool
}

// testGateway is a started gateway on loopback and a client that reaches
// it whatever host a URL names.
type testGateway struct {
	*Gateway
	client *http.Client
	port   string // HTTPS port
}

func startGateway(t testing.TB, withHTTP bool, opts ...func(*Config)) *testGateway {
	t.Helper()
	cert, pool := selfSigned(t)
	cfg := Config{HTTPSAddr: "127.0.0.1:0", Domain: testDomain,
		TLS: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}
	if withHTTP {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	for _, o := range opts {
		o(&cfg)
	}
	g := New(cfg)
	if err := g.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	tg := &testGateway{Gateway: g}
	t.Cleanup(func() {
		// Idle HTTP/2 clients would hold Shutdown for a second after GOAWAY.
		tg.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	https, _ := g.Addr()
	_, port, _ := net.SplitHostPort(https.String())
	tg.port, tg.client = port, newClient(https.String(), pool, nil)
	return tg
}

// newClient dials addr for every URL; tlsConf, when given, replaces the
// default TLS settings.
func newClient(addr string, pool *x509.CertPool, tlsConf *tls.Config) *http.Client {
	if tlsConf == nil {
		tlsConf = &tls.Config{RootCAs: pool}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig:     tlsConf,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// http1 returns a copy of tg whose client speaks HTTP/1.1 only, as wrk does.
func (tg *testGateway) http1() *testGateway {
	https, _ := tg.Addr()
	_, pool := selfSigned(nil)
	c := newClient(https.String(), pool, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	return &testGateway{Gateway: tg.Gateway, port: tg.port, client: c}
}

// url is https://<host>:<port><path> on the test gateway.
func (tg *testGateway) url(host, path string) string {
	return "https://" + host + ":" + tg.port + path
}

type response struct {
	status int
	header http.Header
	body   string
	proto  string
}

// get fetches url; it may run on any goroutine, so a transport failure is
// reported with Errorf and yields a zero response.
func (tg *testGateway) get(t testing.TB, url string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Errorf("NewRequest(%s): %v", url, err)
		return response{}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := tg.client.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return response{}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("reading %s: %v", url, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(body), proto: res.Proto}
}

// upstream is a real HTTP server that answers with its name and records
// the headers of the last request.
type upstream struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	last http.Header
	host string
}

func newUpstream(t testing.TB, name string) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last, u.host = r.Header.Clone(), r.Host
		u.mu.Unlock()
		io.WriteString(w, name)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) backend() Backend {
	return Backend{ID: u.name, Addr: u.Listener.Addr().String()}
}

func (u *upstream) lastRequest() (http.Header, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.host
}

func TestStartBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cert, _ := selfSigned(t)
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
	tests := []struct {
		name       string
		https, htt string
	}{
		{"https port busy", busy.Addr().String(), ""},
		{"http port busy", "127.0.0.1:0", busy.Addr().String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{HTTPSAddr: tc.https, HTTPAddr: tc.htt, Domain: testDomain, TLS: getCert})
			err := g.Start(context.Background())
			if err == nil {
				g.Stop(context.Background())
				t.Fatal("Start on a busy port succeeded")
			}
			want := "listening on " + busy.Addr().String() + ": address already in use"
			if !errkind.Is(err, errkind.Conflict) || err.Error() != want {
				t.Errorf("Start = %v (kind %v), want %q (conflict)", err, errkind.Of(err), want)
			}
			if errkind.HintOf(err) == "" {
				t.Errorf("Start error %q has no hint", err)
			}
			if h, _ := g.Addr(); h != nil {
				t.Errorf("Addr after failed Start = %v, want nil", h)
			}
		})
	}
}

func TestStartWithoutTLS(t *testing.T) {
	g := New(Config{HTTPSAddr: "127.0.0.1:0"})
	if err := g.Start(context.Background()); !errkind.Is(err, errkind.Invalid) {
		t.Fatalf("Start without TLS = %v, want an invalid error", err)
	}
}

func TestHTTPSAndHTTP2(t *testing.T) {
	tg := startGateway(t, false)
	tg.SetBackends("hello", []Backend{newUpstream(t, "a").backend()}, "")
	res := tg.get(t, tg.url("hello.localhost", "/"), nil)
	if res.status != 200 || res.body != "a" {
		t.Fatalf("GET = %d %q, want 200 a", res.status, res.body)
	}
	if res.proto != "HTTP/2.0" {
		t.Errorf("protocol = %s, want HTTP/2.0 negotiated by ALPN", res.proto)
	}
	if got := res.header.Get("Strict-Transport-Security"); got != hstsValue {
		t.Errorf("Strict-Transport-Security = %q, want %q", got, hstsValue)
	}
	if got := res.header.Values("Strict-Transport-Security"); len(got) != 1 {
		t.Errorf("Strict-Transport-Security sent %d times, want once", len(got))
	}
}

func TestTLSVersions(t *testing.T) {
	tg := startGateway(t, false)
	tg.SetBackends("hello", []Backend{newUpstream(t, "a").backend()}, "")
	https, _ := tg.Addr()
	_, pool := selfSigned(t)
	tests := []struct {
		name    string
		max     uint16
		wantErr bool
	}{
		{"TLS 1.1 refused", tls.VersionTLS11, true},
		{"TLS 1.2 accepted", tls.VersionTLS12, false},
		{"TLS 1.3 accepted", tls.VersionTLS13, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(https.String(), pool, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tc.max})
			defer c.CloseIdleConnections()
			res, err := c.Get(tg.url("hello.localhost", "/"))
			if err == nil {
				res.Body.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("GET with TLS max %x: err = %v, want error %v", tc.max, err, tc.wantErr)
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	tg := startGateway(t, true)
	_, httpAddr := tg.Addr()
	c := newClient(httpAddr.String(), nil, nil)
	tests := []struct {
		name, url, want string
	}{
		{"root", "http://hello.localhost/", "https://hello.localhost:" + tg.port + "/"},
		{"path and query", "http://hello.localhost:8080/a/b?x=1&y=2", "https://hello.localhost:" + tg.port + "/a/b?x=1&y=2"},
		{"acme path still redirects", "http://hello.localhost/.well-known/acme-challenge/tok", "https://hello.localhost:" + tg.port + "/.well-known/acme-challenge/tok"},
		{"unknown host too", "http://other.example/", "https://other.example:" + tg.port + "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Get(tc.url)
			if err != nil {
				t.Fatalf("GET %s: %v", tc.url, err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != tc.want {
				t.Errorf("GET %s = %d Location %q, want 308 %q", tc.url, res.StatusCode, res.Header.Get("Location"), tc.want)
			}
		})
	}
}

func TestRedirectPort443(t *testing.T) {
	g := New(Config{Domain: testDomain})
	g.httpsPort = "" // as when bound to :443
	rec := httptest.NewRecorder()
	g.redirect(rec, httptest.NewRequest(http.MethodGet, "http://hello.localhost/x", nil))
	if got, want := rec.Header().Get("Location"), "https://hello.localhost/x"; rec.Code != 308 || got != want {
		t.Errorf("redirect = %d %q, want 308 %q", rec.Code, got, want)
	}
}

func TestStopClosesListeners(t *testing.T) {
	cert, _ := selfSigned(t)
	g := New(Config{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		TLS: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }})
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	https, httpAddr := g.Addr()
	if err := g.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, a := range []net.Addr{https, httpAddr} {
		if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("dial %s after Stop succeeded", a)
		}
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestServerLogLevels(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	h := slogHandlerFunc(func(level, msg string) { mu.Lock(); buf.WriteString(level + " " + msg + "\n"); mu.Unlock() })
	w := serverLogWriter{h}
	w.Write([]byte("http: TLS handshake error from 1.2.3.4:5: EOF\n"))
	w.Write([]byte("http: Accept error: too many open files\n"))
	want := "DEBUG http: TLS handshake error from 1.2.3.4:5: EOF\nWARN http: Accept error: too many open files\n"
	if buf.String() != want {
		t.Errorf("logged:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// slogHandlerFunc is a logger that hands every record's level and message to fn.
func slogHandlerFunc(fn func(level, msg string)) *slog.Logger { return slog.New(funcHandler(fn)) }

type funcHandler func(level, msg string)

func (h funcHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h funcHandler) Handle(_ context.Context, r slog.Record) error {
	h(r.Level.String(), r.Message)
	return nil
}
func (h funcHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h funcHandler) WithGroup(string) slog.Handler      { return h }
