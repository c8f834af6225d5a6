package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"noops/internal/errkind"
	"noops/internal/store"
)

// Progress receives one line per step of a rollout.
type Progress func(line string)

// Rollout makes rel the app's live release. First, if rel's image has a
// release process, it runs it to completion (see runRelease); a failure
// stops the rollout before any sandbox starts. Then for each of replicas
// web replicas it starts a sandbox of rel, waits for it to pass its health
// check, routes to it, and only then takes one sandbox of the previous
// release out of routing (it is drained and stopped in the background).
// Once the web replicas serve, it starts rel's workers (run.workers; by
// default one when the image has a worker process), each of which must
// stay up for Config.WorkerSettle, and stops the previous release's
// workers; while they start, the previous web replicas are only out of
// routing, so that a worker that cannot start puts them back at once. An
// image without a web process runs no web replica, whatever replicas says.
// If a new sandbox never becomes ready the rollout stops, the new
// sandboxes are removed, the previous release keeps serving and rel is
// marked failed; the error is errkind.Invalid.
//
// A release that was live before (rel.Status superseded or live, as
// control's Rollback passes it, read before it marks it pending) does not
// run its release command again: it ran, and succeeded, before that
// release first went live, and release commands such as migrations go
// forward only, so the older release's command has nothing left to do, or
// fails against what a newer release made and blocks the very rollback
// meant to get out of trouble. Reconcile, Scale and restarts never run it.
// A new release with the same image (env set) is a new release and runs it.
func (s *Supervisor) Rollout(ctx context.Context, rel store.Release, replicas int, progress Progress) error {
	if progress == nil {
		progress = func(string) {}
	}
	a := s.app(rel.App)
	a.rollout.Lock()
	defer a.rollout.Unlock()
	ctx = context.WithoutCancel(ctx) // a half-done rollout is worse than a finished one

	oldWeb := s.current(rel.App, Web, rel.Number)
	oldWorkers := s.current(rel.App, Worker, rel.Number)
	var started []*instance
	var held []*instance // old web replicas out of routing, kept until the new workers run
	var guarded bool     // the new release's access section applies
	fail := func(err error) error {
		if guarded {
			// Requests are judged by the release that serves them again.
			if a, aerr := s.store.GetApp(ctx, rel.App); aerr == nil && a.Release > 0 {
				if gerr := s.guardLive(ctx, a); gerr != nil {
					s.log.Error("restoring the access policy of the live release", "app", rel.App, "err", gerr)
				}
			}
		}
		// The held replicas of the previous release serve again before the
		// new ones are drained, so that the app is never without one.
		for _, in := range held {
			in.mu.Lock()
			in.draining = false
			in.mu.Unlock()
		}
		s.publish(rel.App)
		for _, in := range started {
			s.retire(ctx, in)
		}
		if serr := s.store.SetReleaseStatus(ctx, rel.App, rel.Number, store.StatusFailed, err.Error()); serr != nil {
			s.log.Warn("marking release failed", "app", rel.App, "release", rel.Number, "err", serr)
		}
		s.publish(rel.App)
		if len(oldWeb)+len(oldWorkers) > 0 {
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
			liveHint(rel.App, len(oldWeb)+len(oldWorkers) > 0))
	}
	run, err := RunConfig(rel)
	if err != nil {
		return fail(err)
	}
	if run.Scale != nil {
		// An app that follows its load may be at zero: a release still
		// proves it serves before it goes live.
		replicas = max(replicas, run.Scale.Initial())
	}
	_, procs, err := s.releaseImage(rel)
	if err != nil {
		return fail(err)
	}
	webs := webCount(replicas, procs)
	workers, err := workerCount(run, procs)
	if err != nil {
		return fail(err)
	}
	if _, ok := procs[Release]; ok {
		if rel.Status == store.StatusSuperseded || rel.Status == store.StatusLive {
			progress(fmt.Sprintf("release %d ran its release command when it first went live; not running it again", rel.Number))
		} else if err := s.runRelease(ctx, rel, run, progress); err != nil {
			return fail(err)
		}
	}
	if _, ok := procs[Web]; !ok && replicas > 0 {
		progress(fmt.Sprintf("release %d has no web process: nothing to route", rel.Number))
	}
	if s.cfg.Guard != nil {
		// The new release's access section applies from its first routed
		// replica on (the previous release's replicas serve under it too
		// while they drain).
		if err := s.cfg.Guard.SetRelease(rel); err != nil {
			return fail(err)
		}
		guarded = true
	}

	// start runs one new sandbox of rel and waits for it to be ready.
	start := func(proc string) (*instance, error) {
		in, err := s.newInstance(rel, proc, "")
		if err != nil {
			return nil, err
		}
		started = append(started, in)
		ready := make(chan error, 1)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.loop(in, false, ready) }()
		if err := <-ready; err != nil {
			<-in.done // its loop removes it; a failed deploy returns once it is gone
			started = started[:len(started)-1]
			return nil, err
		}
		return in, nil
	}
	// Old web replicas are retired as new ones serve. When workers are to
	// start after them, they are only taken out of routing until the
	// workers run, so that a worker that cannot start leaves the previous
	// release serving at once rather than after a restart.
	hold := workers > 0
	for i := 0; i < webs; i++ {
		progress(fmt.Sprintf("starting replica %d/%d of release %d", i+1, webs, rel.Number))
		in, err := start(Web)
		if err != nil {
			return fail(err)
		}
		progress(fmt.Sprintf("replica %d/%d healthy at %s", i+1, webs, in.row().Addr))
		if i < len(oldWeb) {
			old := oldWeb[i]
			if hold {
				progress(fmt.Sprintf("taking %s of release %d out of routing", old.id, old.rel.Number))
				old.mu.Lock()
				old.draining = true
				old.mu.Unlock()
				s.publish(rel.App)
				held = append(held, old)
				continue
			}
			progress(fmt.Sprintf("draining %s of release %d", old.id, old.rel.Number))
			s.retireLater(ctx, a, old)
		}
	}
	for i := 0; i < workers; i++ {
		progress(fmt.Sprintf("starting worker %d/%d of release %d", i+1, workers, rel.Number))
		in, err := start(Worker)
		if err != nil {
			return fail(err)
		}
		progress(fmt.Sprintf("worker %d/%d running as %s", i+1, workers, in.id))
	}
	s.setNoWeb(rel.App, procs)
	for _, in := range held {
		progress(fmt.Sprintf("draining %s of release %d", in.id, in.rel.Number))
		s.retireLater(ctx, a, in)
	}
	for _, in := range oldWeb[min(webs, len(oldWeb)):] {
		progress(fmt.Sprintf("stopping %s of release %d", in.id, in.rel.Number))
		s.retireLater(ctx, a, in)
	}
	for _, in := range oldWorkers {
		progress(fmt.Sprintf("stopping worker %s of release %d", in.id, in.rel.Number))
		s.retireLater(ctx, a, in)
	}
	s.publish(rel.App)
	// A standby of the previous release is of no use now; one of this
	// release is made when it next goes to zero.
	s.keepStandby(rel.App, rel, run, wantsStandby(run, procs) && webs == 0)
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

// current returns the app's instances of process type proc ("" for all)
// not of release skip and not being retired, oldest first.
func (s *Supervisor) current(app, proc string, skip int) []*instance {
	a := s.app(app)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*instance
	for _, in := range a.insts {
		if in.rel.Number != skip && !in.stopping && (proc == "" || in.proc == proc) {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

// Scale sets the app's web replica count and starts or stops sandboxes of
// the live release to match. New replicas must pass their health check.
// Workers keep their count (run.workers).
func (s *Supervisor) Scale(ctx context.Context, app string, n int) error {
	if _, err := s.store.SetReplicas(ctx, app, n); err != nil {
		return fmt.Errorf("recording replicas of %s: %w", app, err)
	}
	return s.Reconcile(ctx, app)
}

// Reconcile brings the app to its desired counts of web and worker
// sandboxes of its live release. It never runs the release command: the
// live release ran it before it went live.
func (s *Supervisor) Reconcile(ctx context.Context, app string) error {
	a := s.app(app)
	a.rollout.Lock()
	defer a.rollout.Unlock()
	return s.reconcile(ctx, app, -1)
}

// reconcile is Reconcile with the app's rollout lock held, to replicas
// web replicas (-1: the store's count).
func (s *Supervisor) reconcile(ctx context.Context, app string, replicas int) error {
	ctx = context.WithoutCancel(ctx)
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
	if replicas < 0 {
		replicas = st.Replicas
	}
	run, err := RunConfig(rel)
	if err != nil {
		return err
	}
	_, procs, err := s.releaseImage(rel)
	if err != nil {
		return err
	}
	workers, err := workerCount(run, procs)
	if err != nil {
		return err
	}
	s.setNoWeb(app, procs)
	var errs []error
	for _, want := range []struct {
		proc string
		n    int
	}{{Web, webCount(replicas, procs)}, {Worker, workers}} {
		have := s.current(app, want.proc, -1)
		for i := len(have); i < want.n; i++ {
			var sb *standby
			id := ""
			if want.proc == Web {
				if sb = s.takeStandby(app, rel.Number); sb != nil {
					id = sb.id
				}
			}
			in, err := s.newInstance(rel, want.proc, id)
			if err != nil {
				return err
			}
			in.standby = sb
			ready := make(chan error, 1)
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.loop(in, false, ready) }()
			if err := <-ready; err != nil {
				<-in.done
				errs = append(errs, err)
				break
			}
		}
		if len(have) > want.n {
			for _, in := range have[want.n:] {
				s.retire(ctx, in)
			}
		}
	}
	s.publish(app)
	s.keepStandby(app, rel, run, wantsStandby(run, procs) && webCount(replicas, procs) == 0)
	return errors.Join(errs...)
}

// StopApp stops and removes every sandbox of an app and its routes.
func (s *Supervisor) StopApp(ctx context.Context, app string) error {
	a := s.app(app)
	a.rollout.Lock()
	defer a.rollout.Unlock()
	for _, in := range s.current(app, "", -1) {
		s.retire(ctx, in)
	}
	s.dropStandby(ctx, app)
	a.retiring.Wait() // replicas of earlier releases still draining
	s.router.RemoveApp(app)
	if s.cfg.Guard != nil {
		s.cfg.Guard.RemoveApp(app)
	}
	return nil
}

// adopt takes over a sandbox that a previous server started.
func (s *Supervisor) adopt(ctx context.Context, row store.Sandbox) error {
	rel, err := s.store.GetRelease(ctx, row.App, row.Release)
	if err != nil {
		return err
	}
	in, err := s.newInstance(rel, "", row.ID)
	if err != nil {
		return err
	}
	in.addr, in.restarts, in.lastExit, in.created = row.Addr, row.Restarts, row.LastExit, row.Created
	if st, err := s.driver.State(ctx, row.ID); err == nil {
		in.pid = st.Pid
	}
	// The firewall was rebuilt when this server started: open the
	// sandbox's egress again. A worker's address is not recorded, so an
	// adopted worker keeps a closed egress until its next restart.
	if ap, err := netip.ParseAddrPort(row.Addr); err == nil {
		if err := s.admit(ctx, rel, row.ID, ap.Addr()); err != nil {
			s.log.Warn("re-applying the firewall of an adopted sandbox", "sandbox", row.ID, "err", err)
		}
	}
	switch {
	case in.proc != Web:
		in.addr = ""
		in.set(in.readyState(), s.cfg.Now()) // Start checked that it runs
	case s.healthy(ctx, in) == nil:
		// A quick health check now so the gateway serves again at once.
		in.set("healthy", s.cfg.Now())
	}
	s.log.Info("adopted sandbox", "app", row.App, "sandbox", row.ID, "release", row.Release)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.loop(in, true, nil) }()
	return nil
}
