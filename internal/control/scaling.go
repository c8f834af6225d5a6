package control

import (
	"context"

	"noops/internal/autoscale"
	"noops/internal/observe/metrics"
	"noops/internal/spec"
)

// Autoscaler is the autoscaler's view of the apps it scales.
type Autoscaler interface {
	Status(app string) (autoscale.Status, bool)
}

// Scaling is an app's replica counts, what its autoscaler sees and its
// cold starts.
type Scaling struct {
	Desired, Ready int
	Autoscaled     bool       // its live release has run.scale
	Scale          spec.Scale // when Autoscaled
	Stable, Panic  float64    // average requests in flight over the stable and panic windows
	Panicking      bool
	Wanted         int // the autoscaler's last decision
	ColdStarts     metrics.ColdStartStats
}

// Scaling returns the app's scaling state.
func (p *Plane) Scaling(ctx context.Context, app string) (Scaling, error) {
	if _, err := p.store.GetApp(ctx, app); err != nil {
		return Scaling{}, err
	}
	var out Scaling
	out.Desired, out.Ready, _ = p.super.Replicas(app)
	if p.cfg.Autoscaler != nil {
		if st, ok := p.cfg.Autoscaler.Status(app); ok {
			out.Autoscaled, out.Scale, out.Stable, out.Panic, out.Panicking, out.Wanted = true, st.Scale, st.Stable, st.Panic, st.Panicked, st.Wanted
		}
	}
	if p.cfg.Metrics != nil {
		out.ColdStarts = p.cfg.Metrics.ColdStarts(app)
	}
	return out, nil
}
