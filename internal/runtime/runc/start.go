package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// validate checks spec for Start; errors are errkind.Invalid.
func (d *Driver) validate(spec runtime.Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := checkHost(spec); err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Dir(spec.Log)); err != nil || !fi.IsDir() {
		return errkind.Errorf(errkind.Invalid, "sandbox %s: log folder %s does not exist", spec.ID, filepath.Dir(spec.Log))
	}
	return nil
}

// report is what the shim tells Start on its fd 3.
type report struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// Start makes the bundle of spec and starts its shim, which runs the
// sandbox; it returns once the sandbox's process runs (or failed to).
func (d *Driver) Start(ctx context.Context, spec runtime.Spec) (runtime.State, error) {
	return d.start(ctx, spec, false)
}

// Create is Start with the sandbox's process left waiting for
// StartCreated (runc create): the bundle, the rootfs, the namespaces and
// cgroup, the seccomp filter are all in place.
func (d *Driver) Create(ctx context.Context, spec runtime.Spec) (runtime.State, error) {
	return d.start(ctx, spec, true)
}

// StartCreated starts the process of a created sandbox: what `runc
// start` does (see startByFifo), without runc's own start-up, which would
// be half of a cold start; `runc start` is the fallback when the FIFO is
// not where runc 1.x keeps it.
func (d *Driver) StartCreated(ctx context.Context, id string) (runtime.State, error) {
	rec, err := d.record(id)
	if err != nil {
		return runtime.State{}, fmt.Errorf("starting sandbox %s: %w", id, err)
	}
	notCreated := func(err error) error {
		return errkind.E(errkind.Conflict, fmt.Errorf("starting sandbox %s: it is not in the created state: %w", id, err))
	}
	if _, exited, _ := readExit(d.bundle(id)); exited {
		return runtime.State{}, notCreated(errors.New("its process has exited"))
	}
	pid, _ := readPid(filepath.Join(d.bundle(id), initPidFile))
	err = startByFifo(ctx, d.runcRoot, id, pid, d.cfg.StartTimeout)
	if errors.Is(err, errNoFifo) {
		if _, rerr := d.run(ctx, "start", id); rerr != nil {
			if notExist(rerr) || strings.Contains(rerr.Error(), "cannot start") || strings.Contains(rerr.Error(), "not in created state") {
				return runtime.State{}, notCreated(rerr)
			}
			return runtime.State{}, fmt.Errorf("starting sandbox %s: %w", id, rerr)
		}
	} else if err != nil {
		return runtime.State{}, fmt.Errorf("starting sandbox %s: %w", id, err)
	}
	return runtime.State{ID: id, Status: runtime.Running, Pid: pid, Labels: copyLabels(rec.Labels), Started: time.Now().UTC()}, nil
}

func (d *Driver) start(ctx context.Context, spec runtime.Spec, create bool) (runtime.State, error) {
	if err := d.validate(spec); err != nil {
		return runtime.State{}, err
	}
	oci, err := d.ociSpec(spec)
	if err != nil {
		return runtime.State{}, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	bundle, err := d.makeBundle(spec.ID)
	if err != nil {
		return runtime.State{}, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	d.mu.Lock()
	d.starting[spec.ID] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.starting, spec.ID)
		d.mu.Unlock()
	}()

	rec := sandboxRecord{ID: spec.ID, Labels: spec.Labels, Log: spec.Log, Created: time.Now().UTC()}
	pid, err := d.startBundle(ctx, spec, bundle, oci, &rec, create)
	if err != nil {
		if cerr := d.remove(context.WithoutCancel(ctx), spec.ID); cerr != nil {
			d.log.Warn("cleaning up a sandbox that failed to start", "sandbox", spec.ID, "err", cerr)
		}
		return runtime.State{}, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	status := runtime.Running
	if create {
		status = runtime.Created
	}
	return runtime.State{ID: spec.ID, Status: status, Pid: pid, Labels: copyLabels(rec.Labels), Started: rec.Started}, nil
}

// startBundle fills the bundle, starts the shim and waits for its report.
func (d *Driver) startBundle(ctx context.Context, spec runtime.Spec, bundle string, oci *specs.Spec, rec *sandboxRecord, create bool) (int, error) {
	if err := d.fillBundle(spec, bundle, oci, rec); err != nil {
		return 0, err
	}
	pid, err := d.startShim(ctx, spec, bundle, create)
	if err != nil {
		return 0, err
	}
	rec.Started = time.Now().UTC()
	if err := writeJSON(filepath.Join(bundle, sandboxFile), rec); err != nil {
		return 0, err
	}
	return pid, nil
}

// shimArgs are the arguments the driver gives RunShim.
func (d *Driver) shimArgs(spec runtime.Spec, bundle string, create bool) []string {
	args := []string{"--id", spec.ID, "--bundle", bundle, "--runc", d.runc, "--runc-root", d.runcRoot, "--log", spec.Log}
	if create {
		args = append(args, "--create")
	}
	return args
}

// startShim starts the shim detached (own session, stdio on /dev/null) and
// returns the sandbox process's pid that it reports.
func (d *Driver) startShim(ctx context.Context, spec runtime.Spec, bundle string, create bool) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("making the shim's report pipe: %w", err)
	}
	defer r.Close()
	args := append(append([]string{}, d.cfg.Shim[1:]...), d.shimArgs(spec, bundle, create)...)
	cmd := exec.Command(d.cfg.Shim[0], args...)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("starting the shim %s: %w", d.cfg.Shim[0], err)
	}
	go func() {
		// Reap the shim when it ends, which is when the sandbox's process
		// has; a later driver finds what it recorded in the bundle.
		_ = cmd.Wait()
	}()
	if err := os.WriteFile(filepath.Join(bundle, shimPidFile), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return 0, fmt.Errorf("recording the shim's pid: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, d.cfg.StartTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = r.SetReadDeadline(time.Now()) })
	defer stop()
	b, err := io.ReadAll(r)
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the shim and the runc it runs
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return 0, fmt.Errorf("waiting for the shim: %w", err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil || rep.Pid <= 0 && rep.Error == "" {
		return 0, fmt.Errorf("the shim ended without a report (%s)", tail(filepath.Join(bundle, shimLogFile)))
	}
	if rep.Error != "" {
		kind := errkind.Internal
		if userFault(rep.Error) {
			kind = errkind.Invalid
		}
		return 0, errkind.E(kind, errors.New(rep.Error))
	}
	return rep.Pid, nil
}

// userFault reports whether runc's message blames the image or the spec
// (a missing entrypoint or working folder) rather than the platform.
func userFault(msg string) bool {
	for _, s := range []string{"exec:", "chdir to cwd", "container init: mkdir", "executable file not found", "exec format error"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// tail returns the end of a diagnostics file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no shim log: " + err.Error()
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	if s == "" {
		return "the shim log is empty"
	}
	return s
}

// swapAccounting reports whether a memory+swap limit can be set: always
// on cgroup v2, only with swap accounting on v1.
func swapAccounting() bool {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
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
