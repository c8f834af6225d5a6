package monitor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"

	"noops/internal/errkind"
)

// newToken returns a push token: 128 random bits in base32.
func newToken() string { return rand.Text() }

// Push records a push to the push monitor named name: a passing result,
// or with ok false an explicit failure described by msg. It returns an
// errkind.Permission error when name is not a push monitor or token is not
// its token; the two cases are not told apart, and tokens are compared in
// constant time.
func (r *Runner) Push(name, token string, ok bool, msg string) error {
	given := sha256.Sum256([]byte(token))
	r.mu.Lock()
	m := r.mons[name]
	valid := m != nil && m.spec.Kind == Push && m.token != ""
	var want [sha256.Size]byte
	if valid {
		want = sha256.Sum256([]byte(m.token))
	}
	if subtle.ConstantTimeCompare(given[:], want[:]) != 1 || !valid {
		r.mu.Unlock()
		return errkind.Errorf(errkind.Permission, "pushing to monitor %q: no such push monitor, or the token is wrong", clip(name, maxNameLen))
	}
	now := r.cfg.Now()
	res := Result{Time: now, OK: ok, Detail: msg}
	switch {
	case ok && msg == "":
		res.Detail = "push received"
	case !ok && msg == "":
		res.Error = "the push reported a failure"
	case !ok:
		res.Error = msg
	}
	m.lastPush = now
	m.due = now.Add(m.spec.Interval + m.spec.Grace)
	recorded := r.recordLocked(m, res)
	select {
	case m.wake <- struct{}{}:
	default:
	}
	r.mu.Unlock()
	if recorded {
		r.flush(m)
	}
	return nil
}

// pushLoop records a failure each time a push monitor's push is overdue:
// first Interval+Grace after the last push (or after the monitor began
// here), then every Interval while none comes.
func (r *Runner) pushLoop(ctx context.Context, m *monitor) {
	defer r.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		r.mu.Lock()
		wait := m.due.Sub(r.cfg.Now())
		r.mu.Unlock()
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				continue
			case <-timer.C:
				continue
			}
		}
		r.checkPush(m)
	}
}

// checkPush records a failure when m's push is overdue, and moves its due
// time an Interval on. Otherwise it returns a passing result that it does
// not record.
func (r *Runner) checkPush(m *monitor) (Result, bool) {
	r.mu.Lock()
	now := r.cfg.Now()
	ref := m.lastPush
	if ref.IsZero() {
		ref = m.watchFrom
	}
	if now.Before(m.due) {
		r.mu.Unlock()
		res := Result{Time: now, OK: true}
		if m.lastPush.IsZero() {
			res.Detail = fmt.Sprintf("waiting for the first push, due within %s", m.due.Sub(now).Round(time.Second))
		} else {
			res.Detail = fmt.Sprintf("last push %s ago, next due within %s", now.Sub(ref).Round(time.Second), m.due.Sub(now).Round(time.Second))
		}
		return res, false
	}
	res := Result{Time: now, Error: fmt.Sprintf("no push for %s", now.Sub(ref).Round(time.Second))}
	m.due = now.Add(m.spec.Interval)
	recorded := r.recordLocked(m, res)
	r.mu.Unlock()
	if recorded {
		r.flush(m)
	}
	return res, recorded
}
