// Package functions is the HTTP face of the event bus: it turns each live
// release's triggers into the bus's functions, answers asynchronous
// invocations (Prefer: respond-async) and replays idempotent requests
// (Idempotency-Key) in front of apps as a stage of the gateway's Shield,
// serves the invocations' status under every app's host, and takes the
// events workloads publish on the gateway's internal listener.
package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"noops/internal/events"
	"noops/internal/spec"
	"noops/internal/store"
)

// Layer is the functions layer. Create it with New.
type Layer struct {
	bus    *events.Bus
	log    *slog.Logger
	caller func(*http.Request) (string, error)
	apps   atomic.Pointer[map[string]*appConf]
	mu     sync.Mutex // serialises writers of apps
}

// appConf is what the layer needs of an app's live release.
type appConf struct {
	publish []string      // topic patterns the app may publish to
	idemTTL time.Duration // 0: Idempotency-Key is passed through
	timeout time.Duration
}

// Config configures the layer.
type Config struct {
	Bus    *events.Bus
	Logger *slog.Logger
	// Caller names the app of a workload calling on the internal
	// listener (the access layer's Caller).
	Caller func(*http.Request) (string, error)
}

// New returns the layer.
func New(cfg Config) *Layer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Layer{bus: cfg.Bus, log: cfg.Logger, caller: cfg.Caller}
	l.apps.Store(&map[string]*appConf{})
	return l
}

// SetRelease applies a live release: its triggers become the app's
// function on the bus, its events section what it may publish. It
// implements the supervisor's Guard.
func (l *Layer) SetRelease(rel store.Release) error {
	var c spec.Config
	if len(rel.Config) > 0 {
		if err := json.Unmarshal(rel.Config, &c); err != nil {
			return fmt.Errorf("reading the triggers of %s release %d: %w", rel.App, rel.Number, err)
		}
	}
	f := c.FunctionOrDefault()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.bus.SetFunction(ctx, events.FunctionOf(rel.App, c)); err != nil {
		return fmt.Errorf("%s release %d: %w", rel.App, rel.Number, err)
	}
	conf := &appConf{publish: c.Events.Publish, idemTTL: f.IdempotencyTTL(), timeout: time.Duration(f.Timeout)}
	l.edit(func(m map[string]*appConf) { m[rel.App] = conf })
	return nil
}

// RemoveApp stops delivering to a deleted app.
func (l *Layer) RemoveApp(app string) {
	l.edit(func(m map[string]*appConf) { delete(m, app) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.bus.RemoveFunction(ctx, app); err != nil {
		l.log.Warn("removing the function of a deleted app", "app", app, "err", err)
	}
}

func (l *Layer) edit(fn func(map[string]*appConf)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := maps.Clone(*l.apps.Load())
	fn(m)
	l.apps.Store(&m)
}

func (l *Layer) conf(app string) *appConf { return (*l.apps.Load())[app] }

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// problem is an error answer (RFC 9457 shaped).
type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func refuse(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Status: status, Title: http.StatusText(status), Detail: detail})
}
