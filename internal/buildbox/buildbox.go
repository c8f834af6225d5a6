// Package buildbox runs build steps (npm ci, pip install, a site's build
// script) in sandboxes made from a stack's build image: it is the
// build.Runner of the platform. Each step gets a sandbox of its own, run in
// the foreground by runc.Driver.Run with an app sandbox's hardening (user
// 65532, no capabilities, no new privileges, seccomp, read-only root, its
// own namespaces) and larger limits, the step's folders bind-mounted in.
//
// A step without Network gets an empty network namespace of its own: only
// loopback, so it reaches nothing. A step with Network is attached to the
// build network, a CNI bridge with a default route through the host, which
// masquerades its traffic (netns.Config.IPMasq), and sees the host's
// resolver configuration at /etc/resolv.conf. Its namespace is torn down
// when the step ends, however it ends. No firewall narrows that egress yet:
// such a step reaches whatever the host reaches, including the host's own
// services and the app sandboxes' bridge (where it appears with the
// bridge's gateway address).
package buildbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/netns"
	"noops/internal/runtime"
	"noops/internal/runtime/runc"
)

// Limits of a step that sets none.
const (
	DefaultMemory = 2 << 30 // bytes
	DefaultPids   = 1024
)

// hostCATarget is where steps with network find the host's CA bundle: the
// path OpenSSL-based tools (pip, Python's ssl, curl) read by default.
const hostCATarget = "/etc/ssl/certs/ca-certificates.crt"

// teardownTimeout bounds the removal of a step's network namespace.
const teardownTimeout = 30 * time.Second

// Config is what a Box needs.
type Config struct {
	// Driver runs the sandboxes (Run). Required.
	Driver *runc.Driver
	// Network is the build network, made with IPMasq (for instance bridge
	// "noopsb0", subnet 10.89.0.0/16); nil refuses steps with Network.
	Network *netns.Network
	// ResolvConf is the host file mounted read-only at /etc/resolv.conf in
	// steps with Network; "" means /etc/resolv.conf, or systemd-resolved's
	// list of upstream servers when that file names only a loopback
	// resolver, which a sandbox cannot reach.
	ResolvConf string
	// CACerts is the host's CA bundle, mounted read-only over the build
	// image's /etc/ssl/certs/ca-certificates.crt in steps with Network and
	// given to Node.js as NODE_EXTRA_CA_CERTS: package registries are
	// trusted as the machine trusts them (which includes a TLS-inspecting
	// proxy's CA where the operator installed one). "" means
	// /etc/ssl/certs/ca-certificates.crt; a missing file is not mounted.
	CACerts string
	// Logger receives what a Box notices but cannot return.
	Logger *slog.Logger
}

// Box runs build steps in sandboxes; it is safe for concurrent use.
type Box struct {
	cfg Config
	log *slog.Logger
}

var _ build.Runner = (*Box)(nil)

// New returns a Box that runs steps as cfg says.
func New(cfg Config) *Box {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = hostResolvConf(hostResolvPaths)
	}
	if cfg.CACerts == "" {
		cfg.CACerts = "/etc/ssl/certs/ca-certificates.crt"
	}
	return &Box{cfg: cfg, log: cfg.Logger}
}

// Run runs step in a sandbox of its own and returns once the step has
// ended and its sandbox (and network namespace) is gone. A step that exits
// non-zero or is killed is a *build.StepError; a step that could not run
// (no such program, bad mounts) is an error of another kind; when ctx ends
// first, the step is killed and the error is ctx's.
//
// The step's process runs as user 65532: a folder in step.Mounts that it
// must write must be owned by (or writable for) that user on the host, so
// the caller chowns it before. HOME is /tmp unless step.Env sets it; /tmp
// is a tmpfs of half the memory limit.
func (b *Box) Run(ctx context.Context, step build.Step) error {
	if b.cfg.Driver == nil {
		return errkind.Errorf(errkind.Unavailable, "running a build step: no sandbox driver")
	}
	if len(step.Args) == 0 || step.Args[0] == "" {
		return errkind.Errorf(errkind.Invalid, "running a build step: no command")
	}
	id := newID()
	spec := specOf(id, step)
	if step.Network {
		if b.cfg.Network == nil {
			return errkind.Errorf(errkind.Unavailable, "running build step %s: it needs the network, and there is no build network", step.Args[0])
		}
		spec.Mounts = append(spec.Mounts, runtime.Mount{Source: b.cfg.ResolvConf, Target: "/etc/resolv.conf", ReadOnly: true})
		if fi, err := os.Stat(b.cfg.CACerts); err == nil && fi.Mode().IsRegular() {
			spec.Mounts = append(spec.Mounts, runtime.Mount{Source: b.cfg.CACerts, Target: hostCATarget, ReadOnly: true})
			if !slices.ContainsFunc(spec.Env, func(kv string) bool { return strings.HasPrefix(kv, "NODE_EXTRA_CA_CERTS=") }) {
				spec.Env = append(spec.Env, "NODE_EXTRA_CA_CERTS="+hostCATarget)
			}
		}
	}
	if err := spec.ValidateForeground(); err != nil {
		return fmt.Errorf("running build step %s: %w", step.Args[0], err)
	}
	if step.Network {
		path, err := b.cfg.Network.Create(id)
		if err != nil {
			return fmt.Errorf("running build step %s: %w", step.Args[0], err)
		}
		defer b.teardown(ctx, id)
		if _, err := b.cfg.Network.Attach(ctx, id); err != nil {
			return fmt.Errorf("running build step %s: %w", step.Args[0], err)
		}
		spec.NetNS = path
	}
	exit, err := b.cfg.Driver.Run(ctx, spec, step.Stdout, step.Stderr)
	if err != nil {
		return fmt.Errorf("running build step %s: %w", step.Args[0], err)
	}
	if exit.Code != 0 {
		return &build.StepError{Args: slices.Clone(step.Args), Code: exit.Code, Why: why(exit)}
	}
	return nil
}

// teardown removes the network namespace of step id; a failure leaves a
// namespace and a lease behind but does not change the step's outcome.
func (b *Box) teardown(ctx context.Context, id string) {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	if err := b.cfg.Network.Teardown(tctx, id); err != nil {
		b.log.Warn("removing the network of a build step", "sandbox", id, "err", err)
	}
}

// specOf is the sandbox that runs step, without its network.
func specOf(id string, step build.Step) runtime.Spec {
	memory := step.Memory
	if memory == 0 {
		memory = DefaultMemory
	}
	pids := step.Pids
	if pids == 0 {
		pids = DefaultPids
	}
	env := slices.Clone(step.Env)
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		env = append(env, "HOME=/tmp")
	}
	mounts := make([]runtime.Mount, 0, len(step.Mounts)+1)
	for _, m := range step.Mounts {
		mounts = append(mounts, runtime.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	return runtime.Spec{
		ID:      id,
		Layers:  slices.Clone(step.Layers),
		Args:    slices.Clone(step.Args),
		Env:     env,
		Cwd:     step.Dir,
		Memory:  memory,
		Pids:    pids,
		TmpSize: memory / 2,
		Mounts:  mounts,
		Labels:  map[string]string{"role": "build"},
	}
}

// why says how a step that did not succeed ended, for build.StepError.
func why(e runtime.Exit) string {
	s := fmt.Sprintf("exit %d", e.Code)
	if e.Signal != "" {
		s = e.Signal
	}
	if e.OOMKilled {
		s += " (out of memory)"
	}
	return s
}

// newID returns a sandbox id for one step: "build-" and 12 random hex
// digits.
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return "build-" + hex.EncodeToString(b[:])
}
