// Package runc is the production runtime.Driver: each sandbox is an OCI
// bundle under Root/<id>/ (config.json from OCISpec, a read-only overlay
// of the image's layers as rootfs) run by the runc binary, with runc's
// state under Root/.runc.
//
// Every sandbox that Start starts has a shim (containerd's model): a small
// process started in its own session, by default the noops binary's hidden
// `shim` command, which calls RunShim. The shim runs `runc run --detach`,
// becomes the sandbox process's parent (it is a child subreaper), copies
// its stdout and stderr into the size-rotated JSON-lines log of
// runtime.Spec.Log, reaps it and records how it exited in
// Root/<id>/exit.json. So a server that dies, even by SIGKILL, neither
// stops its sandboxes nor loses their output or exit codes, and the next
// server's driver adopts them: Wait, State, Stop and Delete work from the
// files of the bundle and runc's state alone.
//
// Driver.Run is the other way to run a sandbox, for short-lived work such
// as a build step: the same bundle and hardening, but no shim. runc runs
// in the foreground as a child of the caller, the output is streamed to
// the caller's writers, and the sandbox is removed when Run returns.
package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// Config configures a Driver.
type Config struct {
	// Root holds a folder per sandbox (its bundle), runc's state (.runc)
	// and the mount point layer (.skel). Required.
	Root string
	// Runc is the runc binary; "" means "runc" on PATH.
	Runc string
	// Shim is the command that runs RunShim; the driver appends the shim's
	// arguments. Required; noops passes {its own binary, "shim"}.
	Shim []string
	// Logger receives what the driver notices but cannot return.
	Logger *slog.Logger
	// CgroupParent is the cgroup under which each sandbox gets its own
	// (CgroupParent/<id>); absolute; "" means DefaultCgroupParent.
	CgroupParent string
	// StartTimeout bounds how long Start waits for the shim's report;
	// 0 means 30s.
	StartTimeout time.Duration
}

// Driver runs sandboxes with runc; see the package documentation.
type Driver struct {
	cfg      Config
	root     string // absolute Config.Root
	runcRoot string // Root/.runc
	skel     string // Root/.skel
	runc     string // resolved runc binary
	log      *slog.Logger

	mu         sync.Mutex
	starting   map[string]bool // sandboxes whose Start has not returned
	foreground map[string]bool // sandboxes whose Run has not returned
}

var _ runtime.Driver = (*Driver)(nil)

// New checks cfg and prepares Root.
func New(cfg Config) (*Driver, error) {
	if cfg.Root == "" {
		return nil, errkind.Errorf(errkind.Invalid, "starting the runc driver: no root folder")
	}
	if len(cfg.Shim) == 0 || cfg.Shim[0] == "" {
		return nil, errkind.Errorf(errkind.Invalid, "starting the runc driver: no shim command")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = DefaultCgroupParent
	}
	if !filepath.IsAbs(cfg.CgroupParent) {
		return nil, errkind.Errorf(errkind.Invalid, "starting the runc driver: cgroup parent %q is not absolute", cfg.CgroupParent)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	name := cfg.Runc
	if name == "" {
		name = "runc"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, errkind.WithHint(errkind.Unavailable, fmt.Errorf("starting the runc driver: finding %s: %w", name, err), "install runc (make setup)")
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("starting the runc driver: %w", err)
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("starting the runc driver: %w", err)
	}
	d := &Driver{
		cfg:        cfg,
		root:       root,
		runcRoot:   filepath.Join(root, ".runc"),
		skel:       filepath.Join(root, ".skel"),
		runc:       bin,
		log:        cfg.Logger,
		starting:   map[string]bool{},
		foreground: map[string]bool{},
	}
	for _, dir := range []string{root, d.runcRoot} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("starting the runc driver: %w", err)
		}
	}
	if err := makeSkeleton(d.skel); err != nil {
		return nil, fmt.Errorf("starting the runc driver: %w", err)
	}
	return d, nil
}

func (d *Driver) bundle(id string) string { return filepath.Join(d.root, id) }

// record reads sandbox.json of id: errkind.NotFound when there is none.
func (d *Driver) record(id string) (sandboxRecord, error) {
	var rec sandboxRecord
	if runtime.ValidID(id) != nil {
		return rec, errkind.Errorf(errkind.NotFound, "sandbox %s not found", id)
	}
	err := readJSON(filepath.Join(d.bundle(id), sandboxFile), &rec)
	if errors.Is(err, os.ErrNotExist) {
		return rec, errkind.Errorf(errkind.NotFound, "sandbox %s not found", id)
	}
	return rec, err
}

func (d *Driver) isStarting(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starting[id]
}

// isForeground reports whether a Run of this driver runs sandbox id: its
// end is Run's to see and clean up, not Wait's or State's to record.
func (d *Driver) isForeground(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.foreground[id]
}

// runcError is a failed runc command with what it printed.
type runcError struct {
	args []string
	msg  string
	err  error
}

func (e *runcError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("runc %s: %v", strings.Join(e.args, " "), e.err)
	}
	return fmt.Sprintf("runc %s: %s", strings.Join(e.args, " "), e.msg)
}

func (e *runcError) Unwrap() error { return e.err }

// notExist reports whether runc failed because it has no such container.
func notExist(err error) bool {
	var re *runcError
	return errors.As(err, &re) && strings.Contains(re.msg, "does not exist")
}

// notRunning reports whether runc refused to signal a stopped container.
func notRunning(err error) bool {
	var re *runcError
	return errors.As(err, &re) && (strings.Contains(re.msg, "not running") || strings.Contains(re.msg, "process already finished"))
}

// run runs runc --root Root/.runc with args and returns its stdout.
func (d *Driver) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.runc, append([]string{"--root", d.runcRoot}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &runcError{args: args, msg: runcMessage(stderr.Bytes()), err: err}
	}
	return stdout.Bytes(), nil
}

// runcMessage extracts the message of runc's last log line, which is
// either text (time="…" level=error msg="…") or JSON.
func runcMessage(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	var rec struct{ Msg string }
	if json.Unmarshal([]byte(last), &rec) == nil && rec.Msg != "" {
		return rec.Msg
	}
	if _, msg, ok := strings.Cut(last, "msg="); ok {
		if s, err := unquote(msg); err == nil {
			return s
		}
		return msg
	}
	return last
}

func unquote(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}

// containerState is what `runc state` and `runc list --format json` print.
type containerState struct {
	ID      string    `json:"id"`
	Pid     int       `json:"pid"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
}

// state returns runc's view of id; notExist(err) when runc has none.
func (d *Driver) state(ctx context.Context, id string) (containerState, error) {
	var cs containerState
	out, err := d.run(ctx, "state", id)
	if err != nil {
		return cs, err
	}
	if err := json.Unmarshal(out, &cs); err != nil {
		return cs, fmt.Errorf("decoding runc state of %s: %w", id, err)
	}
	return cs, nil
}

// list returns runc's view of every container, by ID.
func (d *Driver) list(ctx context.Context) (map[string]containerState, error) {
	out, err := d.run(ctx, "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var all []containerState
	if err := json.Unmarshal(out, &all); err != nil { // "null" when none
		return nil, fmt.Errorf("decoding runc list: %w", err)
	}
	m := make(map[string]containerState, len(all))
	for _, cs := range all {
		m[cs.ID] = cs
	}
	return m, nil
}
