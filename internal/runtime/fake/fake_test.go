package fake_test

import (
	"os"
	"testing"

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
