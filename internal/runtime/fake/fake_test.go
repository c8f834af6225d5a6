package fake_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"noops/internal/errkind"
	"noops/internal/runtime"
	"noops/internal/runtime/fake"
	"noops/internal/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runtimetest.Cleanup()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	prog := runtimetest.Program(t)
	runtimetest.Run(t, func(t *testing.T) (runtime.Driver, runtimetest.Fixture) {
		d := fake.New()
		return d, runtimetest.Fixture{
			Program: prog,
			Restart: func(*testing.T) runtime.Driver { return d.Restart() },
		}
	})
}

// TestRefusesMounts: a host process cannot see a folder at a mount's
// target, so the fake refuses rather than pretend.
func TestRefusesMounts(t *testing.T) {
	d := fake.New()
	spec := runtime.Spec{
		ID:     "mounts",
		Args:   []string{runtimetest.Program(t), "exit", "0"},
		Log:    filepath.Join(t.TempDir(), "mounts.log"),
		Mounts: []runtime.Mount{{Source: t.TempDir(), Target: "/workspace"}},
	}
	if _, err := d.Start(context.Background(), spec); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Start with mounts = %v (kind %v), want Invalid", err, errkind.Of(err))
	}
	if _, err := d.State(context.Background(), "mounts"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("State after a refused Start = %v, want NotFound", err)
	}
}
