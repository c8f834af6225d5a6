package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"noops/internal/image"
)

// testHost is the registry's name in references. Not under .localhost:
// go-containerregistry talks plain HTTP to *.localhost and loopback names.
const testHost = "registry.noops.test"

// testRegistry is a Registry behind an httptest TLS server, over an image
// store in a temporary folder, and crane options that reach it.
type testRegistry struct {
	t       *testing.T
	dir     string // Config.Dir
	layout  string // the image store's folder
	store   *image.Store
	reg     *Registry
	handler atomic.Pointer[Registry] // what the server serves; restart swaps it
	srv     *httptest.Server
	tr      *http.Transport
	host    string // testHost:port
	tune    func(*Config)
	clock   *fakeClock
	logs    *logBuffer
}

func newTestRegistry(t *testing.T, tune func(*Config)) *testRegistry {
	t.Helper()
	tr := &testRegistry{t: t, dir: filepath.Join(t.TempDir(), "registry"), layout: filepath.Join(t.TempDir(), "images"),
		tune: tune, clock: &fakeClock{now: time.Now()}, logs: &logBuffer{}}
	tr.open()
	tr.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.handler.Load().ServeHTTP(w, r)
	}))
	tr.srv.EnableHTTP2 = true
	tr.srv.StartTLS()
	t.Cleanup(tr.srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(tr.srv.Certificate())
	addr := tr.srv.Listener.Addr().String()
	tr.tr = &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		// httptest's certificate is for example.com.
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "example.com"},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.tr.CloseIdleConnections)
	_, port, _ := net.SplitHostPort(addr)
	tr.host = testHost + ":" + port
	return tr
}

// open makes a new image store and Registry over the folders, as a
// server (re)start does.
func (tr *testRegistry) open() {
	tr.t.Helper()
	st, err := image.Open(tr.layout)
	if err != nil {
		tr.t.Fatalf("image.Open: %v", err)
	}
	cfg := Config{Dir: tr.dir, Layout: tr.layout, Images: st, Now: tr.clock.Now,
		Logger: slog.New(slog.NewTextHandler(tr.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if tr.tune != nil {
		tr.tune(&cfg)
	}
	reg, err := New(cfg)
	if err != nil {
		tr.t.Fatalf("New: %v", err)
	}
	tr.store, tr.reg = st, reg
	tr.handler.Store(reg)
}

// restart opens the registry again on the same folders.
func (tr *testRegistry) restart() { tr.open() }

// ref is a reference to repo:tag (or repo@digest) in the registry.
func (tr *testRegistry) ref(s string) string { return tr.host + "/" + s }

// crane returns options that reach the registry with the right
// credentials, or with auth when given.
func (tr *testRegistry) crane(auth ...authn.Authenticator) []crane.Option {
	a := authn.Authenticator(&authn.Basic{Username: User, Password: tr.reg.Token()})
	if len(auth) > 0 {
		a = auth[0]
	}
	return []crane.Option{crane.WithTransport(tr.tr), crane.WithAuth(a)}
}

// remote returns the same for pkg/v1/remote.
func (tr *testRegistry) remote() []remote.Option {
	return []remote.Option{remote.WithTransport(tr.tr), remote.WithAuth(&authn.Basic{Username: User, Password: tr.reg.Token()})}
}

// do sends a raw request; user "" sends no credentials.
func (tr *testRegistry) do(method, path string, body io.Reader, header http.Header, user, pass string) (*http.Response, string) {
	tr.t.Helper()
	req, err := http.NewRequest(method, "https://"+tr.host+path, body)
	if err != nil {
		tr.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := (&http.Client{Transport: tr.tr}).Do(req)
	if err != nil {
		tr.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tr.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return res, string(b)
}

// authed sends a raw request with the right credentials.
func (tr *testRegistry) authed(method, path string, body io.Reader, header http.Header) (*http.Response, string) {
	tr.t.Helper()
	return tr.do(method, path, body, header, User, tr.reg.Token())
}

// files lists the names in a folder under Config.Dir.
func (tr *testRegistry) files(sub string) []string {
	tr.t.Helper()
	des, err := os.ReadDir(filepath.Join(tr.dir, sub))
	if err != nil {
		tr.t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
