package control

import (
	"context"
	"time"

	"noops/internal/errkind"
)

// DefaultHygieneEvery is how often the plane cleans up without being asked.
const DefaultHygieneEvery = time.Hour

// runHygiene cleans up on a timer and soon after each change that made a
// release (kick), until ctx ends. A run that finds another in progress
// leaves it be.
func (p *Plane) runHygiene(ctx context.Context) {
	every := p.cfg.HygieneEvery
	if every <= 0 {
		every = DefaultHygieneEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-p.kick:
		}
		rep, err := p.HygieneWith(ctx, p.cfg.Hygiene)
		switch {
		case err == nil:
			if rep.Images.Blobs+len(rep.Releases)+len(rep.Caches.Removed) > 0 {
				p.log.Info("cleaned up", "releases", rep.Releases, "blobs", rep.Images.Blobs,
					"freed", rep.Images.Freed()+rep.Caches.Freed, "caches", rep.Caches.Removed)
			}
		case errkind.Is(err, errkind.Conflict), ctx.Err() != nil:
		default:
			p.log.Warn("cleaning up the data folder", "err", err)
		}
	}
}

// kickHygiene asks for a cleanup soon, without waiting for it.
func (p *Plane) kickHygiene() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}
