package buildbox_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"noops/internal/build"
	"noops/internal/buildbox"
	"noops/internal/errkind"
	"noops/internal/runtime/runtimetest"
)

// step is a step of the test image running testprog args.
func (f fixture) step(args ...string) build.Step {
	return build.Step{Layers: f.layers, Args: append([]string{runtimetest.ProgramPath}, args...), Memory: 64 << 20}
}

// checkNoNamespaces fails if a step left a network namespace behind.
func (f fixture) checkNoNamespaces(t *testing.T) {
	t.Helper()
	if ids, err := f.net.List(); err != nil || len(ids) > 0 {
		t.Errorf("network namespaces after the step: %v, %v; want none", ids, err)
	}
}

func TestExits(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name    string
		args    []string
		memory  int64
		network bool
		want    *build.StepError // nil: success
	}{
		{name: "success", args: []string{"exit", "0"}},
		{name: "success with network", args: []string{"exit", "0"}, network: true},
		{name: "exit code", args: []string{"exit", "3"}, want: &build.StepError{Code: 3, Why: "exit 3"}},
		{name: "exit code with network", args: []string{"exit", "4"}, network: true, want: &build.StepError{Code: 4, Why: "exit 4"}},
		{name: "out of memory", args: []string{"hog"}, memory: 32 << 20, want: &build.StepError{Code: 137, Why: "SIGKILL (out of memory)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := f.step(tc.args...)
			st.Network = tc.network
			if tc.memory != 0 {
				st.Memory = tc.memory
			}
			err := f.box.Run(context.Background(), st)
			f.checkNoNamespaces(t)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Run(%v) = %v, want success", tc.args, err)
				}
				return
			}
			var se *build.StepError
			if !errors.As(err, &se) {
				t.Fatalf("Run(%v) = %v, want a *build.StepError", tc.args, err)
			}
			if se.Code != tc.want.Code || se.Why != tc.want.Why || !slices.Equal(se.Args, st.Args) {
				t.Errorf("Run(%v) = %+v, want code %d, why %q and the step's args", tc.args, se, tc.want.Code, tc.want.Why)
			}
		})
	}
}

// TestNetwork: a step without network reaches nothing, not even the host
// over the build bridge; a step with network reaches, through its own eth0,
// a listener on the build bridge's gateway address and one on an address
// of this machine outside the build subnet (another bridge's gateway),
// which takes the default route through the host.
func TestNetwork(t *testing.T) {
	f := newFixture(t, nil)
	other := newNetwork(t, false)
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	gateway, gatewayPeers := listen(t, f.gateway)
	elsewhere, elsewherePeers := listen(t, other.Subnet().Addr().Next())
	tests := []struct {
		name    string
		network bool
		addr    netip.AddrPort
		peers   <-chan netip.AddrPort
		code    int    // 0: success
		want    string // in the output
	}{
		{"without network, the gateway", false, gateway, gatewayPeers, 1, "network is unreachable"},
		{"without network, beyond the subnet", false, elsewhere, elsewherePeers, 1, "network is unreachable"},
		{"with network, the gateway", true, gateway, gatewayPeers, 0, "dial: hello from the host"},
		{"with network, beyond the subnet", true, elsewhere, elsewherePeers, 0, "dial: hello from the host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := f.step("dial", tc.addr.String())
			st.Network = tc.network
			out := newBuffer()
			st.Stdout = out
			err := f.box.Run(context.Background(), st)
			f.checkNoNamespaces(t)
			var se *build.StepError
			switch {
			case tc.code == 0 && err != nil:
				t.Errorf("Run = %v, want success; output %q", err, out.String())
			case tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code):
				t.Errorf("Run = %v, want exit %d; output %q", err, tc.code, out.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output %q lacks %q", out.String(), tc.want)
			}
			select {
			case peer := <-tc.peers:
				if !tc.network {
					t.Errorf("the listener served %s for a step without network", peer)
				} else if !f.net.Subnet().Contains(peer.Addr()) || peer.Addr() == f.gateway {
					t.Errorf("the listener served %s, want an address of the build subnet %s", peer, f.net.Subnet())
				}
			default:
				if tc.network {
					t.Error("the listener served nobody")
				}
			}
		})
	}
}

// TestResolvConf: a step with network sees the configured resolv.conf,
// read-only; a step without has none.
func TestResolvConf(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53 # noops test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *buildbox.Config) { c.ResolvConf = resolv })
	tests := []struct {
		name    string
		args    []string
		network bool
		ok      bool
		want    string
	}{
		{"with network", []string{"cat", "/etc/resolv.conf"}, true, true, "nameserver 192.0.2.53 # noops test"},
		{"read-only", []string{"write", "/etc/resolv.conf", "nameserver 192.0.2.66"}, true, false, "read-only file system"},
		{"without network", []string{"cat", "/etc/resolv.conf"}, false, false, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := f.step(tc.args...)
			st.Network = tc.network
			out := newBuffer()
			st.Stdout = out
			err := f.box.Run(context.Background(), st)
			if (err == nil) != tc.ok || !strings.Contains(out.String(), tc.want) {
				t.Errorf("Run(%v) = %v, output %q; want success %v and %q", tc.args, err, out.String(), tc.ok, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(resolv); !strings.Contains(string(b), "192.0.2.53") {
		t.Errorf("the host's resolv.conf changed to %q", b)
	}
}

// TestMounts: the step writes a folder the caller gave to user 65532 and
// cannot write a read-only one.
func TestMounts(t *testing.T) {
	f := newFixture(t, nil)
	out, cache := t.TempDir(), t.TempDir()
	if err := os.Chown(out, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	mounts := []build.Mount{{Source: out, Target: "/workspace/out"}, {Source: cache, Target: "/cache", ReadOnly: true}}
	tests := []struct {
		name     string
		path     string
		ok       bool
		hostFile string // where the write lands; "" when it must not
	}{
		{"writable", "/workspace/out/result.txt", true, filepath.Join(out, "result.txt")},
		{"read-only", "/cache/result.txt", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := f.step("write", tc.path, "built")
			st.Mounts = mounts
			st.Dir = "/workspace"
			buf := newBuffer()
			st.Stdout = buf
			err := f.box.Run(context.Background(), st)
			if (err == nil) != tc.ok {
				t.Fatalf("Run = %v, output %q; want success %v", err, buf.String(), tc.ok)
			}
			if tc.hostFile == "" {
				if ents, _ := os.ReadDir(cache); len(ents) > 0 {
					t.Errorf("the read-only folder got %d entries", len(ents))
				}
				return
			}
			b, err := os.ReadFile(tc.hostFile)
			if err != nil || string(b) != "built" {
				t.Fatalf("host file %s = %q, %v; want what the step wrote", tc.hostFile, b, err)
			}
			var fi syscall.Stat_t
			if err := syscall.Stat(tc.hostFile, &fi); err != nil || fi.Uid != 65532 {
				t.Errorf("host file %s owned by uid %d (%v), want 65532", tc.hostFile, fi.Uid, err)
			}
		})
	}
}

// TestOutputStreamed: the step's writer sees its first line while it
// still runs.
func TestOutputStreamed(t *testing.T) {
	f := newFixture(t, nil)
	st := f.step("pause", "300ms")
	out := newBuffer()
	st.Stdout = out
	done := make(chan error, 1)
	go func() { done <- f.box.Run(context.Background(), st) }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), "before") {
		select {
		case <-out.wrote:
		case err := <-done:
			t.Fatalf("Run returned (%v) before the writer saw the first line; output %q", err, out.String())
		case <-deadline:
			t.Fatalf("no first line after 30s; output %q", out.String())
		}
	}
	if s := out.String(); strings.Contains(s, "after") {
		t.Errorf("the first line came with the last one: %q", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.HasSuffix(out.String(), "after\n") {
		t.Errorf("output %q lacks the last line", out.String())
	}
}

// TestEnvironment: HOME defaults to /tmp, the working folder is the step's.
func TestEnvironment(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name string
		env  []string
		dir  string
		want []string
	}{
		{"defaults", nil, "", []string{"env HOME: /tmp", "cwd: /"}},
		{"HOME and folder given", []string{"HOME=/etc", "NOOPS_PROBE=yes"}, "/etc", []string{"env HOME: /etc", "env NOOPS_PROBE: yes", "cwd: /etc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := f.step("probe")
			st.Env, st.Dir = tc.env, tc.dir
			out := newBuffer()
			st.Stdout = out
			if err := f.box.Run(context.Background(), st); err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w+"\n") {
					t.Errorf("probe output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestCancel: when ctx ends the step is killed, its network removed, and
// the error is ctx's, not a StepError.
func TestCancel(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := f.step("ignore-term")
	st.Network = true
	out := newBuffer()
	st.Stdout = out
	done := make(chan error, 1)
	go func() { done <- f.box.Run(ctx, st) }()
	for !strings.Contains(out.String(), "ready") {
		select {
		case <-out.wrote:
		case err := <-done:
			t.Fatalf("Run returned %v before the step was ready", err)
		case <-time.After(30 * time.Second):
			t.Fatal("the step was not ready after 30s")
		}
	}
	cancel()
	select {
	case err := <-done:
		var se *build.StepError
		if !errors.Is(err, context.Canceled) || errors.As(err, &se) {
			t.Errorf("Run = %v, want context.Canceled and no StepError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30s after ctx was cancelled")
	}
	f.checkNoNamespaces(t)
}

// TestRefused: steps that cannot run are errors with a kind, not
// StepErrors, and leave nothing behind.
func TestRefused(t *testing.T) {
	f := newFixture(t, nil)
	noDriver := buildbox.New(buildbox.Config{Driver: nil})
	tests := []struct {
		name   string
		box    *buildbox.Box
		change func(*build.Step)
		kind   errkind.Kind
		want   string
	}{
		{"no command", f.box, func(s *build.Step) { s.Args = nil }, errkind.Invalid, "no command"},
		{"missing program", f.box, func(s *build.Step) { s.Args = []string{"/bin/nope"}; s.Network = true }, errkind.Invalid, "/bin/nope"},
		{"program not on PATH", f.box, func(s *build.Step) { s.Args = []string{"npm", "ci"} }, errkind.Invalid, "npm"},
		{"mount on /proc", f.box, func(s *build.Step) {
			s.Mounts = []build.Mount{{Source: t.TempDir(), Target: "/proc"}}
			s.Network = true
		}, errkind.Invalid, "/proc"},
		{"missing mount source", f.box, func(s *build.Step) {
			s.Mounts = []build.Mount{{Source: "/no/such/folder", Target: "/workspace"}}
		}, errkind.Invalid, "/no/such/folder"},
		{"relative working folder", f.box, func(s *build.Step) { s.Dir = "workspace" }, errkind.Invalid, "workspace"},
		{"no driver", noDriver, func(*build.Step) {}, errkind.Unavailable, "driver"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := f.step("exit", "0")
			tc.change(&st)
			err := tc.box.Run(context.Background(), st)
			var se *build.StepError
			if errors.As(err, &se) || errkind.Of(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v (kind %v), want kind %v mentioning %q", err, errkind.Of(err), tc.kind, tc.want)
			}
			f.checkNoNamespaces(t)
		})
	}
}

// TestNoBuildNetwork: a Box without a build network refuses steps that
// need one and runs the others.
func TestNoBuildNetwork(t *testing.T) {
	f := newFixture(t, nil)
	box := buildbox.New(buildbox.Config{Driver: f.driver})
	st := f.step("exit", "0")
	if err := box.Run(context.Background(), st); err != nil {
		t.Errorf("Run without network = %v, want success", err)
	}
	st.Network = true
	if err := box.Run(context.Background(), st); !errkind.Is(err, errkind.Unavailable) {
		t.Errorf("Run with network = %v (kind %v), want Unavailable", err, errkind.Of(err))
	}
}

// TestLatency logs how long a step that exits at once takes, with and
// without network; the numbers are for people.
func TestLatency(t *testing.T) {
	f := newFixture(t, nil)
	for _, network := range []bool{false, true} {
		var took []time.Duration
		for range 5 {
			st := f.step("exit", "0")
			st.Network = network
			t0 := time.Now()
			if err := f.box.Run(context.Background(), st); err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(t0))
		}
		t.Logf("step (network %v): %v", network, took)
	}
}
