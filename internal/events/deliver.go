package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// Headers the platform adds to messages and deliveries.
const (
	HeaderAttempt    = "X-Noops-Delivery-Attempt"
	HeaderInvocation = "X-Noops-Invocation-Id"

	hReplayedAt = "Noops-Replayed-At"
	hInvocation = "Noops-Invocation"
	hMethod     = "Noops-Method"
	hPath       = "Noops-Path"
	hHTTP       = "Noops-H-" // + an HTTP header of an invocation
)

// Outcomes of a delivery attempt, for Config.OnDelivery.
const (
	Delivered    = "delivered"
	Retried      = "retried"
	DeadLettered = "dead_lettered"
	Duplicate    = "duplicate"
	Cancelled    = "cancelled"
)

// observe reports an attempt's outcome.
func (f *function) observe(outcome string, d time.Duration) {
	if f.b.cfg.OnDelivery != nil {
		f.b.cfg.OnDelivery(f.def.App, outcome, d)
	}
}

// Result of one attempt.
type attempt struct {
	resp      *Response
	err       error
	retry     bool          // a retry can help
	notBefore time.Duration // Retry-After
	cancelled bool          // an invocation cancelled while it ran
}

func (a attempt) ok() bool { return a.err == nil && a.resp.Status < 300 }

// describe is the attempt's error as the dead letters show it.
func (a attempt) describe() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("HTTP %d: %s", a.resp.Status, snippet(a.resp.Body))
}

// deliver handles one message: it delivers it, then acks it, schedules a
// retry or sends it to the dead letters. With inline (ordered delivery)
// retries happen here, holding the message's lane back.
func (f *function) deliver(m jetstream.Msg, inline bool) {
	meta, err := m.Metadata()
	if err != nil {
		f.b.log.Error("event without metadata", "app", f.def.App, "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	ev, perr := FromMsg(m.Headers(), m.Data())
	if perr != nil {
		f.deadLetter(m, meta, ev, attempt{err: perr}, int(meta.NumDelivered))
		return
	}
	s := f.def.Settings
	n := int(meta.NumDelivered)
	invID := m.Headers().Get(hInvocation)
	for {
		if invID != "" {
			if st, _ := f.b.invocationState(f.ctx, invID); st == InvocationCancelled {
				_ = m.Ack()
				return
			}
		}
		if age := f.age(ev, m, meta); age > time.Duration(s.MaxAge) {
			f.deadLetter(m, meta, ev, attempt{err: fmt.Errorf("the event is %s old, over max_age %s: not attempted again", age.Round(time.Second), s.MaxAge)}, n-1)
			return
		}
		began := time.Now()
		a, skip := f.attemptOnce(m, ev, invID, n)
		took := time.Since(began)
		if skip {
			f.observe(Duplicate, 0)
			return // a duplicate of a delivery done before
		}
		if a.ok() {
			f.ack(m, ev, invID, a.resp.Status)
			f.observe(Delivered, took)
			return
		}
		if a.cancelled {
			_ = m.Ack() // an invocation its caller cancelled
			f.observe(Cancelled, took)
			return
		}
		delay := backoff(time.Duration(s.Backoff), time.Duration(s.MaxBackoff), n)
		delay = max(delay, min(a.notBefore, time.Duration(s.MaxBackoff)))
		if !a.retry || n >= s.Attempts() || f.age(ev, m, meta)+delay > time.Duration(s.MaxAge) || f.ctx.Err() != nil && inline {
			if f.ctx.Err() != nil {
				_ = m.Nak() // stopping: someone else tries again
				return
			}
			f.deadLetter(m, meta, ev, a, n)
			f.observe(DeadLettered, took)
			return
		}
		f.observe(Retried, took)
		f.b.log.Info("delivery failed, retrying", "app", f.def.App, "event", ev.ID, "attempt", n, "in", delay.Round(time.Millisecond), "err", a.describe())
		if !inline {
			_ = m.NakWithDelay(delay)
			return
		}
		if !f.wait(m, delay) {
			_ = m.Nak()
			return
		}
		n++
	}
}

// wait sleeps for d while telling JetStream the message is still being
// worked on; false when the function stops.
func (f *function) wait(m jetstream.Msg, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-tick.C:
			_ = m.InProgress()
		case <-f.ctx.Done():
			return false
		}
	}
}

// age is how long ago the event was published, or replayed.
func (f *function) age(ev Event, m jetstream.Msg, meta *jetstream.MsgMetadata) time.Duration {
	base := meta.Timestamp
	if !ev.Time.IsZero() && ev.Time.Before(base) {
		base = ev.Time
	}
	if r := m.Headers().Get(hReplayedAt); r != "" {
		if t, err := time.Parse(time.RFC3339Nano, r); err == nil {
			base = t
		}
	}
	return f.b.cfg.Now().Sub(base)
}

// idemKey is the idempotency key of a delivery: the event's ID, or the
// invocation's.
func idemKey(ev Event, invID string) string {
	if invID != "" {
		return "invocation:" + invID
	}
	return "event:" + ev.ID
}

// attemptOnce makes one attempt, unless the idempotency records say the
// event was delivered before (a redelivery whose ack was lost, a second
// copy published after JetStream's duplicate window or after a crash of
// the server); then it acks the message and skip is true.
func (f *function) attemptOnce(m jetstream.Msg, ev Event, invID string, n int) (a attempt, skip bool) {
	if f.idem != nil {
		done, err := f.idem.Completed(f.ctx, idemKey(ev, invID))
		if err != nil {
			f.b.log.Warn("idempotency record unavailable; delivering without it", "app", f.def.App, "event", ev.ID, "err", err)
		}
		if done {
			f.b.log.Info("duplicate delivery skipped", "app", f.def.App, "event", ev.ID)
			_ = m.Ack()
			return a, true
		}
	}
	ctx, cancel := context.WithTimeout(f.ctx, time.Duration(f.def.Settings.Timeout))
	defer cancel()
	if invID != "" {
		f.track(invID, cancel)
		defer f.track(invID, nil)
		f.b.invocationRunning(f.ctx, invID, n)
	}
	a = f.call(ctx, m, ev, invID, n)
	if invID != "" && a.ok() {
		f.b.invocationDone(f.ctx, invID, n, a.resp, "")
	}
	return a, false
}

// call sends the event (or the invocation's request) to the app.
func (f *function) call(ctx context.Context, m jetstream.Msg, ev Event, invID string, n int) attempt {
	var req *http.Request
	var err error
	if invID != "" {
		req, err = invocationRequest(ctx, m, ev)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, f.def.Settings.Path, bytes.NewReader(ev.Data))
		if err == nil {
			ev.HTTPHeader(req.Header)
		}
	}
	if err != nil {
		return attempt{err: fmt.Errorf("building the request: %w", err)}
	}
	req.Header.Set(HeaderAttempt, strconv.Itoa(n))
	resp, err := f.b.cfg.Target.Call(ctx, f.def.App, req, maxStoredBody)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within the timeout of %s", f.def.Settings.Timeout)
		} else if errors.Is(ctx.Err(), context.Canceled) && invID != "" && f.ctx.Err() == nil {
			return attempt{err: fmt.Errorf("cancelled"), cancelled: true}
		}
		return attempt{err: err, retry: true}
	}
	a := attempt{resp: resp}
	switch s := resp.Status; {
	case s < 300:
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		a.retry = true
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			a.notBefore = time.Duration(secs) * time.Second
		}
	}
	return a
}

// ack acknowledges a delivered message after recording it, without
// waiting for either: if a crash loses the record, it loses the ack too
// or the message is not redelivered, so no duplicate gets through that
// the record would have stopped. A redelivery (the ack lost) or a second
// copy of the event later finds the record.
func (f *function) ack(m jetstream.Msg, ev Event, invID string, status int) {
	if f.idem != nil {
		f.idem.Remember(idemKey(ev, invID), Record{Status: status})
	}
	_ = m.Ack()
}

// track remembers the cancel function of an invocation in flight.
func (f *function) track(id string, cancel context.CancelFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cancel == nil {
		delete(f.running, id)
	} else {
		f.running[id] = cancel
	}
}

// backoff is the wait before retry n (n ≥ 1 attempts made): base doubled
// for each attempt, at most maxDelay, with ±20% jitter.
func backoff(base, maxDelay time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// snippet is the start of a response body, printable, for error messages.
func snippet(b []byte) string {
	const n = 300
	if len(b) > n {
		b = b[:n]
	}
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" {
		return "(empty body)"
	}
	return s
}
