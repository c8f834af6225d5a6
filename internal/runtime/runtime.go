// Package runtime defines how the platform runs sandboxes: the Driver
// interface, the description of a sandbox to run (Spec) and what is known of
// one (State). runtime/runc is the production driver (OCI bundles run by the
// runc binary); runtime/fake runs the same specs as plain host processes for
// tests that cannot be root. Both pass runtimetest.Run.
package runtime

import (
	"context"
	"time"
)

// Spec describes one sandbox to run.
type Spec struct {
	ID     string            // unique, [a-z0-9-], at most 48 characters
	Layers []string          // unpacked image layer folders, bottom first (overlay lower dirs)
	Args   []string          // entrypoint and arguments; Args[0] is a path inside the image
	Env    []string          // KEY=VALUE
	Cwd    string            // working folder inside the sandbox; "/" when empty
	UID    uint32            // user and group the process runs as; 0 means 65532 (runc never runs a sandbox as root)
	GID    uint32            // 0 means the same as UID
	Memory int64             // memory limit in bytes; 0 means the driver's default (256 MiB)
	Pids   int64             // pids limit; 0 means the driver's default (256)
	NetNS  string            // path of the network namespace to join; "" means a new empty one (runc) or the host's (fake)
	Log    string            // path of the log file that receives stdout and stderr; empty for a foreground run (runc.Driver.Run)
	Labels map[string]string // free-form, kept with the sandbox (app, release)

	// Mounts are host paths bind-mounted into the sandbox, in addition to
	// the read-only root; none by default (an app's sandbox has none).
	// Build sandboxes mount the source copy, layer outputs and caches.
	Mounts []Mount
	// TmpSize is the size in bytes of the tmpfs on /tmp; 0 means the
	// driver's default (64 MiB). Its pages count against Memory.
	TmpSize int64
}

// Mount is a host file or folder seen inside a sandbox. The sandbox's
// process runs as Spec.UID (65532 by default) with no capabilities, so a
// writable mount is only writable for it if the caller has given Source to
// that user (chown) beforehand.
type Mount struct {
	Source   string // absolute host path; must exist
	Target   string // absolute, clean path inside the sandbox; not /, nor /proc, /sys, /dev or below them
	ReadOnly bool
}

// Status is where a sandbox is in its life.
type Status string

// The statuses a driver reports.
const (
	Created Status = "created" // exists, process not started
	Running Status = "running"
	Stopped Status = "stopped" // process exited; resources remain until Delete
)

// State is what a driver knows of a sandbox.
type State struct {
	ID      string
	Status  Status
	Pid     int               // pid of the sandbox's process in the host's pid namespace (of a created one: the pid it will have); 0 when not running
	Labels  map[string]string //
	Started time.Time
	Exit    *Exit // set when Status is Stopped
}

// Exit describes how a sandbox's process ended.
type Exit struct {
	Code      int       // exit code, or 128+signal when killed by a signal
	Signal    string    // e.g. "SIGKILL" when killed by a signal
	OOMKilled bool      // the kernel killed it for exceeding its memory limit
	At        time.Time //
}

// Driver runs sandboxes. Implementations keep sandboxes running when the
// process that started them exits, so that a restarted server can adopt them
// through List and Wait.
type Driver interface {
	// Start creates the sandbox described by spec and starts its process.
	Start(ctx context.Context, spec Spec) (State, error)
	// Create makes the sandbox described by spec with everything but its
	// process's start done (runc create): status Created. StartCreated
	// then costs only the exec, which is what a cold start waits for.
	// Stop and Delete remove a created sandbox; Wait waits for it to be
	// started and exit.
	Create(ctx context.Context, spec Spec) (State, error)
	// StartCreated starts the process of a sandbox made by Create;
	// errkind.Conflict when it is not in the created state.
	StartCreated(ctx context.Context, id string) (State, error)
	// Wait blocks until the sandbox's process has exited (or ctx ends) and
	// returns how it exited. It works for sandboxes started by an earlier
	// instance of the driver too.
	Wait(ctx context.Context, id string) (Exit, error)
	// Stop sends SIGTERM, waits up to grace, then sends SIGKILL. Stopping a
	// stopped sandbox is not an error.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Delete removes a stopped sandbox and everything the driver made for it.
	// Deleting an unknown sandbox is not an error.
	Delete(ctx context.Context, id string) error
	// State returns what is known of one sandbox; errkind.NotFound if none.
	State(ctx context.Context, id string) (State, error)
	// List returns every sandbox the driver knows, running or stopped.
	List(ctx context.Context) ([]State, error)
	// Usage reads a running sandbox's resource use; errkind.NotFound when
	// there is no such sandbox, errkind.Conflict when it is not running.
	Usage(ctx context.Context, id string) (Usage, error)
}

// Usage is a sandbox's resource use, as its cgroup counts it.
type Usage struct {
	CPU    time.Duration // CPU time used so far, user and system
	Memory int64         // memory in use now, in bytes (page cache included)
	Pids   int64         // processes and threads now
}
