package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"noops/internal/errkind"
	"noops/internal/spec"
	"noops/internal/store"
)

// releaseTail is how many of a release command's last output lines a
// failure quotes.
const releaseTail = 5

// runRelease runs rel's release process once, to completion, in a
// foreground sandbox made as the app's are (the image's layers, the app's
// env, limits and hardening) on the app network, streaming its output to
// progress as "release: " lines. It returns nil when the command exits 0,
// and otherwise an error with the exit and its last lines of output. It is
// killed after Config.ReleaseTimeout, or when the supervisor stops.
func (s *Supervisor) runRelease(ctx context.Context, rel store.Release, run spec.Run, progress Progress) error {
	if s.cfg.Runner == nil {
		return errkind.Errorf(errkind.Internal, "the image of release %d has a release process, but this server cannot run one (no foreground runner)", rel.Number)
	}
	id := sandboxID(rel.App, rel.Number, Release)
	sp, err := s.sandboxSpec(ctx, rel, run, Release, id)
	if err != nil {
		return err
	}
	cmd := strings.Join(sp.Args, " ")
	rctx, cancel := context.WithTimeout(ctx, s.cfg.ReleaseTimeout)
	defer cancel()
	stopped := context.AfterFunc(s.ctx, cancel) // a server shutdown ends it too
	defer stopped()

	defer s.release(id) // its identity and firewall rules
	nsPath, err := s.net.Create(id)
	if err != nil {
		return fmt.Errorf("release command: creating network namespace: %w", err)
	}
	defer func() {
		if err := s.net.Teardown(context.WithoutCancel(ctx), id); err != nil {
			s.log.Warn("removing release command's network", "sandbox", id, "err", err)
		}
	}()
	att, err := s.net.Attach(rctx, id)
	if err != nil {
		return fmt.Errorf("release command: attaching network: %w", err)
	}
	if err := s.admit(rctx, rel, id, att.IP); err != nil {
		return fmt.Errorf("release command: %w", err)
	}
	sp.NetNS = nsPath

	progress(fmt.Sprintf("running release command of release %d: %s", rel.Number, cmd))
	out := &tailWriter{emit: func(line string) { progress("release: " + line) }, keep: releaseTail}
	exit, err := s.cfg.Runner.Run(rctx, sp, out, out)
	out.Flush()
	timedOut := errors.Is(rctx.Err(), context.DeadlineExceeded)
	switch {
	case timedOut:
		return fmt.Errorf("release command %q did not finish within %s and was killed%s", cmd, s.cfg.ReleaseTimeout, out.last())
	case s.ctx.Err() != nil && rctx.Err() != nil:
		return fmt.Errorf("release command %q was interrupted by a server shutdown%s", cmd, out.last())
	case err != nil && exit.At.IsZero():
		// It never ran to an exit: the command could not start (not in
		// the image, say) or the sandbox failed.
		return fmt.Errorf("release command %q could not run: %w%s", cmd, err, out.last())
	case err != nil:
		s.log.Warn("release command", "app", rel.App, "release", rel.Number, "err", err)
	}
	if exit.Code != 0 {
		return fmt.Errorf("release command %q failed (%s)%s", cmd, ExitText(exit), out.last())
	}
	progress(fmt.Sprintf("release command of release %d succeeded", rel.Number))
	return nil
}

// tailWriter turns output into lines for emit and keeps the last keep of
// them for an error message. Both of a sandbox's streams may share it.
type tailWriter struct {
	emit func(string)
	keep int

	mu    sync.Mutex
	buf   []byte
	lines []string
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.line(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a very long line without a newline
		w.line(string(w.buf))
		w.buf = nil
	}
	return len(b), nil
}

// Flush sends what is left as a last line.
func (w *tailWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

func (w *tailWriter) line(l string) {
	w.emit(l)
	if strings.TrimSpace(l) == "" {
		return
	}
	if len(l) > 300 {
		l = l[:300] + "…"
	}
	w.lines = append(w.lines, l)
	if len(w.lines) > w.keep {
		w.lines = w.lines[len(w.lines)-w.keep:]
	}
}

// last quotes the kept lines for an error message: "; last output: …".
func (w *tailWriter) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) == 0 {
		return "; it wrote nothing"
	}
	q := make([]string, len(w.lines))
	for i, l := range w.lines {
		q[i] = strconv.Quote(l)
	}
	return "; last output: " + strings.Join(q, " ")
}
