package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Config tunes a Notifier. Zero values take the defaults.
type Config struct {
	// Sinks receive every event. Two Webhook or Slack sinks may not have
	// the same URL, nor other sinks the same Name: either names a spool
	// file.
	Sinks []Sink
	// Spool is the directory of the persistent queues; "" keeps them in
	// memory only.
	Spool string
	// Dedup is the window within which events with the same Kind and Key
	// are sent once (default 10m; negative turns dedup off).
	Dedup time.Duration
	// MaxQueue bounds the events waiting for each sink (default 10000);
	// when it is full the oldest is dropped and counted.
	MaxQueue int
	// Backoff is the first retry delay of a failing sink (default 1s); it
	// doubles, with jitter, up to MaxBackoff (default 5m).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one send (default 10s).
	Timeout time.Duration
	// Client, if set, replaces the HTTP client of the Webhook and Slack
	// sinks (which by default do not follow redirects).
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Dedup == 0 {
		c.Dedup = 10 * time.Minute
	}
	set(&c.Backoff, time.Second)
	set(&c.MaxBackoff, 5*time.Minute)
	set(&c.Timeout, 10*time.Second)
	if c.MaxQueue <= 0 {
		c.MaxQueue = 10000
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Stats counts what a Notifier did since New.
type Stats struct {
	Deduplicated uint64      // events dropped by Notify as repeats
	Sinks        []SinkStats // in the order of Config.Sinks
}

// SinkStats counts what happened to the events of one sink.
type SinkStats struct {
	Name      string
	Delivered uint64 // sent successfully
	Pending   int    // waiting or being sent
	Retries   uint64 // failed sends that will be retried
	Dropped   uint64 // given up: the queue was full, or a permanent failure
	Rejected  uint64 // of Dropped, the permanent failures
	LastError string // the last failed send's error, "" if none yet
}

// Notifier fans events out to its sinks. Its methods are safe for
// concurrent use.
type Notifier struct {
	cfg   Config
	log   *slog.Logger
	sinks []*sinkState
	wake  chan struct{} // cap 1: a sink has spool records to write

	mu      sync.Mutex // guards what follows
	dedup   *deduper
	deduped uint64
	started bool
	stopped bool
	cancel  context.CancelFunc

	workers    sync.WaitGroup
	writerDone chan struct{}
}

// New returns a Notifier for cfg.Sinks. With cfg.Spool set it loads, for
// each sink, the events a previous Notifier had not delivered; they are
// sent after Start.
func New(cfg Config) (*Notifier, error) {
	cfg.defaults()
	n := &Notifier{
		cfg:        cfg,
		log:        cfg.Logger,
		wake:       make(chan struct{}, 1),
		dedup:      newDeduper(cfg.Dedup, dedupMax),
		writerDone: make(chan struct{}),
	}
	ids := map[string]bool{}
	for i, sk := range cfg.Sinks {
		if sk == nil {
			return nil, fmt.Errorf("configuring sink %d: sink is nil", i)
		}
		if v, ok := sk.(interface{ validate() error }); ok {
			if err := v.validate(); err != nil {
				return nil, fmt.Errorf("configuring sink %d (%s): %w", i, sk.Name(), err)
			}
		}
		if c, ok := sk.(interface{ withClient(*http.Client) Sink }); ok && cfg.Client != nil {
			sk = c.withClient(cfg.Client)
		}
		id := spoolID(sk)
		if ids[id] {
			return nil, fmt.Errorf("configuring sink %d (%s): configured twice", i, sk.Name())
		}
		ids[id] = true
		s := &sinkState{
			sink:       sk,
			name:       sk.Name(),
			ready:      make(chan struct{}, 1),
			wake:       n.wake,
			maxQueue:   cfg.MaxQueue,
			maxBacklog: 2*cfg.MaxQueue + 1024,
		}
		s.stats.Name = s.name
		n.sinks = append(n.sinks, s)
	}
	if cfg.Spool != "" {
		if err := n.loadSpool(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// spoolID names a sink's spool file: built-in sinks hash their URL, others
// their name.
func spoolID(sk Sink) string {
	if s, ok := sk.(interface{ spoolID() string }); ok {
		return s.spoolID()
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, sk.Name())
	sum := sha256.Sum256([]byte(sk.Name()))
	return clip(name, 64) + "-" + hex.EncodeToString(sum[:8])
}

func (n *Notifier) loadSpool() error {
	if err := os.MkdirAll(n.cfg.Spool, 0o700); err != nil {
		return fmt.Errorf("creating notification spool: %w", err)
	}
	for i, s := range n.sinks {
		sp, items, dropped, err := openSpool(n.cfg.Spool, spoolID(s.sink), s.name, n.cfg.MaxQueue, n.log, n.cfg.Now())
		if err != nil {
			for _, done := range n.sinks[:i] {
				done.spool.close()
			}
			return err
		}
		s.spool, s.queue = sp, items
		if len(s.queue) > 0 {
			s.seq = s.queue[len(s.queue)-1].seq
		}
		s.stats.Dropped = dropped
		if len(s.queue) > 0 {
			n.log.Info("resuming undelivered notifications", "sink", s.name, "events", len(s.queue))
		}
	}
	return nil
}

// Start begins delivery and returns at once. Delivery runs until Stop,
// not until ctx ends.
func (n *Notifier) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopped {
		return errors.New("starting notifier: already started")
	}
	n.started = true
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	for _, s := range n.sinks {
		n.workers.Add(1)
		go n.deliver(run, s)
	}
	if n.cfg.Spool != "" {
		go n.writeLoop(run)
	} else {
		close(n.writerDone)
	}
	return nil
}

// Stop ends delivery, cutting short the sends in flight, and writes what
// is undelivered to the spool, fsynced. Notify returns false after it.
// When ctx ends before a sink's Send returns, Stop persists anyway and
// returns ctx's error.
func (n *Notifier) Stop(ctx context.Context) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	started, cancel := n.started, n.cancel
	n.mu.Unlock()
	var errs []error
	if started {
		cancel()
		done := make(chan struct{})
		go func() {
			n.workers.Wait()
			<-n.writerDone
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("waiting for notification sinks to stop: %w", ctx.Err()))
		}
	}
	for _, s := range n.sinks {
		if s.spool != nil {
			errs = append(errs, s.persist())
		}
	}
	return errors.Join(errs...)
}

// Notify queues e for every sink and returns at once. It returns false,
// and sends nothing, when an event with the same Kind and Key went out
// within the dedup window, when e.Kind is empty, or after Stop.
func (n *Notifier) Notify(e Event) bool {
	if e.Kind == "" {
		return false
	}
	now := n.cfg.Now()
	ev := normalize(e, now)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return false
	}
	if !n.dedup.admit(dedupKey(ev), now) {
		n.deduped++
		return false
	}
	for _, s := range n.sinks {
		if old := s.push(ev); old != nil {
			n.log.Warn("notification queue full, dropping the oldest events", "sink", s.name, "max", n.cfg.MaxQueue)
		}
	}
	if n.cfg.Spool != "" {
		signal(n.wake)
	}
	return true
}

// Stats returns the counters so far.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	st := Stats{Deduplicated: n.deduped}
	n.mu.Unlock()
	for _, s := range n.sinks {
		s.mu.Lock()
		ss := s.stats
		ss.Pending = s.pendingLocked()
		s.mu.Unlock()
		st.Sinks = append(st.Sinks, ss)
	}
	return st
}
