package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"noops/internal/errkind"
)

// SandboxUID owns what build steps write: they run as the platform's
// non-root user.
const SandboxUID = 65532

// Tool runs a build step of a buildpack in the build image of stack: the
// mounts' host folders are handed to the sandbox's user first, the output
// streams to the build log, and a step that fails becomes an
// errkind.Invalid error carrying the end of its output and hint.
func (bc *Context) Tool(ctx context.Context, stack string, step Step, hint string) error {
	layers, err := bc.BuildImage(ctx, stack)
	if err != nil {
		return err
	}
	step.Layers = layers
	for _, m := range step.Mounts {
		if m.ReadOnly {
			continue
		}
		if err := ChownTree(m.Source); err != nil {
			return fmt.Errorf("preparing %s for the build sandbox: %w", m.Target, err)
		}
	}
	tail := &Tail{}
	out := io.MultiWriter(bc.Log, tail)
	step.Stdout, step.Stderr = out, out
	fmt.Fprintf(bc.Log, "$ %s\n", strings.Join(step.Args, " "))
	err = bc.Run(ctx, step)
	var se *StepError
	if errors.As(err, &se) {
		return errkind.WithHint(errkind.Invalid, fmt.Errorf("%s (%s):\n%s", strings.Join(step.Args, " "), se.Why, tail.Last(40)), hint)
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", strings.Join(step.Args, " "), err)
	}
	return nil
}

// ChownTree gives dir and everything under it to the sandbox's user, so a
// build step can write there.
func ChownTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, SandboxUID, SandboxUID)
	})
}

// Tail keeps the last lines written to it, for error messages.
type Tail struct {
	mu    sync.Mutex
	lines []string
	part  string
}

const tailKeep = 200

func (t *Tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(b)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	t.lines = append(t.lines, parts[:len(parts)-1]...)
	if len(t.lines) > tailKeep {
		t.lines = t.lines[len(t.lines)-tailKeep:]
	}
	return len(b), nil
}

// Last returns at most the last n lines, joined.
func (t *Tail) Last(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.lines...)
	if t.part != "" {
		lines = append(lines, t.part)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
