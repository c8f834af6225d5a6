package runc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fifoDir makes ROOT/ID/exec.fifo as runc create leaves it.
func fifoDir(t *testing.T) (root, path string) {
	t.Helper()
	root = t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "sb"), 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(root, "sb", execFifo)
	if err := unix.Mkfifo(path, 0o622); err != nil {
		t.Fatal(err)
	}
	return root, path
}

// initLike opens the FIFO for writing as runc's init does (blocking until
// a reader comes), writes data unless it is empty, and closes it.
func initLike(t *testing.T, path, data string) chan error {
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			done <- err
			return
		}
		if data != "" {
			_, err = f.WriteString(data)
		}
		f.Close()
		done <- err
	}()
	return done
}

func TestStartByFifo(t *testing.T) {
	ctx := context.Background()
	t.Run("started", func(t *testing.T) {
		root, path := fifoDir(t)
		done := initLike(t, path, "0")
		if err := startByFifo(ctx, root, "sb", os.Getpid(), 5*time.Second); err != nil {
			t.Fatalf("startByFifo: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("init side: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the FIFO is still there after the start (%v): runc would say created", err)
		}
	})
	t.Run("no fifo", func(t *testing.T) {
		if err := startByFifo(ctx, t.TempDir(), "sb", os.Getpid(), time.Second); !errors.Is(err, errNoFifo) {
			t.Errorf("startByFifo without a FIFO = %v, want errNoFifo", err)
		}
	})
	t.Run("init closes without a byte", func(t *testing.T) {
		root, path := fifoDir(t)
		initLike(t, path, "")
		err := startByFifo(ctx, root, "sb", os.Getpid(), 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "without starting") {
			t.Errorf("startByFifo = %v, want an error saying init never started", err)
		}
	})
	t.Run("init dead", func(t *testing.T) {
		root, _ := fifoDir(t)
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Skip("cannot run true")
		}
		start := time.Now()
		err := startByFifo(ctx, root, "sb", cmd.Process.Pid, 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "has exited") || time.Since(start) > 5*time.Second {
			t.Errorf("startByFifo with a dead init = %v after %s, want a quick error", err, time.Since(start))
		}
	})
	t.Run("timeout", func(t *testing.T) {
		root, _ := fifoDir(t)
		err := startByFifo(ctx, root, "sb", os.Getpid(), 200*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "did not take its start") {
			t.Errorf("startByFifo without a writer = %v, want a timeout", err)
		}
	})
}
