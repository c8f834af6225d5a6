package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

const (
	// killRetry is how often a cancelled Run asks runc to kill the
	// sandbox: runc may not have made it yet when ctx ends.
	killRetry = 50 * time.Millisecond
	// killTimeout bounds how long a cancelled Run waits for that before
	// it kills runc itself (clean-up then kills the sandbox).
	killTimeout = 10 * time.Second
	// cleanupTimeout bounds the clean-up when Run returns.
	cleanupTimeout = time.Minute
)

// Run runs spec in the foreground and returns how its process exited. The
// sandbox is made as Start makes one (the same bundle and hardening, plus
// spec.Mounts) but runs without a shim: `runc run` is a child of the
// caller, the process's stdin is /dev/null, and its stdout and stderr are
// copied to the writers while it runs (nil discards). spec.Log must be
// empty. A writer that fails is not written to again (the output is still
// read, so the sandbox never blocks on it) and its error is returned with
// the exit.
//
// When ctx ends first, the sandbox is killed (runc kill KILL) and Run
// returns ctx's error. Whatever happens, Run removes the sandbox before it
// returns: runc's container and cgroup, the root's mount, the bundle; an
// error doing so is returned with the exit. While it runs, the sandbox is
// in List and State like any other (so that, should this process die, the
// next one finds and deletes what is left), but only Run may end it.
//
// A process killed by signal n is reported, as a shell reports it, with
// Code 128+n and the signal's name: runc in the foreground passes on only
// that number, so a process that exits with such a code itself looks the
// same. OOMKilled is read from the sandbox's memory cgroup, as for Start.
func (d *Driver) Run(ctx context.Context, spec runtime.Spec, stdout, stderr io.Writer) (exit runtime.Exit, err error) {
	if err := spec.ValidateForeground(); err != nil {
		return runtime.Exit{}, err
	}
	if err := checkHost(spec); err != nil {
		return runtime.Exit{}, err
	}
	if err := ctx.Err(); err != nil {
		return runtime.Exit{}, fmt.Errorf("running sandbox %s: %w", spec.ID, err)
	}
	oci, err := d.ociSpec(spec)
	if err != nil {
		return runtime.Exit{}, fmt.Errorf("running sandbox %s: %w", spec.ID, err)
	}
	bundle, err := d.makeBundle(spec.ID)
	if err != nil {
		return runtime.Exit{}, fmt.Errorf("running sandbox %s: %w", spec.ID, err)
	}
	d.setForeground(spec.ID, true)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rerr := d.remove(cctx, spec.ID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing sandbox %s after its run: %w", spec.ID, rerr))
		}
		d.setForeground(spec.ID, false)
	}()
	now := time.Now().UTC()
	rec := sandboxRecord{ID: spec.ID, Labels: spec.Labels, Created: now, Started: now}
	if err := d.fillBundle(spec, bundle, oci, &rec); err != nil {
		return runtime.Exit{}, fmt.Errorf("running sandbox %s: %w", spec.ID, err)
	}
	exit, err = d.runForeground(ctx, spec.ID, bundle, stdout, stderr)
	if err != nil {
		err = fmt.Errorf("running sandbox %s: %w", spec.ID, err)
	}
	return exit, err
}

func (d *Driver) setForeground(id string, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on {
		d.foreground[id] = true
	} else {
		delete(d.foreground, id)
	}
}

// runForeground runs `runc run` on the filled bundle until the sandbox's
// process has exited, or until ctx ends and it has been killed.
func (d *Driver) runForeground(ctx context.Context, id, bundle string, stdout, stderr io.Writer) (runtime.Exit, error) {
	runcLog := filepath.Join(bundle, runcLogFile)
	// --keep: runc leaves the stopped container, and so its memory
	// cgroup, for oomKilled to read; remove deletes it.
	cmd := exec.Command(d.runc, "--root", d.runcRoot, "--log", runcLog, "--log-format", "json",
		"run", "--keep", "--bundle", bundle, id)
	cmd.Dir = bundle
	out := newOutput(stdout, stderr)
	cmd.Stdout, cmd.Stderr = out.stdout, out.stderr
	cmd.WaitDelay = logDrainTimeout
	// Should this process die, runc dies too rather than run on with
	// nobody reading the output.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ctx.Err(); err != nil {
		return runtime.Exit{}, err // it ended while the bundle was made: start nothing
	}
	if err := cmd.Start(); err != nil {
		return runtime.Exit{}, fmt.Errorf("starting runc: %w", err)
	}
	done := make(chan struct{})   // closed once runc has exited
	killed := make(chan struct{}) // closed once killForeground has returned
	stop := context.AfterFunc(ctx, func() {
		defer close(killed)
		d.killForeground(id, cmd.Process, done)
	})
	// ended, called once runc has exited, reports whether ctx ended first.
	// It returns only after killForeground has, so that no `runc kill` of
	// it outlives Run: one still running would race remove, and runc
	// recreates its state folder under Root even for a container it does
	// not know.
	ended := func() bool {
		close(done)
		if stop() {
			return false
		}
		<-killed
		return true
	}
	waited := false
	defer func() {
		if !waited { // panicking: end runc too; remove kills the sandbox
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			ended()
		}
	}()
	werr := cmd.Wait()
	waited = true
	if ended() {
		return runtime.Exit{}, ctx.Err() // it was killed because ctx ended
	}

	code := 0
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.Is(werr, exec.ErrWaitDelay):
		d.log.Warn("the sandbox's output did not end with it; the rest is lost", "sandbox", id)
	case errors.As(werr, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return runtime.Exit{}, fmt.Errorf("runc was killed by %s", unix.SignalName(ws.Signal()))
		}
		code = ws.ExitStatus()
	default:
		return runtime.Exit{}, fmt.Errorf("running runc: %w", werr)
	}
	if code != 0 {
		// runc's own failure (no such program, bad spec) is in its log;
		// the process's non-zero exit is not.
		if msg := lastError(runcLog); msg != "" {
			kind := errkind.Internal
			if userFault(msg) {
				kind = errkind.Invalid
			}
			return runtime.Exit{}, errkind.E(kind, errors.New(msg))
		}
	}
	exit := exitOfCode(code, time.Now().UTC())
	exit.OOMKilled = code != 0 && oomKilled(bundle, d.log)
	if err := out.err(); err != nil {
		return exit, fmt.Errorf("copying the sandbox's output: %w", err)
	}
	return exit, nil
}

// killForeground kills sandbox id after its Run's ctx ended: it asks runc
// every killRetry until `runc run` has returned (done), as runc may not
// have made the container yet, and kills runc itself after killTimeout.
// A `runc run` killed while it made the container can leave its `runc
// init` behind; remove kills it through the sandbox's cgroup.
func (d *Driver) killForeground(id string, runc *os.Process, done <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	tick := time.NewTicker(killRetry)
	defer tick.Stop()
	for {
		_ = d.kill(ctx, id, "KILL") // best effort; the next tick tries again
		select {
		case <-done:
			return
		case <-ctx.Done():
			d.log.Warn("runc did not end after its sandbox was killed; killing runc", "sandbox", id)
			_ = runc.Kill()
			return
		case <-tick.C:
		}
	}
}

// exitOfCode describes runc's exit code as an Exit: 128+n with n a known
// signal is a death by that signal, as a shell reads it.
func exitOfCode(code int, at time.Time) runtime.Exit {
	e := runtime.Exit{Code: code, At: at}
	if code > 128 && code < 128+65 {
		e.Signal = unix.SignalName(syscall.Signal(code - 128)) // "" for a number without a name
	}
	return e
}

// output hands runc's output to the caller's writers. The same writer for
// both streams gets one sink, so that os/exec writes to it from one
// goroutine at a time.
type output struct {
	stdout, stderr io.Writer // what cmd writes to; nil discards
	sinks          []*sink
}

func newOutput(stdout, stderr io.Writer) *output {
	o := &output{}
	if stdout != nil {
		s := &sink{w: stdout}
		o.sinks = append(o.sinks, s)
		o.stdout = s
	}
	switch {
	case stderr == nil:
	case stdout != nil && sameWriter(stdout, stderr):
		o.stderr = o.stdout
	default:
		s := &sink{w: stderr}
		o.sinks = append(o.sinks, s)
		o.stderr = s
	}
	return o
}

// err is the first write error of either writer; call it after cmd.Wait.
func (o *output) err() error {
	for _, s := range o.sinks {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// sink writes to w until a write fails, then discards: os/exec would stop
// reading, and the sandbox block on a full pipe.
type sink struct {
	w   io.Writer
	err error
}

func (s *sink) Write(p []byte) (int, error) {
	if s.err == nil {
		if _, err := s.w.Write(p); err != nil {
			s.err = err
		}
	}
	return len(p), nil
}

// sameWriter reports whether a and b are the same writer; writers of
// types that cannot be compared are not.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
