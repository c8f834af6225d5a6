package runc

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"noops/internal/runtime"
)

// State returns what is known of sandbox id, from its bundle and runc;
// errkind.NotFound when there is no such sandbox.
func (d *Driver) State(ctx context.Context, id string) (runtime.State, error) {
	rec, err := d.record(id)
	if err != nil {
		return runtime.State{}, err
	}
	if d.isStarting(id) {
		return d.stateOf(ctx, rec, nil, true)
	}
	cs, err := d.state(ctx, id)
	if err != nil && !notExist(err) {
		return runtime.State{}, fmt.Errorf("reading the state of sandbox %s: %w", id, err)
	}
	var csp *containerState
	if err == nil {
		csp = &cs
	}
	return d.stateOf(ctx, rec, csp, false)
}

// List returns every sandbox under Root, ordered by ID.
func (d *Driver) List(ctx context.Context) ([]runtime.State, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	all, err := d.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	var out []runtime.State
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rec, err := d.record(e.Name())
		if err != nil {
			continue // not a sandbox, or removed meanwhile
		}
		var csp *containerState
		if cs, ok := all[rec.ID]; ok {
			csp = &cs
		}
		st, err := d.stateOf(ctx, rec, csp, d.isStarting(rec.ID))
		if err != nil {
			return nil, fmt.Errorf("listing sandboxes: %w", err)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// stateOf combines a sandbox's record, its exit record and runc's view
// of it (nil when runc has no such container).
func (d *Driver) stateOf(ctx context.Context, rec sandboxRecord, cs *containerState, starting bool) (runtime.State, error) {
	st := runtime.State{ID: rec.ID, Labels: rec.Labels, Started: rec.Started}
	if st.Started.IsZero() {
		st.Started = rec.Created
	}
	bundle := d.bundle(rec.ID)
	if e, ok, err := readExit(bundle); err != nil || ok {
		st.Status, st.Exit = runtime.Stopped, &e
		return st, err
	}
	switch {
	case starting:
		st.Status = runtime.Created
		return st, nil
	case cs != nil && cs.Status == "created":
		st.Status, st.Pid = runtime.Created, cs.Pid // runc's init, the process once started
		return st, nil
	case cs != nil && cs.Status != "stopped" && cs.Pid > 0:
		st.Status, st.Pid = runtime.Running, cs.Pid
		return st, nil
	case d.isForeground(rec.ID):
		// Not yet made by runc, or just ended: Run records nothing and
		// removes the sandbox when it returns.
		st.Status = runtime.Created
		return st, nil
	}
	// The process has ended but exit.json is missing: its shim is about to
	// write it (it flushes the log first), or it died before the process.
	e, err := d.settle(ctx, rec.ID)
	if err != nil {
		return st, err
	}
	st.Status, st.Exit = runtime.Stopped, &e
	return st, nil
}

// settle waits briefly for the shim of a sandbox whose process has ended
// to record its exit; a shim that is gone leaves an unknown exit.
func (d *Driver) settle(ctx context.Context, id string) (runtime.Exit, error) {
	ctx, cancel := context.WithTimeout(ctx, shimExitTimeout)
	defer cancel()
	if shim, err := d.openShim(id); err == nil && shim >= 0 {
		_ = waitPidfd(ctx, shim)
		unix.Close(shim)
	}
	e, ok, err := readExit(d.bundle(id))
	if err != nil || ok {
		return e, err
	}
	return d.waitOrphan(ctx, id)
}
