package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"noops/internal/spec"
)

// Autoscale sets the app's web replica count to n and brings its
// sandboxes to it, as Scale does, for the autoscaler. With wait false it
// does nothing and returns false when a rollout, scale or stop of the app
// is under way (the autoscaler decides again a second later); with wait
// true (a cold start) it waits for it.
func (s *Supervisor) Autoscale(ctx context.Context, app string, n int, wait bool) (bool, error) {
	a := s.app(app)
	if wait {
		a.rollout.Lock()
	} else if !a.rollout.TryLock() {
		return false, nil
	}
	defer a.rollout.Unlock()
	st, err := s.store.GetApp(ctx, app)
	if err != nil {
		return false, err
	}
	if st.Release == 0 {
		return false, nil // deleted, or never deployed
	}
	if st.Replicas == n {
		return true, s.reconcile(ctx, app, n)
	}
	// Up first, then recorded: a cold start waits for the sandbox, not for
	// the store's commits. A crash in between leaves the store's count,
	// which the next server applies.
	err = s.reconcile(ctx, app, n)
	if _, serr := s.store.SetReplicas(ctx, app, n); serr != nil {
		return false, errors.Join(err, fmt.Errorf("recording replicas of %s: %w", app, serr))
	}
	why := "the load changed"
	if wait && st.Replicas == 0 {
		why = "a request arrived at zero replicas"
	}
	s.event(app, EventScaled, "autoscaler: %d -> %d web replicas (%s)", st.Replicas, n, why)
	return true, err
}

// Replicas returns the app's desired web replica count (the store's), how
// many of its web sandboxes serve, and when the newest of those started.
func (s *Supervisor) Replicas(app string) (desired, ready int, newest time.Time) {
	if st, err := s.store.GetApp(context.Background(), app); err == nil {
		desired = st.Replicas
	}
	a := s.app(app)
	s.mu.Lock()
	insts := make([]*instance, 0, len(a.insts))
	for _, in := range a.insts {
		insts = append(insts, in)
	}
	s.mu.Unlock()
	for _, in := range insts {
		if in.routable() {
			ready++
			if in.created.After(newest) {
				newest = in.created
			}
		}
	}
	return desired, ready, newest
}

// Scaled returns the scale section of every app whose live release has
// one. Releases are read once per release number.
func (s *Supervisor) Scaled(ctx context.Context) (map[string]spec.Scale, error) {
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]spec.Scale{}
	s.scaledMu.Lock()
	defer s.scaledMu.Unlock()
	seen := map[string]bool{}
	for _, a := range apps {
		if a.Release == 0 {
			continue
		}
		seen[a.Name] = true
		c, ok := s.scaled[a.Name]
		if !ok || c.release != a.Release {
			rel, err := s.store.GetRelease(ctx, a.Name, a.Release)
			if err != nil {
				return nil, err
			}
			run, err := RunConfig(rel)
			if err != nil {
				return nil, err
			}
			c = scaledRelease{release: a.Release, scale: run.Scale}
			s.scaled[a.Name] = c
		}
		if c.scale != nil {
			out[a.Name] = *c.scale
		}
	}
	for name := range s.scaled {
		if !seen[name] {
			delete(s.scaled, name)
		}
	}
	return out, nil
}

// scaledRelease caches the scale section of an app's live release.
type scaledRelease struct {
	release int
	scale   *spec.Scale
}
