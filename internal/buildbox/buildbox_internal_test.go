package buildbox

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"noops/internal/build"
	"noops/internal/runtime"
)

func TestSpecOf(t *testing.T) {
	base := build.Step{
		Layers: []string{"/images/a", "/images/b"},
		Args:   []string{"npm", "ci"},
		Dir:    "/workspace",
		Mounts: []build.Mount{{Source: "/data/src", Target: "/workspace"}, {Source: "/data/cache", Target: "/cache", ReadOnly: true}},
	}
	tests := []struct {
		name   string
		change func(*build.Step)
		check  func(runtime.Spec) bool
	}{
		{"memory defaults to 2 GiB", func(*build.Step) {}, func(s runtime.Spec) bool { return s.Memory == 2<<30 }},
		{"memory kept", func(st *build.Step) { st.Memory = 512 << 20 }, func(s runtime.Spec) bool { return s.Memory == 512<<20 }},
		{"pids default to 1024", func(*build.Step) {}, func(s runtime.Spec) bool { return s.Pids == 1024 }},
		{"pids kept", func(st *build.Step) { st.Pids = 64 }, func(s runtime.Spec) bool { return s.Pids == 64 }},
		{"/tmp is half the memory", func(*build.Step) {}, func(s runtime.Spec) bool { return s.TmpSize == 1<<30 }},
		{"HOME added", func(st *build.Step) { st.Env = []string{"CI=1"} }, func(s runtime.Spec) bool {
			return slices.Equal(s.Env, []string{"CI=1", "HOME=/tmp"})
		}},
		{"HOME kept", func(st *build.Step) { st.Env = []string{"HOME=/workspace"} }, func(s runtime.Spec) bool {
			return slices.Equal(s.Env, []string{"HOME=/workspace"})
		}},
		{"args, layers and working folder", func(*build.Step) {}, func(s runtime.Spec) bool {
			return slices.Equal(s.Args, []string{"npm", "ci"}) && slices.Equal(s.Layers, base.Layers) && s.Cwd == "/workspace"
		}},
		{"mounts", func(*build.Step) {}, func(s runtime.Spec) bool {
			return slices.Equal(s.Mounts, []runtime.Mount{{Source: "/data/src", Target: "/workspace"}, {Source: "/data/cache", Target: "/cache", ReadOnly: true}})
		}},
		{"no network namespace, no log", func(st *build.Step) { st.Network = true }, func(s runtime.Spec) bool { return s.NetNS == "" && s.Log == "" }},
		{"labelled as a build", func(*build.Step) {}, func(s runtime.Spec) bool { return s.Labels["role"] == "build" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := base
			tc.change(&st)
			s := specOf("build-0123456789ab", st)
			if !tc.check(s) {
				t.Errorf("specOf(%+v) = %+v: %s does not hold", st, s, tc.name)
			}
			if err := s.ValidateForeground(); err != nil {
				t.Errorf("specOf(%+v) is not valid: %v", st, err)
			}
		})
	}
	st := base
	st.Env = []string{"A=1"}
	specOf("build-0123456789ab", st)
	if !slices.Equal(st.Env, []string{"A=1"}) {
		t.Errorf("specOf changed the step's Env to %v", st.Env)
	}
}

func TestWhy(t *testing.T) {
	tests := []struct {
		name string
		exit runtime.Exit
		want string
	}{
		{"exit code", runtime.Exit{Code: 1}, "exit 1"},
		{"signal", runtime.Exit{Code: 143, Signal: "SIGTERM"}, "SIGTERM"},
		{"out of memory", runtime.Exit{Code: 137, Signal: "SIGKILL", OOMKilled: true}, "SIGKILL (out of memory)"},
		{"a child out of memory", runtime.Exit{Code: 1, OOMKilled: true}, "exit 1 (out of memory)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := why(tc.exit); got != tc.want {
				t.Errorf("why(%+v) = %q, want %q", tc.exit, got, tc.want)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	a, b := newID(), newID()
	if a == b {
		t.Errorf("newID() twice = %s", a)
	}
	for _, id := range []string{a, b} {
		if err := runtime.ValidID(id); err != nil || len(id) != len("build-")+12 {
			t.Errorf("newID() = %q (%v), want a valid sandbox id of build- and 12 hex digits", id, err)
		}
	}
}

func TestHostResolvConf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	upstream := write("upstream", "nameserver 192.0.2.1\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name  string
		paths [2]string
		want  string
	}{
		{"a real resolver", [2]string{write("real", "search example.org\nnameserver 192.0.2.53\n"), upstream}, filepath.Join(dir, "real")},
		{"systemd-resolved's stub", [2]string{write("stub", "# stub\nnameserver 127.0.0.53\noptions edns0\n"), upstream}, upstream},
		{"IPv6 loopback", [2]string{write("v6", "nameserver ::1\n"), upstream}, upstream},
		{"loopback and a real one", [2]string{write("mixed", "nameserver 127.0.0.53\nnameserver 192.0.2.53\n"), upstream}, filepath.Join(dir, "mixed")},
		{"stub without the upstream list", [2]string{filepath.Join(dir, "stub"), missing}, filepath.Join(dir, "stub")},
		{"no nameservers", [2]string{write("empty", "# nothing\n"), upstream}, filepath.Join(dir, "empty")},
		{"no file", [2]string{missing, upstream}, missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostResolvConf(tc.paths); got != tc.want {
				t.Errorf("hostResolvConf(%v) = %s, want %s", tc.paths, got, tc.want)
			}
		})
	}
}
