package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"noops/internal/errkind"
	"noops/internal/gateway"
	"noops/internal/netns"
	"noops/internal/runtime"
	"noops/internal/runtime/fake"
	"noops/internal/spec"
	"noops/internal/store"
	"noops/internal/store/sqlite"
)

// The tests below run real processes through the fake driver (host
// processes): this test binary itself, in the role helperEnv names.
const helperEnv = "SUPERVISOR_TEST_PROCESS"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(helper(role))
	}
	os.Exit(m.Run())
}

// helper plays one process of an app: "web" serves HTTP on 127.0.0.1:$PORT,
// "worker" logs a line and runs until SIGTERM, "crash" exits 3 at once,
// "release" prints a line on each stream and exits $RELEASE_EXIT, "hang"
// sleeps.
func helper(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	rel := os.Getenv("NOOPS_RELEASE")
	switch role {
	case "web":
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
			return errors.Join(err, serr)
		}}
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "release %s\n", rel)
		})}
		go func() { <-ctx.Done(); srv.Close() }()
		_ = srv.Serve(ln)
		return 0
	case "worker":
		fmt.Printf("worker: release %s up\n", rel)
		<-ctx.Done()
		return 0
	case "crash":
		fmt.Fprintln(os.Stderr, "worker: cannot reach the queue")
		return 3
	case "release":
		code, _ := strconv.Atoi(os.Getenv("RELEASE_EXIT"))
		fmt.Printf("migrate: release %s: %s\n", rel, map[bool]string{true: "ok", false: "refused"}[code == 0])
		fmt.Fprintf(os.Stderr, "migrate: env MODE=%s\n", os.Getenv("MODE"))
		return code
	case "hang":
		time.Sleep(time.Hour)
		return 0
	}
	return 2
}

// testNet gives every sandbox the host's loopback address and remembers
// which namespaces exist.
type testNet struct {
	mu          sync.Mutex
	live        map[string]bool // created and not torn down
	attached    map[string]bool
	attachFails int // the next attaches that fail, as CNI would
}

func (n *testNet) Create(id string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.live[id] = true
	return "", nil
}

func (n *testNet) Attach(_ context.Context, id string) (netns.Attachment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.live[id] {
		return netns.Attachment{}, errkind.Errorf(errkind.NotFound, "no namespace %s", id)
	}
	if n.attachFails > 0 {
		n.attachFails--
		return netns.Attachment{}, errors.New("plugin type=\"bridge\" failed (add): injected failure")
	}
	n.attached[id] = true
	return netns.Attachment{IP: netip.MustParseAddr("127.0.0.1")}, nil
}

func (n *testNet) Teardown(_ context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.live, id)
	delete(n.attached, id)
	return nil
}

func (n *testNet) isAttached(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attached[id]
}

func (n *testNet) isLive(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.live[id]
}

type testImages struct {
	mu          sync.Mutex
	imgs        map[v1.Hash]v1.Image
	unpackFails int // the next unpacks that fail, as on a full disk
}

func (im *testImages) Get(d v1.Hash) (v1.Image, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if img, ok := im.imgs[d]; ok {
		return img, nil
	}
	return nil, errkind.Errorf(errkind.NotFound, "image %s not found", d)
}

func (im *testImages) Unpack(_ context.Context, d v1.Hash) ([]string, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.unpackFails > 0 {
		im.unpackFails--
		return nil, fmt.Errorf("unpacking layer %s: write /data/layers/x: no space left on device (injected)", d.Hex[:12])
	}
	return nil, nil
}

// testRouter records what the supervisor tells the gateway.
type testRouter struct {
	mu       sync.Mutex
	backends map[string][]gateway.Backend
	reason   map[string]string
}

func (r *testRouter) SetBackends(app string, b []gateway.Backend, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.backends[app] = slices.Clone(b)
	r.reason[app] = reason
}

func (r *testRouter) RemoveApp(app string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.backends, app)
	delete(r.reason, app)
}

func (r *testRouter) Drain(context.Context, string) error { return nil }

// routes returns the IDs the app is routed to and the gateway's reason.
func (r *testRouter) routes(app string) ([]string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, b := range r.backends[app] {
		ids = append(ids, b.ID)
	}
	return ids, r.reason[app]
}

// testRunner runs a release command as a host process, in the foreground.
type testRunner struct {
	net  *testNet
	mu   sync.Mutex
	runs []runtime.Spec
	// attached records whether each run's network was attached while it ran.
	attached []bool
}

func (r *testRunner) Run(ctx context.Context, sp runtime.Spec, stdout, stderr io.Writer) (runtime.Exit, error) {
	if err := sp.ValidateForeground(); err != nil {
		return runtime.Exit{}, err
	}
	r.mu.Lock()
	r.runs = append(r.runs, sp)
	r.attached = append(r.attached, r.net.isAttached(sp.ID))
	r.mu.Unlock()
	cmd := exec.CommandContext(ctx, sp.Args[0], sp.Args[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = sp.Env, "/", stdout, stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return runtime.Exit{}, ctx.Err()
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return runtime.Exit{Code: ee.ExitCode(), At: time.Now()}, nil
	case err != nil:
		return runtime.Exit{}, errkind.E(errkind.Invalid, err)
	}
	return runtime.Exit{At: time.Now()}, nil
}

func (r *testRunner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}

// harness is one supervisor over a real store and the fake driver.
type harness struct {
	t      *testing.T
	s      *Supervisor
	cfg    Config
	store  store.Store
	driver *fake.Driver
	faults *faultyDriver // the driver the supervisor uses: driver with injected failures
	net    *testNet
	images *testImages
	router *testRouter
	runner *testRunner
	exe    string
}

func newHarness(t *testing.T, tune func(*Config)) *harness {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ended := new(atomic.Bool)
	t.Cleanup(func() { ended.Store(true) }) // runs last
	n := &testNet{live: map[string]bool{}, attached: map[string]bool{}}
	h := &harness{t: t, store: st, driver: fake.New(), net: n, exe: exe,
		images: &testImages{imgs: map[v1.Hash]v1.Image{}},
		router: &testRouter{backends: map[string][]gateway.Backend{}, reason: map[string]string{}},
		runner: &testRunner{net: n}}
	h.cfg = Config{
		LogDir:         t.TempDir(),
		StartTimeout:   10 * time.Second,
		StopGrace:      2 * time.Second,
		DrainTimeout:   time.Second,
		BackoffMin:     20 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
		CheckInterval:  200 * time.Millisecond,
		WorkerSettle:   300 * time.Millisecond,
		ReleaseTimeout: 20 * time.Second,
		Runner:         h.runner,
		Logger:         slog.New(slog.NewTextHandler(testLog{t, ended}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if tune != nil {
		tune(&h.cfg)
	}
	h.start(h.driver)
	return h
}

func (h *harness) start(d *fake.Driver) {
	h.t.Helper()
	h.faults = &faultyDriver{Driver: d}
	h.s = New(h.cfg, h.store, h.faults, h.net, h.images, h.router)
	if err := h.s.Start(context.Background()); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	s := h.s
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.StopAll(ctx); err != nil {
			h.t.Errorf("StopAll: %v", err)
		}
		if err := s.Stop(ctx); err != nil {
			h.t.Errorf("Stop: %v", err)
		}
		// A sandbox that a background reconcile started after StopAll is
		// left running by Stop, as a server's would be: remove what the
		// machine still runs so that no helper process outlives the test.
		if sts, err := d.List(ctx); err == nil {
			for _, st := range sts {
				if st.Status == runtime.Running {
					h.t.Logf("removing sandbox %s left running", st.ID)
				}
				_ = d.Delete(ctx, st.ID)
			}
		}
	})
}

// proc is a process of a test image: the helper in role, plus env.
type proc struct {
	role string
	env  map[string]string
}

// image stores an image whose processes label declares procs (none: no
// label, the entrypoint is the web helper) and returns its digest.
func (h *harness) image(procs map[string]proc) string {
	h.t.Helper()
	// GORACE: a race-enabled helper would otherwise wait a second on exit.
	cfg := v1.Config{Env: []string{"MODE=image", "GORACE=atexit_sleep_ms=0"}, WorkingDir: "/"}
	if procs == nil {
		cfg.Entrypoint = []string{h.exe}
		cfg.Env = append(cfg.Env, helperEnv+"=web")
	} else {
		label := map[string]labelProcess{}
		for typ, p := range procs {
			env := map[string]string{helperEnv: p.role}
			for k, v := range p.env {
				env[k] = v
			}
			cmd := []string{h.exe}
			if p.role == "missing" {
				cmd = []string{"/nonexistent/program"}
			}
			label[typ] = labelProcess{Command: cmd, Env: env}
		}
		b, err := json.Marshal(label)
		if err != nil {
			h.t.Fatal(err)
		}
		cfg.Labels = map[string]string{LabelProcesses: string(b)}
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: cfg})
	if err != nil {
		h.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		h.t.Fatal(err)
	}
	h.images.mu.Lock()
	h.images.imgs[d] = img
	h.images.mu.Unlock()
	return d.String()
}

// release records a new pending release of app (made on first use) with
// image and run, on a port of its own so that releases never share one.
func (h *harness) release(app, image string, run spec.Run, env map[string]string) store.Release {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.store.GetApp(ctx, app); errkind.Is(err, errkind.NotFound) {
		if _, err := h.store.CreateApp(ctx, store.App{Name: app, Replicas: 1}); err != nil {
			h.t.Fatal(err)
		}
	}
	run.Port = freePort(h.t)
	m := spec.Manifest{Run: run}
	m.Default()
	cfg, err := json.Marshal(m.Run)
	if err != nil {
		h.t.Fatal(err)
	}
	rel, err := h.store.CreateRelease(ctx, store.Release{App: app, Image: image, Config: cfg, Env: env, Status: store.StatusPending, Reason: "deploy"})
	if err != nil {
		h.t.Fatal(err)
	}
	return rel
}

// rollout rolls rel out and returns its progress lines.
func (h *harness) rollout(rel store.Release, replicas int) ([]string, error) {
	var mu sync.Mutex
	var lines []string
	err := h.s.Rollout(context.Background(), rel, replicas, func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	})
	return lines, err
}

func (h *harness) rolloutOK(rel store.Release, replicas int) []string {
	h.t.Helper()
	lines, err := h.rollout(rel, replicas)
	if err != nil {
		h.t.Fatalf("Rollout(release %d) = %v\nprogress:\n%s", rel.Number, err, strings.Join(lines, "\n"))
	}
	return lines
}

// byProcess splits the app's rows by process type.
func (h *harness) byProcess(app string) (web, worker []store.Sandbox) {
	for _, row := range h.s.Instances(app) {
		switch ProcessOf(row.ID) {
		case Web:
			web = append(web, row)
		case Worker:
			worker = append(worker, row)
		default:
			h.t.Errorf("Instances(%s) has %s, neither web nor worker", app, row.ID)
		}
	}
	return web, worker
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s", what)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type testLog struct {
	t    *testing.T
	done *atomic.Bool
}

func (w testLog) Write(b []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(bytes.TrimRight(b, "\n")))
	}
	return len(b), nil
}

func appProcs() map[string]proc {
	return map[string]proc{
		Web:     {role: "web"},
		Worker:  {role: "worker", env: map[string]string{"MODE": "worker"}},
		Release: {role: "release", env: map[string]string{"RELEASE_EXIT": "0"}},
	}
}

func indexOf(lines []string, substr string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, substr) })
}

// faultyDriver is the fake driver with injected failures of Start, as
// runc's would be (a full disk, a cgroup that cannot be made).
type faultyDriver struct {
	*fake.Driver
	mu         sync.Mutex
	startFails int // the next Starts that fail
}

func (f *faultyDriver) failStarts(n int) {
	f.mu.Lock()
	f.startFails = n
	f.mu.Unlock()
}

func (f *faultyDriver) Start(ctx context.Context, spec runtime.Spec) (runtime.State, error) {
	f.mu.Lock()
	fail := f.startFails > 0
	if fail {
		f.startFails--
	}
	f.mu.Unlock()
	if fail {
		return runtime.State{}, fmt.Errorf("starting sandbox %s: runc create: mkdir /run/runc: no space left on device (injected)", spec.ID)
	}
	return f.Driver.Start(ctx, spec)
}

// events returns the app's recorded events of kind.
func (h *harness) events(app, kind string) []store.Event {
	h.t.Helper()
	all, err := h.store.ListEvents(context.Background(), store.EventQuery{App: app})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []store.Event
	for _, e := range all {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}
