package supervisor

import (
	"context"
	"testing"
	"time"

	"noops/internal/runtime"
	"noops/internal/spec"
)

// TestStandby: an app that may scale to zero gets, at zero replicas, a
// created sandbox of its live release; a cold start starts that very
// sandbox; stopping the app while the next one is made leaves nothing.
func TestStandby(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	scale := &spec.Scale{Min: 0, Max: 2, Concurrency: 10, Idle: spec.Duration(time.Second), Window: spec.Duration(6 * time.Second)}
	h.rolloutOK(h.release("lazy", h.image(map[string]proc{Web: {role: "web"}}), spec.Run{Scale: scale}, nil), 1)
	if rows := h.s.Instances("lazy"); len(rows) != 1 || rows[0].State != "healthy" {
		t.Fatalf("after the rollout: %+v, want one healthy replica and no standby", rows)
	}

	if ok, err := h.s.Autoscale(ctx, "lazy", 0, true); !ok || err != nil {
		t.Fatalf("Autoscale to 0 = %v, %v", ok, err)
	}
	var standbyID string
	h.waitFor("a standby at zero replicas", func() bool {
		rows := h.s.Instances("lazy")
		if len(rows) == 1 && rows[0].State == StateStandby {
			standbyID = rows[0].ID
			return true
		}
		return false
	})
	if st, err := h.driver.State(ctx, standbyID); err != nil || st.Status != runtime.Created {
		t.Fatalf("the standby's sandbox is %+v, %v; want created, not started", st, err)
	}
	if _, ready, _ := h.s.Replicas("lazy"); ready != 0 {
		t.Errorf("a standby counts as %d ready replicas, want 0", ready)
	}
	if desired, _, _ := h.s.Replicas("lazy"); desired != 0 {
		t.Errorf("desired replicas at zero = %d", desired)
	}

	if ok, err := h.s.Autoscale(ctx, "lazy", 1, true); !ok || err != nil {
		t.Fatalf("Autoscale to 1 = %v, %v", ok, err)
	}
	rows := h.s.Instances("lazy")
	if len(rows) != 1 || rows[0].ID != standbyID || rows[0].State != "healthy" {
		t.Fatalf("after a cold start: %+v, want the standby %s healthy", rows, standbyID)
	}
	if st, err := h.driver.State(ctx, standbyID); err != nil || st.Status != runtime.Running {
		t.Errorf("the started standby is %+v, %v; want running", st, err)
	}
	if evs := h.events("lazy", EventScaled); len(evs) != 2 {
		t.Errorf("scaled events = %+v, want 2", evs)
	}

	// A new release of an app at zero still rolls out one replica,
	// health-gated, and drops the old release's standby.
	if _, err := h.s.Autoscale(ctx, "lazy", 0, true); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a standby again", func() bool {
		rows := h.s.Instances("lazy")
		return len(rows) == 1 && rows[0].State == StateStandby
	})
	h.rolloutOK(h.release("lazy", h.image(map[string]proc{Web: {role: "web"}}), spec.Run{Scale: scale}, nil), 0)
	rows = h.s.Instances("lazy")
	if len(rows) != 1 || rows[0].State != "healthy" || rows[0].Release != 2 {
		t.Fatalf("after a rollout at zero: %+v, want one healthy replica of release 2", rows)
	}
	if desired, _, _ := h.s.Replicas("lazy"); desired != 1 {
		t.Errorf("desired after a rollout at zero = %d, want 1", desired)
	}

	// Back to zero, and the app stops while its next standby is made.
	if _, err := h.s.Autoscale(ctx, "lazy", 0, true); err != nil {
		t.Fatal(err)
	}
	if err := h.s.StopApp(ctx, "lazy"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("nothing of lazy to be left", func() bool {
		a := h.s.app("lazy")
		h.s.mu.Lock()
		busy := a.preparing || a.standby != nil
		h.s.mu.Unlock()
		sts, err := h.driver.List(ctx)
		return err == nil && len(sts) == 0 && !busy
	})
}
