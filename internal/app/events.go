package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"

	"noops/internal/errkind"
	"noops/internal/events"
	"noops/internal/functions"
	"noops/internal/gateway"
)

// Events configures the event bus.
type Events struct {
	// NATS is the URL of an external NATS cluster with JetStream; empty
	// runs the embedded server in DATA/events.
	NATS string
	// MaxEventSize bounds an event's data (0: 1 MiB).
	MaxEventSize int
	// Creds is a NATS credentials file for NATS; Replicas the replicas
	// of each stream and bucket (0: 1; 3 on a three-node cluster).
	Creds    string
	Replicas int
}

// startEvents starts the embedded NATS server (or connects to the
// external one), opens the bus and the functions layer. The gateway,
// which starts next, delivers the events and serves the layer.
func (a *App) startEvents(ctx context.Context) error {
	ec := a.cfg.Events
	var nc *nats.Conn
	var err error
	if ec.NATS == "" {
		emb, err := events.StartEmbedded(events.EmbeddedConfig{Dir: a.path("events"), Logger: a.log, MaxPayload: int32(ec.MaxEventSize + 1<<20)})
		if err != nil {
			return err
		}
		a.started1("event server", func(context.Context) error { emb.Shutdown(); return nil })
		if nc, err = emb.Connect("noops"); err != nil {
			return err
		}
	} else {
		opts := []nats.Option{nats.Name("noops"), nats.MaxReconnects(-1)}
		if ec.Creds != "" {
			opts = append(opts, nats.UserCredentials(ec.Creds))
		}
		if nc, err = nats.Connect(ec.NATS, opts...); err != nil {
			return errkind.WithHint(errkind.Unavailable, fmt.Errorf("connecting to NATS at %s: %w", ec.NATS, err),
				"check --nats: a NATS server with JetStream enabled must answer there")
		}
	}
	a.started1("event connection", func(context.Context) error { return nc.Drain() })
	bus, err := events.Open(ctx, nc, events.Config{Target: gatewayTarget{a}, Logger: a.log, MaxEventSize: ec.MaxEventSize, Replicas: ec.Replicas, Shared: ec.NATS != "",
		OnDelivery: a.metrics.Delivery, OnPublish: a.metrics.Published})
	if err != nil {
		return err
	}
	a.metrics.Backlog(bus.Backlog)
	a.bus = bus
	a.started1("event bus", bus.Close)
	a.functions = functions.New(functions.Config{Bus: bus, Logger: a.log, Caller: a.access.Caller})
	return nil
}

// gatewayTarget delivers the bus's requests through the gateway, which
// starts after the bus.
type gatewayTarget struct{ a *App }

func (t gatewayTarget) Call(ctx context.Context, app string, r *http.Request, limit int) (*events.Response, error) {
	g := t.a.gateway
	if g == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "the gateway is not started")
	}
	rec := &recorder{h: http.Header{}, limit: limit}
	if err := g.Deliver(rec, r.WithContext(ctx), app); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &events.Response{Status: rec.status, Header: rec.h, Body: rec.body, Truncated: rec.over}, nil
}

// recorder keeps an app's answer to a delivery, the body up to limit.
type recorder struct {
	h      http.Header
	status int
	body   []byte
	limit  int
	over   bool
}

func (r *recorder) Header() http.Header { return r.h }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if room := r.limit - len(r.body); room > 0 {
		r.body = append(r.body, p[:min(room, len(p))]...)
	}
	if len(r.body)+len(p) > r.limit {
		r.over = true
	}
	return len(p), nil
}

func (r *recorder) Flush() {}

// chain runs the shield, then the functions layer.
type chain struct {
	first  gateway.Shield
	second gateway.Shield
}

func (c chain) Inspect(w http.ResponseWriter, r *http.Request, app string) (http.ResponseWriter, func(int), bool) {
	w1, done1, ok := c.first.Inspect(w, r, app)
	if !ok {
		return nil, nil, false
	}
	if done1 == nil {
		return c.second.Inspect(w1, r, app)
	}
	sw := &statusWriter{ResponseWriter: w1}
	w2, done2, ok := c.second.Inspect(sw, r, app)
	if !ok {
		done1(sw.status())
		return nil, nil, false
	}
	return w2, func(status int) {
		if done2 != nil {
			done2(status)
		}
		done1(status)
	}, true
}

// statusWriter notes the status written through it.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
