package gateway

import (
	"context"
	"fmt"
	"time"

	"noops/internal/errkind"
)

// drainPoll is how often Drain looks at a backend's in-flight counter.
const drainPoll = 5 * time.Millisecond

// Drain waits until no request is in flight to the backend (which the
// caller has already taken out of the app's set), then closes its idle
// pooled connections. It returns early with ctx's error, classified
// errkind.Unavailable. An unknown backend has nothing in flight.
func (g *Gateway) Drain(ctx context.Context, backendID string) error {
	g.mu.Lock()
	b := g.backends[backendID]
	g.mu.Unlock()
	if b == nil {
		return nil
	}
	if b.inflight.Load() > 0 {
		t := time.NewTicker(drainPoll)
		defer t.Stop()
		for b.inflight.Load() > 0 {
			select {
			case <-ctx.Done():
				return errkind.E(errkind.Unavailable, fmt.Errorf("draining backend %s: %d requests still in flight: %w",
					backendID, b.inflight.Load(), ctx.Err()))
			case <-t.C:
			}
		}
	}
	if !b.removed.Load() {
		return nil // still serving: keep its pool
	}
	b.closeIdle()
	g.mu.Lock()
	if g.backends[backendID] == b && b.removed.Load() {
		delete(g.backends, backendID)
	}
	g.mu.Unlock()
	return nil
}
