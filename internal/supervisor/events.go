package supervisor

import (
	"context"
	"fmt"

	"noops/internal/store"
)

// The kinds of events the supervisor records (store.Event.Kind).
const (
	EventCrashLoop   = "crashloop"    // a sandbox failed three times in a row; it restarts after longer back-offs
	EventOOM         = "oom"          // the kernel killed a sandbox for exceeding its memory limit
	EventStartFailed = "start-failed" // a sandbox could not be started (runc, the network, the disk)
	EventScaled      = "scaled"       // the autoscaler changed the replica count
)

// event records a platform event of app, best effort: a store that cannot
// take it is logged, and the supervisor goes on.
func (s *Supervisor) event(app, kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.log.Info("event", "app", app, "kind", kind, "message", msg)
	if _, err := s.store.AppendEvent(context.WithoutCancel(s.ctx), store.Event{Time: s.cfg.Now(), App: app, Kind: kind, Message: msg}); err != nil {
		s.log.Warn("recording an event", "app", app, "kind", kind, "err", err)
	}
}
