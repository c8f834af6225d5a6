// Package testenv runs the whole platform in one process for integration
// tests: a real store, real runc sandboxes on a private CNI bridge, the
// real gateway on loopback ports, and a typed API client. Tests that use it
// need root, runc and the CNI plugins (see need.Sandbox).
package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/apiclient"
	"noops/internal/apitype"
	"noops/internal/app"
	"noops/internal/source"
	"noops/internal/testenv/need"
)

// Env is a running platform.
type Env struct {
	App    *app.App
	Client *apiclient.Client
	Data   string
	Domain string
	HTTPS  string // gateway address, 127.0.0.1:port
	Roots  *x509.CertPool
	cfg    app.Config
}

// Options tune an Env.
type Options struct {
	StartTimeout  time.Duration // per-sandbox health deadline (default 20s)
	DeviceCertTTL time.Duration // device certificates' lifetime (default the platform's)
	WorkloadTTL   time.Duration // workload SVIDs' lifetime (default the platform's)
	// Configure, when set, changes the platform's configuration before it
	// starts (telemetry intervals, notification sinks, …).
	Configure func(*app.Config)
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds cmd/noops once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		// One stable place per machine (go build's cache makes a rebuild
		// cheap); built beside it and renamed so that test processes running
		// at the same time never see half a binary.
		dir := filepath.Join(os.TempDir(), "noops-testbin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		tmp, err := os.CreateTemp(dir, "noops-*")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		cmd := exec.Command("go", "build", "-o", tmp.Name(), "noops/cmd/noops")
		cmd.Dir = RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building noops: %v\n%s", err, out)
			return
		}
		binary = filepath.Join(dir, "noops")
		if err := os.Rename(tmp.Name(), binary); err != nil {
			buildErr = err
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// RepoRoot is the module's root folder.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		t.Fatal("cannot find the repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Example returns the path of examples/NAME.
func Example(t testing.TB, name string) string {
	return filepath.Join(RepoRoot(t), "examples", name)
}

// Start runs a platform for the test and stops it, with all its sandboxes,
// when the test ends.
func Start(t *testing.T, opts Options) *Env {
	t.Helper()
	need.Sandbox(t)
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 20 * time.Second
	}
	ended := new(atomic.Bool)
	t.Cleanup(func() { ended.Store(true) }) // runs last
	data, err := os.MkdirTemp("", "noops-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	cfg := config(t, data, testWriter{t, ended}, opts.StartTimeout)
	cfg.DeviceCertTTL = opts.DeviceCertTTL
	cfg.WorkloadTTL = opts.WorkloadTTL
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	e := &Env{Data: data, Domain: cfg.Domain, cfg: cfg}
	e.start(t)
	cfg.HTTPS = e.HTTPS // a restart keeps the port
	e.cfg = cfg
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if e.App == nil {
			return
		}
		if err := e.App.StopSandboxes(ctx); err != nil {
			t.Errorf("stopping sandboxes: %v", err)
		}
		if err := e.App.Stop(ctx); err != nil {
			t.Errorf("stopping platform: %v", err)
		}
	})
	return e
}

// config is the platform configuration of a test or benchmark whose data
// folder is data and whose platform log goes to log. Each gets its own
// bridge and subnets (in the range of this package: see netns's
// newTestNet) so that test packages running at the same time do not meet.
func config(t testing.TB, data string, log io.Writer, startTimeout time.Duration) app.Config {
	n := rand.IntN(200) + 20
	return app.Config{
		Data:         data,
		Domain:       "test.localhost",
		HTTPS:        "127.0.0.1:0",
		HTTP:         "off",
		Subnet:       fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), n),
		BuildSubnet:  fmt.Sprintf("10.%d.%d.0/24", 150+rand.IntN(50), n),
		StackDebs:    filepath.Join(os.TempDir(), "noops-test-debs"),       // downloaded once per machine
		BuildCache:   filepath.Join(os.TempDir(), "noops-test-buildcache"), // Go compiles each package once per machine
		Bridge:       fmt.Sprintf("nt%d%d", os.Getpid()%10000, n),
		Shim:         []string{Binary(t), "shim"},
		Logger:       slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo})),
		StartTimeout: startTimeout,
		Version:      "test",
		Internal:     ":0", // tests run side by side: any free port
	}
}

func (e *Env) start(t testing.TB) {
	t.Helper()
	a, err := app.New(e.cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("starting platform: %v", err)
	}
	e.App = a
	e.HTTPS = a.HTTPSAddr()
	e.Client = apiclient.New(e.Data)
	e.Roots = x509.NewCertPool()
	if !e.Roots.AppendCertsFromPEM(a.RootPEM()) {
		t.Fatal("CA root is not PEM")
	}
}

// Restart stops the platform, leaving its sandboxes running as a crash
// would, and starts a new one on the same data folder.
func (e *Env) Restart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.App.Stop(ctx); err != nil {
		t.Fatalf("stopping platform: %v", err)
	}
	e.App = nil
	e.start(t)
}

// Deploy packs dir and deploys it as app.
func (e *Env) Deploy(t testing.TB, dir, app string) (apitype.DeployEvent, []string, error) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := source.Pack(dir, &buf); err != nil {
		t.Fatalf("packing %s: %v", dir, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	var log []string
	ev, err := e.Client.Deploy(context.Background(), app, bytes.NewReader(buf.Bytes()), int64(buf.Len()), hex.EncodeToString(sum[:]),
		func(ev apitype.DeployEvent) { log = append(log, ev.Stage+ev.Line) })
	return ev, log, err
}

// HTTPClient trusts only the platform's CA and dials the gateway whatever
// the host name says.
func (e *Env) HTTPClient() *http.Client {
	addr := e.HTTPS
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: e.Roots, MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 16,
		},
	}
}

// URL is the HTTPS URL of path on app.
func (e *Env) URL(app, path string) string {
	_, port, _ := net.SplitHostPort(e.HTTPS)
	return "https://" + app + "." + e.Domain + ":" + port + path
}

// Get fetches path from app through the gateway and returns status and body.
func (e *Env) Get(t testing.TB, app, path string) (int, string) {
	t.Helper()
	resp, err := e.HTTPClient().Get(e.URL(app, path))
	if err != nil {
		t.Fatalf("GET %s: %v", e.URL(app, path), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testWriter sends the platform's log to the test's log while the test
// runs, and drops what comes after it ended.
type testWriter struct {
	t    *testing.T
	done *atomic.Bool
}

func (w testWriter) Write(b []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(bytes.TrimRight(b, "\n")))
	}
	return len(b), nil
}
