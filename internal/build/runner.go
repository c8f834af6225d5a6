package build

import (
	"context"
	"fmt"
	"io"
)

// Runner runs one build step (npm ci, pip install, a site's build script)
// in a sandbox made from a stack's build image: the same hardening as an
// app's sandbox (no capabilities, non-root, seccomp, read-only root), with
// the step's folders mounted in and, when asked, egress to package
// registries. internal/buildbox implements it with runc.
type Runner interface {
	Run(ctx context.Context, step Step) error
}

// Step is one command to run in a build sandbox.
type Step struct {
	Layers  []string  // the build image's unpacked layers, bottom first (the read-only root)
	Args    []string  // command and arguments; Args[0] is a path inside the image or found on PATH
	Env     []string  // KEY=VALUE
	Dir     string    // working folder inside the sandbox
	Mounts  []Mount   // host folders mounted in (the source copy, layer outputs, caches)
	Network bool      // egress to the outside (NAT, DNS); false means no network at all
	Stdout  io.Writer // the step's output, streamed as it runs
	Stderr  io.Writer //
	Memory  int64     // bytes; 0 means 2 GiB
	Pids    int64     // 0 means 1024
}

// Mount is a host folder seen inside a build sandbox.
type Mount struct {
	Source   string // host path
	Target   string // path inside the sandbox
	ReadOnly bool
}

// StepError is a step that ran and exited non-zero (or was killed).
type StepError struct {
	Args []string
	Code int    // exit code, 128+n for a signal
	Why  string // "exit 1", "SIGKILL (out of memory)"
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s failed: %s", e.Args[0], e.Why)
}
