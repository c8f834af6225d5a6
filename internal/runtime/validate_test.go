package runtime_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"hello-1-abc123", true},
		{"a", true},
		{"9lives", true},
		{strings.Repeat("a", 48), true},
		{strings.Repeat("a", 49), false},
		{"", false},
		{"-flag", false},
		{"Upper", false},
		{"has_underscore", false},
		{"dot.dot", false},
		{"../escape", false},
		{"a/b", false},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			err := runtime.ValidID(tc.id)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
			}
			if err != nil && !errkind.Is(err, errkind.Invalid) {
				t.Errorf("ValidID(%q) kind %v, want Invalid", tc.id, errkind.Of(err))
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	good := runtime.Spec{ID: "ok", Args: []string{"/app"}, Log: "/logs/ok.log", Env: []string{"A=1", "B="}}
	tests := []struct {
		name   string
		change func(*runtime.Spec)
		ok     bool
	}{
		{"good", func(*runtime.Spec) {}, true},
		{"cwd absolute", func(s *runtime.Spec) { s.Cwd = "/srv" }, true},
		{"no args", func(s *runtime.Spec) { s.Args = nil }, false},
		{"relative cwd", func(s *runtime.Spec) { s.Cwd = "srv" }, false},
		{"relative log", func(s *runtime.Spec) { s.Log = "ok.log" }, false},
		{"env without key", func(s *runtime.Spec) { s.Env = []string{"=x"} }, false},
		{"env without =", func(s *runtime.Spec) { s.Env = []string{"A"} }, false},
		{"negative pids", func(s *runtime.Spec) { s.Pids = -1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.change(&s)
			err := s.Validate()
			if (err == nil) != tc.ok || err != nil && !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Validate() = %v (kind %v), want ok=%v or Invalid", err, errkind.Of(err), tc.ok)
			}
		})
	}
}

func TestExitOf(t *testing.T) {
	at := time.Unix(1, 0)
	tests := []struct {
		name string
		ws   syscall.WaitStatus // as the kernel encodes it
		want runtime.Exit
	}{
		{"exit 0", 0, runtime.Exit{Code: 0, At: at}},
		{"exit 3", 3 << 8, runtime.Exit{Code: 3, At: at}},
		{"killed", syscall.WaitStatus(syscall.SIGKILL), runtime.Exit{Code: 137, Signal: "SIGKILL", At: at}},
		{"terminated", syscall.WaitStatus(syscall.SIGTERM), runtime.Exit{Code: 143, Signal: "SIGTERM", At: at}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runtime.ExitOf(tc.ws, at); got != tc.want {
				t.Errorf("ExitOf(%#x) = %+v, want %+v", uint32(tc.ws), got, tc.want)
			}
		})
	}
}
