// Package fake is a runtime.Driver that runs a spec's program as a plain
// host process: Args[0] is a path on the host, and Layers, NetNS, the user
// and the limits are ignored. A spec with Mounts is refused: a host process
// would read and write the host's Target paths instead. It writes the same
// log files as the runc driver and keeps its state in memory, so tests that
// cannot be root can run real programs. It passes runtimetest.Run like the
// production driver.
package fake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
	"noops/internal/runtime/logfile"
)

// Driver runs sandboxes as host processes. Drivers made by Restart share
// the sandboxes, as a restarted server shares the machine's.
type Driver struct {
	m *machine
}

var _ runtime.Driver = (*Driver)(nil)

// machine is what outlives a driver: the processes and what is known of them.
type machine struct {
	mu        sync.Mutex
	sandboxes map[string]*sandbox
}

type sandbox struct {
	id      string
	labels  map[string]string
	started time.Time
	pid     int
	proc    *os.Process   // nil while created and not started
	spec    runtime.Spec  // what StartCreated runs
	log     *logfile.File // open from Create until the process runs
	done    chan struct{} // closed once exit is set
	exit    runtime.Exit
}

// New returns a driver with no sandboxes.
func New() *Driver {
	return &Driver{m: &machine{sandboxes: map[string]*sandbox{}}}
}

// Restart returns a new driver over the same sandboxes, as a server
// restarted on the same machine would make.
func (d *Driver) Restart() *Driver { return &Driver{m: d.m} }

// Start runs spec.Args on the host with spec.Env and spec.Cwd, sending its
// output to spec.Log.
func (d *Driver) Start(ctx context.Context, spec runtime.Spec) (runtime.State, error) {
	if _, err := d.Create(ctx, spec); err != nil {
		return runtime.State{}, err
	}
	st, err := d.StartCreated(ctx, spec.ID)
	if err != nil {
		d.m.mu.Lock()
		delete(d.m.sandboxes, spec.ID)
		d.m.mu.Unlock()
	}
	return st, err
}

// Create checks spec and opens its log; the process starts with
// StartCreated.
func (d *Driver) Create(_ context.Context, spec runtime.Spec) (runtime.State, error) {
	if err := spec.Validate(); err != nil {
		return runtime.State{}, err
	}
	if len(spec.Mounts) > 0 {
		return runtime.State{}, errkind.Errorf(errkind.Invalid, "starting sandbox %s: the fake driver cannot mount folders", spec.ID)
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if _, ok := d.m.sandboxes[spec.ID]; ok {
		return runtime.State{}, errkind.Errorf(errkind.Conflict, "starting sandbox %s: it already exists", spec.ID)
	}
	log, err := logfile.Open(spec.Log, logfile.Options{})
	if err != nil {
		return runtime.State{}, errkind.E(errkind.Invalid, fmt.Errorf("starting sandbox %s: %w", spec.ID, err))
	}
	sb := &sandbox{id: spec.ID, labels: copyLabels(spec.Labels), started: time.Now(), spec: spec, log: log, done: make(chan struct{})}
	d.m.sandboxes[spec.ID] = sb
	return sb.state(), nil
}

// StartCreated starts the process of a created sandbox.
func (d *Driver) StartCreated(_ context.Context, id string) (runtime.State, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	sb, ok := d.m.sandboxes[id]
	if !ok {
		return runtime.State{}, errkind.Errorf(errkind.NotFound, "sandbox %s not found", id)
	}
	if sb.proc != nil || sb.exited() {
		return runtime.State{}, errkind.Errorf(errkind.Conflict, "starting sandbox %s: it is not in the created state", id)
	}
	proc, outs, err := spawn(sb.spec)
	if err != nil {
		return runtime.State{}, err
	}
	sb.proc, sb.pid, sb.started = proc, proc.Pid, time.Now()
	log := sb.log
	sb.log = nil
	go sb.watch(log, outs)
	return sb.state(), nil
}

// end records the exit of a created sandbox that never started.
func (sb *sandbox) end() {
	if sb.log != nil {
		sb.log.Close()
		sb.log = nil
	}
	sb.exit = runtime.Exit{Code: 137, Signal: "SIGKILL", At: time.Now()}
	close(sb.done)
}

// spawn starts the process with its stdout and stderr on pipes; it
// returns the read ends, stdout first.
func spawn(spec runtime.Spec) (*os.Process, [2]*os.File, error) {
	var outs, ins [2]*os.File
	closeAll := func() {
		for _, f := range append(outs[:], ins[:]...) {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := range outs {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, outs, fmt.Errorf("starting sandbox %s: making pipes: %w", spec.ID, err)
		}
		outs[i], ins[i] = r, w
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		closeAll()
		return nil, outs, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	defer null.Close()
	env := spec.Env
	if env == nil {
		env = []string{} // not the driver's own environment
	}
	proc, err := os.StartProcess(spec.Args[0], spec.Args, &os.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: []*os.File{null, ins[0], ins[1]},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	ins[0].Close()
	ins[1].Close()
	if err != nil {
		outs[0].Close()
		outs[1].Close()
		return nil, outs, errkind.E(errkind.Invalid, fmt.Errorf("starting sandbox %s: %w", spec.ID, err))
	}
	return proc, outs, nil
}

// watch copies the output to the log, waits for the process and records
// how it exited.
func (sb *sandbox) watch(log *logfile.File, outs [2]*os.File) {
	var copies sync.WaitGroup
	for i, stream := range []string{"stdout", "stderr"} {
		copies.Add(1)
		go func() {
			defer copies.Done()
			_ = log.Copy(stream, outs[i]) // a failing log must not stop the reaping
		}()
	}
	ps, err := sb.proc.Wait()
	at := time.Now()
	// The process is gone; descendants it left may still hold the pipes.
	copied := make(chan struct{})
	go func() { copies.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		outs[0].Close()
		outs[1].Close()
		<-copied
	}
	outs[0].Close()
	outs[1].Close()
	log.Close()
	exit := runtime.Exit{Code: -1, Signal: "unknown", At: at}
	if err == nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			exit = runtime.ExitOf(ws, at)
		}
	}
	sb.exit = exit
	close(sb.done)
}

func (sb *sandbox) exited() bool {
	select {
	case <-sb.done:
		return true
	default:
		return false
	}
}

func (sb *sandbox) state() runtime.State {
	st := runtime.State{ID: sb.id, Status: runtime.Running, Pid: sb.pid, Labels: copyLabels(sb.labels), Started: sb.started}
	if sb.proc == nil && !sb.exited() {
		st.Status = runtime.Created
	}
	if sb.exited() {
		e := sb.exit
		st.Status, st.Pid, st.Exit = runtime.Stopped, 0, &e
	}
	return st
}

// endCreated ends sb if it was created and never started, and reports
// whether it did.
func (d *Driver) endCreated(sb *sandbox) bool {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if sb.proc != nil || sb.exited() {
		return false
	}
	sb.end()
	return true
}

func (d *Driver) get(id string) (*sandbox, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	sb, ok := d.m.sandboxes[id]
	if !ok {
		return nil, errkind.Errorf(errkind.NotFound, "sandbox %s not found", id)
	}
	return sb, nil
}

// Wait blocks until the process of sandbox id has exited or ctx ends.
func (d *Driver) Wait(ctx context.Context, id string) (runtime.Exit, error) {
	sb, err := d.get(id)
	if err != nil {
		return runtime.Exit{}, fmt.Errorf("waiting for sandbox: %w", err)
	}
	select {
	case <-sb.done:
		return sb.exit, nil
	case <-ctx.Done():
		return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: %w", id, ctx.Err())
	}
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	sb, err := d.get(id)
	if errkind.Is(err, errkind.NotFound) || err == nil && sb.exited() {
		return nil
	}
	if d.endCreated(sb) {
		return nil
	}
	if err := sb.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping sandbox %s: %w", id, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-sb.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping sandbox %s: %w", id, ctx.Err())
	case <-t.C:
	}
	if err := sb.proc.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing sandbox %s: %w", id, err)
	}
	if _, err := d.Wait(ctx, id); err != nil {
		return fmt.Errorf("stopping sandbox %s: %w", id, err)
	}
	return nil
}

// Delete forgets sandbox id, killing its process first if it still runs.
func (d *Driver) Delete(ctx context.Context, id string) error {
	sb, err := d.get(id)
	if err != nil {
		return nil // unknown: nothing to delete
	}
	if !d.endCreated(sb) && !sb.exited() {
		if err := sb.proc.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("deleting sandbox %s: %w", id, err)
		}
		if _, err := d.Wait(ctx, id); err != nil {
			return fmt.Errorf("deleting sandbox %s: %w", id, err)
		}
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if d.m.sandboxes[id] == sb {
		delete(d.m.sandboxes, id)
	}
	return nil
}

// State returns what is known of sandbox id.
func (d *Driver) State(_ context.Context, id string) (runtime.State, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	sb, ok := d.m.sandboxes[id]
	if !ok {
		return runtime.State{}, errkind.Errorf(errkind.NotFound, "sandbox %s not found", id)
	}
	return sb.state(), nil
}

// List returns every sandbox, ordered by ID.
func (d *Driver) List(context.Context) ([]runtime.State, error) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	out := make([]runtime.State, 0, len(d.m.sandboxes))
	for _, sb := range d.m.sandboxes {
		out = append(out, sb.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func copyLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
