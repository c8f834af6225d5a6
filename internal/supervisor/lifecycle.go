package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

type exitResult struct {
	exit runtime.Exit
	err  error
}

// errRetired ends an instance's loop because the supervisor retired it.
var errRetired = errors.New("retired")

// loop runs an instance until it is retired or the supervisor stops.
// ready, when not nil, receives the outcome of the first start: nil once the
// sandbox is ready (healthy, or a worker settled), or why it never got
// there (and the loop ends: a rollout does not retry a release that cannot
// start). A worker that exits later is restarted with the same back-off
// as a web sandbox.
func (s *Supervisor) loop(in *instance, adopted bool, ready chan<- error) {
	defer close(in.done)
	failures := 0
	for attempt := 0; ; attempt++ {
		started := s.cfg.Now()
		err := s.runOnce(in, adopted, attempt == 0 && ready != nil, ready)
		adopted = false
		if in.ctx.Err() != nil {
			in.mu.Lock()
			stopping := in.stopping
			in.mu.Unlock()
			if stopping {
				s.teardown(in)
			}
			return // server shutdown: leave the sandbox running for the next server
		}
		if attempt == 0 && ready != nil && errors.Is(err, errNeverReady) {
			s.teardown(in)
			return
		}
		// The sandbox ended: clear it away and restart after a back-off.
		s.cleanup(context.WithoutCancel(in.ctx), in.id)
		if s.cfg.Now().Sub(started) > time.Minute {
			failures = 0
		}
		failures++
		delay := backoff(failures, s.cfg.BackoffMin, s.cfg.BackoffMax)
		state := "backoff"
		if failures >= 3 {
			state = "crashloop"
			s.log.Warn("sandbox is crash-looping", "app", in.app, "sandbox", in.id, "restarts", in.restarts, "last_exit", in.lastExitText(), "next_try", delay)
			if failures == 3 {
				s.event(in.app, EventCrashLoop, "sandbox %s (%s of release %d) failed %d times in a row (last: %s); it restarts after back-offs of up to %s",
					in.id, in.proc, in.rel.Number, failures, in.lastExitText(), s.cfg.BackoffMax)
			}
		}
		in.mu.Lock()
		in.restarts++
		in.addr, in.pid = "", 0
		in.mu.Unlock()
		in.set(state, s.cfg.Now())
		s.save(in)
		s.publish(in.app)
		select {
		case <-time.After(delay):
		case <-in.ctx.Done():
			continue // the top of the loop sees the cancellation
		}
		in.set("starting", s.cfg.Now())
	}
}

// backoff is the delay before a restart after failures failures in a row
// (counting from 1): lo doubled for each failure after the first, capped at
// hi. It never overflows, and a non-positive lo gives hi.
func backoff(failures int, lo, hi time.Duration) time.Duration {
	if lo <= 0 || lo > hi {
		return hi
	}
	d := lo
	for i := 1; i < failures; i++ {
		if d > hi/2 {
			return hi
		}
		d *= 2
	}
	return d
}

// errNeverReady marks a first start that did not become ready.
var errNeverReady = errors.New("never became ready")

// runOnce starts the sandbox (unless adopted), waits for it to be ready
// (a web sandbox healthy, a worker settled) and watches it until it exits
// or the instance is cancelled.
func (s *Supervisor) runOnce(in *instance, adopted, first bool, ready chan<- error) error {
	if !adopted {
		// A cold start (a standby's) writes the store once it serves, not
		// before: each commit is an fsync on the request's path. Should the
		// server die before, the next one removes the unrecorded sandbox.
		cold := in.standby != nil
		in.set("starting", s.cfg.Now())
		if !cold {
			s.save(in)
		}
		if err := s.launchRetrying(in, first); err != nil {
			if first {
				ready <- fmt.Errorf("starting sandbox %s: %w", in.id, err)
				return errNeverReady
			}
			return err
		}
		if !cold {
			s.save(in)
		}
	}
	exited := make(chan exitResult, 1)
	go func() {
		e, err := s.driver.Wait(in.ctx, in.id)
		exited <- exitResult{e, err}
	}()

	await, watch := s.awaitHealthy, s.watch
	if in.proc != Web {
		await, watch = s.awaitSettled, s.watchExit
	}
	if err := await(in, exited, adopted); err != nil {
		if first {
			ready <- err
			return errNeverReady
		}
		return err
	}
	in.set(in.readyState(), s.cfg.Now())
	s.publish(in.app) // routed first, recorded after
	s.save(in)
	if first {
		ready <- nil
	}
	return watch(in, exited)
}

// StartTries is how many times a first start is tried when it fails for
// a reason that may pass (runc, the network, a full disk), with the
// back-off between tries, before the rollout gives up; a restart is
// retried by the loop without end.
const StartTries = 3

// launchRetrying launches the sandbox, recording each failure as an event
// and in the instance's last exit; a first start is tried again
// (StartTries) unless the failure is the release's own (errkind.Invalid:
// no such entrypoint, a bad image).
func (s *Supervisor) launchRetrying(in *instance, first bool) error {
	for try := 1; ; try++ {
		err := s.launch(in)
		if err == nil {
			return nil
		}
		in.mu.Lock()
		in.lastExit = "start failed: " + err.Error()
		in.mu.Unlock()
		s.log.Warn("starting sandbox", "app", in.app, "sandbox", in.id, "try", try, "err", err)
		s.event(in.app, EventStartFailed, "sandbox %s (%s of release %d) could not start (try %d): %v", in.id, in.proc, in.rel.Number, try, err)
		if !first || try >= StartTries || errkind.Is(err, errkind.Invalid) {
			return err
		}
		select {
		case <-time.After(backoff(try, s.cfg.BackoffMin, s.cfg.BackoffMax)):
		case <-in.ctx.Done():
			return err
		}
	}
}

// awaitSettled waits for a worker to stay up for the settle time: it has
// no port to check, so outliving a crash at start-up is what ready means.
// An adopted worker has been up since an earlier server started it.
func (s *Supervisor) awaitSettled(in *instance, exited <-chan exitResult, adopted bool) error {
	if adopted {
		return nil
	}
	settle := time.NewTimer(s.cfg.WorkerSettle)
	defer settle.Stop()
	select {
	case r := <-exited:
		s.recordExit(in, r)
		return fmt.Errorf("the %s of release %d exited within %s of its start (%s); see `noops logs %s`",
			in.proc, in.rel.Number, s.cfg.WorkerSettle, in.lastExitText(), in.app)
	case <-in.ctx.Done():
		return in.ctx.Err()
	case <-settle.C:
		return nil
	}
}

// watchExit waits for a worker to exit: it is not health-checked.
func (s *Supervisor) watchExit(in *instance, exited <-chan exitResult) error {
	select {
	case r := <-exited:
		s.recordExit(in, r)
		return fmt.Errorf("exited: %s", in.lastExitText())
	case <-in.ctx.Done():
		return in.ctx.Err()
	}
}

// awaitHealthy polls the health check quickly until it passes, the sandbox
// exits or the start timeout passes.
func (s *Supervisor) awaitHealthy(in *instance, exited <-chan exitResult, adopted bool) error {
	deadline := time.NewTimer(s.cfg.StartTimeout)
	defer deadline.Stop()
	// Poll every millisecond for the first 200ms (a refused connection
	// costs microseconds, and each millisecond here is one of a cold
	// start's or a deploy's), every 10ms up to two seconds, then every
	// 100ms.
	const quick, fast, slow = time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond
	begun := time.Now()
	wait := quick
	var last error
	for {
		if last = s.healthy(in.ctx, in); last == nil {
			return nil
		}
		select {
		case r := <-exited:
			s.recordExit(in, r)
			return fmt.Errorf("release %d exited before it became healthy (%s); see `noops logs %s`", in.rel.Number, in.lastExitText(), in.app)
		case <-in.ctx.Done():
			return in.ctx.Err()
		case <-deadline.C:
			if adopted {
				return fmt.Errorf("adopted sandbox %s is not healthy: %w", in.id, last)
			}
			return fmt.Errorf("release %d did not pass its health check within %s: %v", in.rel.Number, s.cfg.StartTimeout, last)
		case <-time.After(wait):
		}
		switch since := time.Since(begun); {
		case since > 2*time.Second:
			wait = slow
		case since > 200*time.Millisecond:
			wait = fast
		}
	}
}

// watch checks a healthy sandbox until it exits; three failed checks in a
// row take it out of routing and restart it.
func (s *Supervisor) watch(in *instance, exited <-chan exitResult) error {
	tick := time.NewTicker(s.cfg.CheckInterval)
	defer tick.Stop()
	fails := 0
	for {
		select {
		case r := <-exited:
			s.recordExit(in, r)
			return fmt.Errorf("exited: %s", in.lastExitText())
		case <-in.ctx.Done():
			return in.ctx.Err()
		case <-tick.C:
			if err := s.healthy(in.ctx, in); err != nil {
				fails++
				s.log.Warn("health check failed", "app", in.app, "sandbox", in.id, "err", err, "in_a_row", fails)
				if fails == 1 {
					continue
				}
				in.set("unhealthy", s.cfg.Now())
				s.save(in)
				s.publish(in.app)
				if fails >= 3 {
					in.mu.Lock()
					in.lastExit = "killed after 3 failed health checks: " + err.Error()
					in.mu.Unlock()
					return errors.New(in.lastExitText())
				}
				continue
			}
			if fails > 0 {
				fails = 0
				in.set("healthy", s.cfg.Now())
				s.save(in)
				s.publish(in.app)
			}
		}
	}
}

func (in *instance) lastExitText() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lastExit
}

func (s *Supervisor) recordExit(in *instance, r exitResult) {
	text := ExitText(r.exit)
	if r.err != nil {
		text = "lost: " + r.err.Error()
	}
	in.mu.Lock()
	in.lastExit = text
	in.mu.Unlock()
	in.set("exited", s.cfg.Now())
	s.save(in)
	s.publish(in.app)
	s.log.Warn("sandbox exited", "app", in.app, "sandbox", in.id, "process", in.proc, "release", in.rel.Number, "exit", text)
	if r.err == nil && r.exit.OOMKilled {
		s.event(in.app, EventOOM, "sandbox %s (%s of release %d) was killed for exceeding its memory limit of %s",
			in.id, in.proc, in.rel.Number, in.run.Memory)
	}
}

// ExitText describes an exit for people: "exit 2", "SIGKILL (out of memory)".
func ExitText(e runtime.Exit) string {
	var t string
	switch {
	case e.Signal != "":
		t = e.Signal
	default:
		t = fmt.Sprintf("exit %d", e.Code)
	}
	if e.OOMKilled {
		t += " (out of memory)"
	}
	return t
}

// teardown removes a retired instance completely.
func (s *Supervisor) teardown(in *instance) {
	ctx := context.WithoutCancel(in.ctx)
	in.set("stopping", s.cfg.Now())
	s.cleanup(ctx, in.id)
	if err := s.store.DeleteSandbox(ctx, in.id); err != nil {
		s.log.Warn("forgetting sandbox", "sandbox", in.id, "err", err)
	}
	s.forget(in)
	s.publish(in.app)
}

// retire drains an instance (a web one: workers get no requests) and
// stops it for good, with the StopGrace between SIGTERM and SIGKILL.
func (s *Supervisor) retire(ctx context.Context, in *instance) {
	in.mu.Lock()
	in.draining, in.stopping = true, true
	in.mu.Unlock()
	s.publish(in.app)
	if in.proc == Web {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
		if err := s.router.Drain(dctx, in.id); err != nil {
			s.log.Warn("draining sandbox", "sandbox", in.id, "err", err)
		}
		cancel()
	}
	in.cancel()
	<-in.done
}
