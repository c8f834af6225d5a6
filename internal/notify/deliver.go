package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// deliver sends s's queue in order until ctx ends. An event whose send
// fails is retried, after a growing delay, until it is delivered or fails
// permanently; the events behind it wait, those of other sinks do not.
func (n *Notifier) deliver(ctx context.Context, s *sinkState) {
	defer n.workers.Done()
	for {
		it := s.next(ctx)
		if it == nil {
			return
		}
		for attempt := 1; ; attempt++ {
			err := n.send(ctx, s.sink, it.ev)
			if err == nil {
				s.finish(it, true)
				if attempt > 1 {
					n.log.Info("notification sink recovered", "sink", s.name, "attempts", attempt)
				}
				break
			}
			if IsPermanent(err) {
				s.finish(it, false)
				n.log.Error("dropping notification the sink refused", "sink", s.name, "kind", it.ev.Kind, "key", it.ev.Key, "err", err)
				break
			}
			if ctx.Err() != nil {
				// Stopping: the event stays in flight and Stop persists it.
				return
			}
			s.failed(err)
			wait := n.backoff(attempt, err)
			if attempt == 1 {
				n.log.Warn("notification sink failing; retrying", "sink", s.name, "err", err, "retry_in", wait)
			} else {
				n.log.Debug("notification sink still failing", "sink", s.name, "attempt", attempt, "err", err, "retry_in", wait)
			}
			if !sleep(ctx, wait) {
				return
			}
		}
	}
}

// send calls sk.Send within the timeout. A panic in a sink is a permanent
// failure of that event rather than the end of the process.
func (n *Notifier) send(ctx context.Context, sk Sink, e Event) (err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("sending to %s: panic: %v", sk.Name(), p))
		}
	}()
	return sk.Send(ctx, e)
}

// backoff is the delay before retry attempt+1: Backoff doubled per failed
// attempt up to MaxBackoff, drawn between half of it and all of it so that
// sinks failing together do not retry in step. A Retry-After from the
// receiver, up to MaxBackoff, is honoured when it is longer.
func (n *Notifier) backoff(attempt int, err error) time.Duration {
	d := n.cfg.Backoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	var ra *retryAfterError
	if errors.As(err, &ra) && ra.after > d {
		d = min(ra.after, n.cfg.MaxBackoff)
	}
	return d
}

// sleep waits for d and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
