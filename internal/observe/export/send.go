package export

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// deliver sends s's queue in order until ctx ends, or until the queue is
// empty or a request fails once Stop has begun. A batch whose request
// fails is retried until it is delivered, fails permanently or is dropped
// to make room; the batches behind it wait.
func (e *Exporter) deliver(ctx context.Context, s *signal) {
	defer e.workers.Done()
	name := s.kind.String()
	log := e.cfg.Logger.With("signal", name, "endpoint", e.target.display)
	failures := 0
	for ctx.Err() == nil {
		b, corrupt, err := s.q.read(e.cfg.MaxRequestBytes)
		if corrupt > 0 {
			s.count(func(st *SignalStats) { st.Dropped[DropCorrupt] += corrupt })
		}
		if err != nil {
			log.Error("reading the OTLP export queue; retrying", "err", err)
			if !e.sleepOrDrain(ctx, e.cfg.MaxBackoff) {
				return
			}
			continue
		}
		if b == nil {
			select {
			case <-s.q.ready:
				continue
			case <-e.draining:
				if n, _ := s.q.pending(); n > 0 {
					continue
				}
				return
			case <-ctx.Done():
				return
			}
		}
		p, err := e.send(ctx, s.kind, b.payload)
		if err != nil && ctx.Err() != nil {
			return // stopping: b stays queued
		}
		now := e.cfg.Now()
		var xe *exportError
		if err == nil {
			s.q.ack(b)
			s.count(func(st *SignalStats) {
				st.Sent += b.n
				st.Requests++
				st.LastSuccess = now
				st.Refused = false
				st.RejectedItems += uint64(max(p.rejected, 0))
			})
			if failures > 0 {
				log.Info("OTLP export recovered", "failed_attempts", failures)
			}
			failures = 0
			if p.rejected > 0 || p.msg != "" {
				log.Warn("OTLP receiver rejected part of a request", "rejected_items", p.rejected, "message", e.redact.apply(clip(p.msg)))
			}
			continue
		}
		if !errors.As(err, &xe) {
			xe = &exportError{class: retryable, msg: err.Error()}
		}
		msg := e.redact.apply(xe.msg)
		if xe.class == permanent {
			s.q.ack(b)
			s.count(func(st *SignalStats) {
				st.Dropped[DropRejected] += b.n
				st.LastError, st.LastErrorTime = msg, now
			})
			log.Error("OTLP receiver rejected batches; dropped them", "batches", b.n, "err", msg)
			failures = 0
			continue
		}
		failures++
		s.count(func(st *SignalStats) {
			st.Retries++
			st.LastError, st.LastErrorTime = msg, now
			st.Refused = xe.class == refused
		})
		wait := e.backoff(failures, xe)
		switch {
		case xe.class == refused:
			log.Error("OTLP receiver refuses the exporter; keeping batches and retrying", "err", msg, "retry_in", wait)
		case failures == 1:
			log.Warn("OTLP export failing; retrying", "err", msg, "retry_in", wait)
		default:
			log.Debug("OTLP export still failing", "attempt", failures, "err", msg, "retry_in", wait)
		}
		select {
		case <-e.draining:
			return // stopping: no point waiting, b stays queued
		default:
		}
		if !e.sleepOrDrain(ctx, wait) {
			return
		}
	}
}

// send makes one request within Timeout.
func (e *Exporter) send(ctx context.Context, k kind, payload []byte) (partial, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	return e.client.export(ctx, k, payload)
}

// sleepOrDrain waits d and reports whether sending should go on: not when
// ctx ends or Stop begins meanwhile.
func (e *Exporter) sleepOrDrain(ctx context.Context, d time.Duration) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	return e.sleep(ctx, d)
}

// backoff is the delay after the failures-th failure in a row: Backoff
// doubled per failure up to MaxBackoff, drawn between half of it and all
// of it so that exporters failing together do not retry in step. A delay
// the receiver asked for, up to MaxBackoff, takes its place; a refusal
// waits MaxBackoff.
func (e *Exporter) backoff(failures int, xe *exportError) time.Duration {
	if xe.after > 0 {
		return min(xe.after, e.cfg.MaxBackoff)
	}
	d := e.cfg.Backoff
	if xe.class == refused {
		d = e.cfg.MaxBackoff
	}
	for i := 1; i < failures && d < e.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, e.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleepCtx waits for d and reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
