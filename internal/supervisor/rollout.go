package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"noops/internal/errkind"
	"noops/internal/store"
)

// Progress receives one line per step of a rollout.
type Progress func(line string)

// Rollout makes rel the app's live release: for each replica it starts a
// sandbox of rel, waits for it to pass its health check, routes to it, and
// only then drains and stops one sandbox of the previous release. If a new
// sandbox never becomes healthy the rollout stops, the new sandboxes are
// removed, the previous release keeps serving and rel is marked failed.
func (s *Supervisor) Rollout(ctx context.Context, rel store.Release, replicas int, progress Progress) error {
	if progress == nil {
		progress = func(string) {}
	}
	a := s.app(rel.App)
	a.rollout.Lock()
	defer a.rollout.Unlock()
	ctx = context.WithoutCancel(ctx) // a half-done rollout is worse than a finished one

	old := s.current(rel.App, rel.Number)
	var started []*instance
	fail := func(err error) error {
		for _, in := range started {
			s.retire(ctx, in)
		}
		if serr := s.store.SetReleaseStatus(ctx, rel.App, rel.Number, store.StatusFailed, err.Error()); serr != nil {
			s.log.Warn("marking release failed", "app", rel.App, "release", rel.Number, "err", serr)
		}
		s.publish(rel.App)
		if len(old) > 0 {
			// Replacing replicas one by one may have retired some of the
			// previous release's; bring the count back.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := s.Reconcile(s.ctx, rel.App); err != nil {
					s.log.Warn("restoring replicas after a failed rollout", "app", rel.App, "err", err)
				}
			}()
		}
		return errkind.WithHint(errkind.Invalid, fmt.Errorf("release %d of %s failed: %w", rel.Number, rel.App, err),
			liveHint(rel.App, len(old) > 0))
	}
	for i := 0; i < replicas; i++ {
		progress(fmt.Sprintf("starting replica %d/%d of release %d", i+1, replicas, rel.Number))
		in, err := s.newInstance(rel, "")
		if err != nil {
			return fail(err)
		}
		started = append(started, in)
		ready := make(chan error, 1)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.loop(in, false, ready) }()
		if err := <-ready; err != nil {
			<-in.done // its loop removes it; a failed deploy returns once it is gone
			started = started[:len(started)-1]
			return fail(err)
		}
		progress(fmt.Sprintf("replica %d/%d healthy at %s", i+1, replicas, in.row().Addr))
		if i < len(old) {
			progress(fmt.Sprintf("draining %s of release %d", old[i].id, old[i].rel.Number))
			s.retireLater(ctx, a, old[i])
		}
	}
	for _, in := range old[min(replicas, len(old)):] {
		progress(fmt.Sprintf("stopping %s of release %d", in.id, in.rel.Number))
		s.retireLater(ctx, a, in)
	}
	if _, err := s.store.Promote(ctx, rel.App, rel.Number, replicas, rel.Reason); err != nil {
		return fmt.Errorf("recording release %d of %s as live: %w", rel.Number, rel.App, err)
	}
	return nil
}

// retireLater takes in out of routing at once and drains and stops it in
// the background: a rollout returns as soon as the new release serves, and
// requests in flight on the old replica still finish (StopApp and Stop wait
// for it).
func (s *Supervisor) retireLater(ctx context.Context, a *appState, in *instance) {
	in.mu.Lock()
	in.draining, in.stopping = true, true
	in.mu.Unlock()
	s.publish(in.app)
	a.retiring.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer a.retiring.Done()
		s.retire(ctx, in)
	}()
}

func liveHint(app string, hadLive bool) string {
	if hadLive {
		return "the previous release keeps serving; see `noops logs " + app + "`"
	}
	return "see `noops logs " + app + "`"
}

// current returns the app's instances not of release skip, oldest first.
func (s *Supervisor) current(app string, skip int) []*instance {
	a := s.app(app)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*instance
	for _, in := range a.insts {
		if in.rel.Number != skip && !in.stopping {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

// Scale sets the app's replica count and starts or stops sandboxes of the
// live release to match. New replicas must pass their health check.
func (s *Supervisor) Scale(ctx context.Context, app string, n int) error {
	if _, err := s.store.SetReplicas(ctx, app, n); err != nil {
		return fmt.Errorf("recording replicas of %s: %w", app, err)
	}
	return s.Reconcile(ctx, app)
}

// Reconcile brings the app to its desired count of sandboxes of its live
// release.
func (s *Supervisor) Reconcile(ctx context.Context, app string) error {
	st, err := s.store.GetApp(ctx, app)
	if err != nil {
		return err
	}
	if st.Release == 0 {
		return nil
	}
	rel, err := s.store.GetRelease(ctx, app, st.Release)
	if err != nil {
		return err
	}
	a := s.app(app)
	a.rollout.Lock()
	defer a.rollout.Unlock()
	ctx = context.WithoutCancel(ctx)
	have := s.current(app, -1)
	var errs []error
	for i := len(have); i < st.Replicas; i++ {
		in, err := s.newInstance(rel, "")
		if err != nil {
			return err
		}
		ready := make(chan error, 1)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.loop(in, false, ready) }()
		if err := <-ready; err != nil {
			<-in.done
			errs = append(errs, err)
			break
		}
	}
	if len(have) > st.Replicas {
		for _, in := range have[st.Replicas:] {
			s.retire(ctx, in)
		}
	}
	s.publish(app)
	return errors.Join(errs...)
}

// StopApp stops and removes every sandbox of an app and its routes.
func (s *Supervisor) StopApp(ctx context.Context, app string) error {
	a := s.app(app)
	a.rollout.Lock()
	defer a.rollout.Unlock()
	for _, in := range s.current(app, -1) {
		s.retire(ctx, in)
	}
	a.retiring.Wait() // replicas of earlier releases still draining
	s.router.RemoveApp(app)
	return nil
}

// adopt takes over a sandbox that a previous server started.
func (s *Supervisor) adopt(ctx context.Context, row store.Sandbox) error {
	rel, err := s.store.GetRelease(ctx, row.App, row.Release)
	if err != nil {
		return err
	}
	in, err := s.newInstance(rel, row.ID)
	if err != nil {
		return err
	}
	in.addr, in.restarts, in.lastExit, in.created = row.Addr, row.Restarts, row.LastExit, row.Created
	if st, err := s.driver.State(ctx, row.ID); err == nil {
		in.pid = st.Pid
	}
	// A quick health check now so the gateway serves again at once.
	if err := s.healthy(ctx, in); err == nil {
		in.set("healthy", s.cfg.Now())
	}
	s.log.Info("adopted sandbox", "app", row.App, "sandbox", row.ID, "release", row.Release)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.loop(in, true, nil) }()
	return nil
}
