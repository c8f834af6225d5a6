package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/netns"
	"noops/internal/runtime"
	"noops/internal/spec"
	"noops/internal/store"
)

// instance is one replica slot of an app: a sandbox ID that keeps its
// identity across restarts of its process.
type instance struct {
	id      string
	app     string
	proc    string // Web or Worker
	rel     store.Release
	run     spec.Run
	created time.Time

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// standby, when set, is the created sandbox the first launch starts
	// instead of making one (a cold start); launch clears it.
	standby *standby

	mu       sync.Mutex
	state    string // starting, healthy (web), running (worker), unhealthy, stopping, exited, backoff, crashloop
	addr     string // ip:port the gateway proxies to; web only
	pid      int
	restarts int
	lastExit string
	updated  time.Time
	draining bool // removed from routing on purpose (drain before stop)
	stopping bool // the supervisor is retiring it: tear down, do not restart
}

func (in *instance) set(state string, now time.Time) {
	in.mu.Lock()
	in.state, in.updated = state, now
	in.mu.Unlock()
}

func (in *instance) routable() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.proc == Web && in.state == "healthy" && !in.draining && in.addr != ""
}

// readyState is the state of an instance that is up: a web sandbox passes
// its health check, a worker has outlived its settle time.
func (in *instance) readyState() string {
	if in.proc == Web {
		return "healthy"
	}
	return "running"
}

// why says why the instance is not serving, for the gateway's 503 page.
func (in *instance) why() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch in.state {
	case "starting":
		return fmt.Sprintf("release %d is starting", in.rel.Number)
	case "backoff", "crashloop":
		return fmt.Sprintf("release %d crashed (%s) and restarts after a back-off", in.rel.Number, in.lastExit)
	case "unhealthy":
		return fmt.Sprintf("release %d fails its health check", in.rel.Number)
	}
	return ""
}

func (in *instance) row() store.Sandbox {
	in.mu.Lock()
	defer in.mu.Unlock()
	return store.Sandbox{ID: in.id, App: in.app, Release: in.rel.Number, State: in.state, Addr: in.addr,
		Restarts: in.restarts, LastExit: in.lastExit, Created: in.created, Updated: in.updated}
}

// Pid returns the sandbox's process id on the host, 0 when not running.
func (s *Supervisor) Pid(id string) int {
	st, err := s.driver.State(context.Background(), id)
	if err != nil || st.Status != runtime.Running {
		return 0
	}
	return st.Pid
}

// RunConfig decodes a release's run configuration.
func RunConfig(r store.Release) (spec.Run, error) {
	var run spec.Run
	if len(r.Config) > 0 {
		if err := json.Unmarshal(r.Config, &run); err != nil {
			return run, fmt.Errorf("decoding run config of release %d: %w", r.Number, err)
		}
	}
	m := spec.Manifest{Run: run}
	m.Default()
	return m.Run, nil
}

// newInstance adds an instance of rel running process type proc: a new
// sandbox ID, or id when it adopts a sandbox (its type then comes from id).
func (s *Supervisor) newInstance(rel store.Release, proc, id string) (*instance, error) {
	run, err := RunConfig(rel)
	if err != nil {
		return nil, err
	}
	if id == "" {
		id = sandboxID(rel.App, rel.Number, proc)
	} else {
		proc = ProcessOf(id)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	now := s.cfg.Now()
	in := &instance{id: id, app: rel.App, proc: proc, rel: rel, run: run, created: now, updated: now, state: "starting",
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	a := s.app(rel.App)
	s.mu.Lock()
	a.insts[id] = in
	s.mu.Unlock()
	return in, nil
}

func (s *Supervisor) forget(in *instance) {
	a := s.app(in.app)
	s.mu.Lock()
	delete(a.insts, in.id)
	s.mu.Unlock()
}

func (s *Supervisor) save(in *instance) {
	if err := s.store.PutSandbox(context.WithoutCancel(in.ctx), in.row()); err != nil {
		s.log.Warn("recording sandbox", "sandbox", in.id, "err", err)
	}
}

// releaseImage reads what release rel's image runs, by process type.
func (s *Supervisor) releaseImage(rel store.Release) (*v1.ConfigFile, map[string]process, error) {
	digest, err := v1.NewHash(rel.Image)
	if err != nil {
		return nil, nil, fmt.Errorf("release %d has a bad image digest: %w", rel.Number, err)
	}
	img, err := s.images.Get(digest)
	if err != nil {
		return nil, nil, fmt.Errorf("loading image of release %d: %w", rel.Number, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("reading image config of release %d: %w", rel.Number, err)
	}
	procs, err := processes(cf.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("image of release %d: %w", rel.Number, err)
	}
	return cf, procs, nil
}

// sandboxSpec describes sandbox id running rel's process proc, with the
// app's env, limits and labels; the caller sets NetNS and Log.
func (s *Supervisor) sandboxSpec(ctx context.Context, rel store.Release, run spec.Run, proc, id string) (runtime.Spec, error) {
	cf, procs, err := s.releaseImage(rel)
	if err != nil {
		return runtime.Spec{}, err
	}
	p, ok := procs[proc]
	if !ok {
		return runtime.Spec{}, errkind.Errorf(errkind.Invalid, "the image of release %d has no %s process", rel.Number, proc)
	}
	digest, _ := v1.NewHash(rel.Image) // checked by releaseImage
	layers, err := s.images.Unpack(ctx, digest)
	if err != nil {
		return runtime.Spec{}, fmt.Errorf("unpacking image of release %d: %w", rel.Number, err)
	}
	uid, gid := parseUser(cf.Config.User)
	sp := runtime.Spec{
		ID:     id,
		Layers: layers,
		Args:   p.Args,
		Env:    append(sandboxEnv(p.Env, run, rel), s.cfg.Env...),
		Cwd:    p.Cwd,
		UID:    uid,
		GID:    gid,
		Memory: int64(run.Memory),
		Pids:   run.Pids,
		Labels: map[string]string{"app": rel.App, "release": strconv.Itoa(rel.Number), "process": proc},
	}
	if err := s.withIdentity(&sp, rel.App); err != nil {
		return runtime.Spec{}, err
	}
	return sp, nil
}

// launch creates the sandbox's network and starts its process; for a
// standby, it only starts the process.
func (s *Supervisor) launch(in *instance) error {
	ctx := in.ctx
	if s.stoppingAll.Load() {
		return errkind.Errorf(errkind.Unavailable, "not starting %s: the server is stopping its sandboxes", in.id)
	}
	if sb := in.standby; sb != nil {
		in.standby = nil
		t0 := time.Now()
		st, err := s.driver.StartCreated(ctx, in.id)
		if err != nil {
			s.cleanup(context.WithoutCancel(ctx), in.id)
			return err
		}
		s.log.Debug("standby sandbox started", "sandbox", in.id, "took", time.Since(t0))
		in.mu.Lock()
		in.addr, in.pid = sb.addr, st.Pid
		in.mu.Unlock()
		return nil
	}
	sp, err := s.sandboxSpec(ctx, in.rel, in.run, in.proc, in.id)
	if err != nil {
		return err
	}
	logDir := filepath.Join(s.cfg.LogDir, in.app)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return fmt.Errorf("creating log folder: %w", err)
	}
	sp.Log = filepath.Join(logDir, in.id+".log")
	// The namespace exists at once; attaching it to the bridge (the CNI
	// plugins, tens of milliseconds) runs while runc starts the sandbox in
	// it. The app may bind its port before eth0 has its address; it is
	// reachable, and health-checked, only once both are done.
	t0 := time.Now()
	nsPath, err := s.net.Create(in.id)
	if err != nil {
		return fmt.Errorf("creating network namespace: %w", err)
	}
	sp.NetNS = nsPath
	type attached struct {
		att netns.Attachment
		err error
	}
	attc := make(chan attached, 1)
	go func() {
		att, err := s.net.Attach(ctx, in.id)
		attc <- attached{att, err}
	}()
	st, err := s.driver.Start(ctx, sp)
	a := <-attc
	if err == nil && a.err != nil {
		err = fmt.Errorf("attaching network: %w", a.err)
		s.cleanup(context.WithoutCancel(ctx), in.id)
	} else if err != nil {
		_ = s.net.Teardown(context.WithoutCancel(ctx), in.id)
		s.release(in.id)
	} else if err = s.admit(ctx, in.rel, in.id, a.att.IP); err != nil {
		s.cleanup(context.WithoutCancel(ctx), in.id)
	}
	if err != nil {
		return err
	}
	s.log.Debug("sandbox started", "sandbox", in.id, "process", in.proc, "took", time.Since(t0))
	in.mu.Lock()
	if in.proc == Web {
		in.addr = netip.AddrPortFrom(a.att.IP, uint16(in.run.Port)).String()
	}
	in.pid = st.Pid
	in.mu.Unlock()
	return nil
}

// parseUser reads "uid:gid" from an image config; anything else is the
// platform's non-root user.
func parseUser(u string) (uint32, uint32) {
	const nonroot = 65532
	a, b, _ := strings.Cut(u, ":")
	uid, err1 := strconv.ParseUint(a, 10, 32)
	gid, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || uid == 0 {
		return nonroot, nonroot
	}
	if err2 != nil {
		gid = uid
	}
	return uint32(uid), uint32(gid)
}

// sandboxEnv layers the image's env (with the process's own), the
// manifest's run.env, the release's config vars, then PORT, NOOPS_APP,
// NOOPS_RELEASE and the OpenTelemetry resource, later ones winning.
func sandboxEnv(image []string, run spec.Run, rel store.Release) []string {
	env := map[string]string{}
	var order []string
	put := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range image {
		k, v, _ := strings.Cut(kv, "=")
		put(k, v)
	}
	for _, m := range []map[string]string{run.Env, rel.Env} {
		for _, k := range sortedKeys(m) {
			put(k, m[k])
		}
	}
	put("PORT", strconv.Itoa(run.Port))
	put("NOOPS_APP", rel.App)
	put("NOOPS_RELEASE", strconv.Itoa(rel.Number))
	// OpenTelemetry SDKs name the service after the app and tag it with
	// the release, unless the app says otherwise.
	if _, ok := env["OTEL_SERVICE_NAME"]; !ok {
		put("OTEL_SERVICE_NAME", rel.App)
	}
	attrs := "noops.app=" + rel.App + ",noops.release=" + strconv.Itoa(rel.Number)
	if v := env["OTEL_RESOURCE_ATTRIBUTES"]; v != "" {
		attrs += "," + v
	}
	put("OTEL_RESOURCE_ATTRIBUTES", attrs)
	out := make([]string, len(order))
	for i, k := range order {
		out[i] = k + "=" + env[k]
	}
	return out
}

// healthy runs one health check: a listening port and a 2xx/3xx answer.
func (s *Supervisor) healthy(ctx context.Context, in *instance) error {
	in.mu.Lock()
	addr := in.addr
	in.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+in.run.Health, nil)
	if err != nil {
		return fmt.Errorf("building health check: %w", err)
	}
	req.Header.Set("User-Agent", "noops-health/1")
	resp, err := healthClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("nothing listens on port %d", in.run.Port)
		}
		return fmt.Errorf("GET %s: %w", in.run.Health, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s answered %s", in.run.Health, resp.Status)
	}
	return nil
}

var healthClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func isNotFound(err error) bool { return errkind.Is(err, errkind.NotFound) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
