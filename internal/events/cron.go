package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"noops/internal/spec"
)

// scheduler fires the cron triggers of functions: at each tick it puts a
// cron event in the app's work queue. The event's ID names the app, the
// schedule and the tick, so that servers sharing a NATS cluster fire each
// tick once (JetStream drops the duplicates). Ticks missed while no
// server ran are not made up for.
type scheduler struct {
	b      *Bus
	mu     sync.Mutex
	timers map[string]*appCron
	done   bool
}

// appCron is the timers of one app's schedules; a new set replaces it.
type appCron struct{ timers []*time.Timer }

func newScheduler(b *Bus) *scheduler { return &scheduler{b: b, timers: map[string]*appCron{}} }

// set replaces an app's schedules.
func (s *scheduler) set(app string, exprs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ac := s.timers[app]; ac != nil {
		ac.stop()
	}
	delete(s.timers, app)
	if s.done || len(exprs) == 0 {
		return
	}
	ac := &appCron{timers: make([]*time.Timer, len(exprs))}
	s.timers[app] = ac
	for i, expr := range exprs {
		sched, err := spec.ParseCron(expr)
		if err != nil {
			continue // SetFunction checked them
		}
		s.arm(ac, app, i, expr, sched)
	}
}

func (ac *appCron) stop() {
	for _, t := range ac.timers {
		if t != nil {
			t.Stop()
		}
	}
}

// arm sets the timer of schedule i of app for its next tick. Call with
// s.mu held.
func (s *scheduler) arm(ac *appCron, app string, i int, expr string, sched cron.Schedule) {
	next := sched.Next(s.b.cfg.Now())
	ac.timers[i] = time.AfterFunc(next.Sub(s.b.cfg.Now()), func() {
		s.mu.Lock()
		live := !s.done && s.timers[app] == ac
		s.mu.Unlock()
		if !live {
			return
		}
		s.fire(app, i, expr, next)
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.done && s.timers[app] == ac {
			s.arm(ac, app, i, expr, sched)
		}
	})
}

// CronData is the data of a cron event.
type CronData struct {
	Schedule  string    `json:"schedule"`
	Scheduled time.Time `json:"scheduled"`
}

func (s *scheduler) fire(app string, i int, expr string, at time.Time) {
	data, _ := json.Marshal(CronData{Schedule: expr, Scheduled: at.UTC()})
	ev := Event{ID: fmt.Sprintf("cron-%s-%d-%d", app, i, at.Unix()), Source: "/noops/cron/" + app, Type: "dev.noops.cron.tick",
		Topic: "cron." + app, Time: at.UTC(), ContentType: "application/json", Data: data}
	_ = ev.Prepare("", s.b.cfg.MaxEventSize)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.b.js.PublishMsg(ctx, ev.natsMsg(subjCron+app)); err != nil {
		s.b.log.Error("cron tick not queued", "app", app, "schedule", expr, "at", at, "err", err)
		return
	}
	s.b.log.Debug("cron tick", "app", app, "schedule", expr, "at", at)
}

func (s *scheduler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	for _, ac := range s.timers {
		ac.stop()
	}
	s.timers = map[string]*appCron{}
}
