package supervisor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"noops/internal/spec"
	"noops/internal/store"
)

// standby is a web sandbox of an app's live release made ahead of need
// while the app is at zero replicas: its rootfs, network (attached, with
// its address), cgroup and namespaces exist and runc's init waits to exec
// the app (the driver's Create). A cold start takes it and only starts its
// process (StartCreated). It is not recorded in the store: a restarted
// server removes it as unrecorded and prepares a new one.
type standby struct {
	id   string
	rel  int
	addr string
	pid  int
}

// wantsStandby reports whether an app at zero replicas of rel keeps a
// standby: its manifest lets it scale to zero, and the image has a web
// process.
func wantsStandby(run spec.Run, procs map[string]process) bool {
	_, web := procs[Web]
	return web && run.Scale != nil && run.Scale.Min == 0
}

// keepStandby makes sure the app has a standby of rel when it should
// (want), in the background, and removes one of another release or one
// that is not wanted. Call with the app's rollout lock held.
func (s *Supervisor) keepStandby(app string, rel store.Release, run spec.Run, want bool) {
	want = want && !s.stoppingAll.Load()
	a := s.app(app)
	s.mu.Lock()
	old := a.standby
	if old != nil && (!want || old.rel != rel.Number) {
		a.standby = nil
	} else {
		old = nil
	}
	start := want && a.standby == nil && !a.preparing
	if start {
		a.preparing, a.stopped = true, false
	}
	s.mu.Unlock()
	if old != nil {
		s.cleanup(context.WithoutCancel(s.ctx), old.id)
	}
	if !start {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sb, err := s.prepare(rel, run)
		s.mu.Lock()
		a.preparing = false
		keep := err == nil && s.ctx.Err() == nil && a.standby == nil && !a.stopped && !s.stoppingAll.Load()
		if keep {
			a.standby = sb
		}
		s.mu.Unlock()
		switch {
		case err != nil:
			s.log.Warn("preparing a standby sandbox for cold starts", "app", app, "release", rel.Number, "err", err)
		case !keep:
			s.cleanup(context.WithoutCancel(s.ctx), sb.id)
		default:
			s.log.Debug("standby sandbox ready", "app", app, "sandbox", sb.id)
		}
	}()
}

// prepare creates a standby sandbox of rel.
func (s *Supervisor) prepare(rel store.Release, run spec.Run) (*standby, error) {
	ctx := s.ctx
	id := sandboxID(rel.App, rel.Number, Web)
	sp, err := s.sandboxSpec(ctx, rel, run, Web, id)
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join(s.cfg.LogDir, rel.App)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating log folder: %w", err)
	}
	sp.Log = filepath.Join(logDir, id+".log")
	t0 := time.Now()
	ns, err := s.net.Create(id)
	if err != nil {
		s.release(id)
		return nil, fmt.Errorf("creating network namespace: %w", err)
	}
	sp.NetNS = ns
	att, err := s.net.Attach(ctx, id)
	if err != nil {
		_ = s.net.Teardown(context.WithoutCancel(ctx), id)
		s.release(id)
		return nil, fmt.Errorf("attaching network: %w", err)
	}
	if err := s.admit(ctx, rel, id, att.IP); err != nil {
		s.cleanup(context.WithoutCancel(ctx), id)
		return nil, err
	}
	st, err := s.driver.Create(ctx, sp)
	if err != nil {
		s.cleanup(context.WithoutCancel(ctx), id)
		return nil, err
	}
	s.log.Debug("standby sandbox created", "sandbox", id, "took", time.Since(t0))
	return &standby{id: id, rel: rel.Number, addr: netip.AddrPortFrom(att.IP, uint16(run.Port)).String(), pid: st.Pid}, nil
}

// takeStandby hands out the app's standby of release rel for a new web
// replica, or nil when it has none.
func (s *Supervisor) takeStandby(app string, rel int) *standby {
	a := s.app(app)
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := a.standby
	if sb == nil || sb.rel != rel {
		return nil
	}
	a.standby = nil
	return sb
}

// dropStandby removes the app's standby, if any, and one being made (the
// app stops).
func (s *Supervisor) dropStandby(ctx context.Context, app string) {
	a := s.app(app)
	s.mu.Lock()
	sb := a.standby
	a.standby, a.stopped = nil, true
	s.mu.Unlock()
	if sb != nil {
		s.cleanup(context.WithoutCancel(ctx), sb.id)
	}
}
