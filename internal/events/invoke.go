package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"noops/internal/errkind"
	"noops/internal/observe/trace"
)

// InvocationStatus is where an asynchronous invocation is.
type InvocationStatus string

// Statuses of an invocation.
const (
	InvocationQueued    InvocationStatus = "queued"
	InvocationRunning   InvocationStatus = "running"
	InvocationSucceeded InvocationStatus = "succeeded"
	InvocationFailed    InvocationStatus = "failed" // in the dead letters
	InvocationCancelled InvocationStatus = "cancelled"
)

// Invocation is an asynchronous call of an app: the request is queued,
// answered 202 at once, and delivered with the app's retries; its result
// is kept 24 hours.
type Invocation struct {
	ID       string           `json:"id"`
	App      string           `json:"app"`
	Status   InvocationStatus `json:"status"`
	Method   string           `json:"method"`
	Path     string           `json:"path"`
	Attempts int              `json:"attempts"`
	Created  time.Time        `json:"created"`
	Updated  time.Time        `json:"updated"`
	TraceID  string           `json:"trace_id,omitempty"`
	Response *Record          `json:"response,omitempty"` // Status, Header, Body of the app's answer
	Error    string           `json:"error,omitempty"`
}

// hopHeaders are not stored with an invocation's request.
var hopHeaders = map[string]bool{"Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Proxy-Authorization": true, "Proxy-Connection": true, "Prefer": true, "Content-Length": true}

// Invoke queues an asynchronous invocation of app with the request r
// (whose body has been read into body) and returns it, queued.
func (b *Bus) Invoke(ctx context.Context, app string, r *http.Request, body []byte) (Invocation, error) {
	if len(body) > b.cfg.MaxEventSize {
		return Invocation{}, errkind.Errorf(errkind.Invalid, "invoking %s: the request body is %d bytes, over the limit of %d for asynchronous invocations", app, len(body), b.cfg.MaxEventSize)
	}
	now := b.cfg.Now().UTC()
	tp, ok := trace.Parse(r.Header.Get(trace.Header))
	if !ok {
		tp = trace.New()
	}
	inv := Invocation{ID: NewID(), App: app, Status: InvocationQueued, Method: r.Method, Path: r.URL.RequestURI(), Created: now, Updated: now,
		TraceID: tp.TraceIDString()}
	data, _ := json.Marshal(inv)
	if _, err := b.inv.Create(ctx, inv.ID, data); err != nil {
		return Invocation{}, fmt.Errorf("recording invocation of %s: %w", app, err)
	}
	ev := Event{ID: inv.ID, Source: "/noops/invocations", Type: "dev.noops.invocation", Topic: "invocation." + app, Time: now,
		ContentType: r.Header.Get("Content-Type"), TraceParent: tp.String(), Data: body}
	m := ev.natsMsg(subjInvoke + app)
	m.Header.Set(hInvocation, inv.ID)
	m.Header.Set(hMethod, r.Method)
	m.Header.Set(hPath, inv.Path)
	for k, vs := range r.Header {
		if hopHeaders[k] || k == "Traceparent" {
			continue
		}
		m.Header[hHTTP+k] = vs
	}
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		_ = b.inv.Delete(ctx, inv.ID)
		return Invocation{}, publishError("the invocation of "+app, err)
	}
	return inv, nil
}

// invocationRequest rebuilds the HTTP request of an invocation.
func invocationRequest(ctx context.Context, m jetstream.Msg, ev Event) (*http.Request, error) {
	h := m.Headers()
	req, err := http.NewRequestWithContext(ctx, h.Get(hMethod), h.Get(hPath), bytes.NewReader(ev.Data))
	if err != nil {
		return nil, err
	}
	for k, vs := range h {
		if name, ok := strings.CutPrefix(k, hHTTP); ok {
			req.Header[textproto.CanonicalMIMEHeaderKey(name)] = vs
		}
	}
	if tp, ok := trace.Parse(ev.TraceParent); ok {
		req.Header.Set(trace.Header, tp.Child().String())
	}
	req.Header.Set(HeaderInvocation, ev.ID)
	return req, nil
}

// Invocation returns an invocation by ID.
func (b *Bus) Invocation(ctx context.Context, id string) (Invocation, error) {
	inv, _, err := b.getInvocation(ctx, id)
	return inv, err
}

func (b *Bus) getInvocation(ctx context.Context, id string) (Invocation, uint64, error) {
	if !validID(id) {
		return Invocation{}, 0, errkind.Errorf(errkind.NotFound, "no invocation %q: an invocation ID is 32 hex digits", id)
	}
	e, err := b.inv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Invocation{}, 0, errkind.Errorf(errkind.NotFound, "no invocation %s (results are kept 24 hours)", id)
	}
	if err != nil {
		return Invocation{}, 0, fmt.Errorf("reading invocation %s: %w", id, err)
	}
	var inv Invocation
	if err := json.Unmarshal(e.Value(), &inv); err != nil {
		return Invocation{}, 0, fmt.Errorf("reading invocation %s: %w", id, err)
	}
	return inv, e.Revision(), nil
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Cancel cancels a queued or running invocation: it is not attempted
// again, and an attempt in flight on this server is interrupted.
func (b *Bus) Cancel(ctx context.Context, id string) (Invocation, error) {
	inv, err := b.updateInvocation(ctx, id, func(inv *Invocation) error {
		switch inv.Status {
		case InvocationSucceeded, InvocationFailed, InvocationCancelled:
			return errkind.Errorf(errkind.Conflict, "invocation %s has already %s", id, inv.Status)
		}
		inv.Status = InvocationCancelled
		return nil
	})
	if err != nil {
		return inv, err
	}
	b.mu.Lock()
	f := b.funcs[inv.App]
	b.mu.Unlock()
	if f != nil {
		f.mu.Lock()
		cancel := f.running[id]
		f.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	}
	return inv, nil
}

// updateInvocation changes a record with compare-and-set.
func (b *Bus) updateInvocation(ctx context.Context, id string, edit func(*Invocation) error) (Invocation, error) {
	for range 5 {
		inv, rev, err := b.getInvocation(ctx, id)
		if err != nil {
			return inv, err
		}
		if err := edit(&inv); err != nil {
			return inv, err
		}
		inv.Updated = b.cfg.Now().UTC()
		data, _ := json.Marshal(inv)
		if _, err := b.inv.Update(ctx, id, data, rev); err == nil {
			return inv, nil
		}
	}
	return Invocation{}, errkind.Errorf(errkind.Conflict, "invocation %s is changing under us; try again", id)
}

var errKeep = errors.New("keep")

func (b *Bus) invocationState(ctx context.Context, id string) (InvocationStatus, error) {
	inv, _, err := b.getInvocation(ctx, id)
	return inv.Status, err
}

func (b *Bus) invocationRunning(ctx context.Context, id string, n int) {
	_, _ = b.updateInvocation(ctx, id, func(inv *Invocation) error {
		if inv.Status == InvocationCancelled {
			return errKeep
		}
		inv.Status, inv.Attempts = InvocationRunning, n
		return nil
	})
}

// invocationDone records the result: resp on success, the error when the
// invocation went to the dead letters.
func (b *Bus) invocationDone(ctx context.Context, id string, n int, resp *Response, errMsg string) {
	_, _ = b.updateInvocation(ctx, id, func(inv *Invocation) error {
		if inv.Status == InvocationCancelled {
			return errKeep
		}
		inv.Attempts = n
		if resp != nil {
			inv.Status, inv.Error = InvocationSucceeded, ""
			inv.Response = &Record{Status: resp.Status, Header: resp.Header, Body: resp.Body, Truncated: resp.Truncated}
		} else {
			inv.Status, inv.Error = InvocationFailed, errMsg
		}
		return nil
	})
}

func (b *Bus) invocationRequeued(ctx context.Context, id string) {
	_, _ = b.updateInvocation(ctx, id, func(inv *Invocation) error {
		inv.Status, inv.Error = InvocationQueued, ""
		return nil
	})
}
