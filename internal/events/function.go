package events

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"noops/internal/errkind"
	"noops/internal/spec"
)

// Function is an app as the bus invokes it: the topics it subscribes to,
// its cron schedules and how deliveries to it behave.
type Function struct {
	App      string
	Topics   []string // topics or patterns ("orders.*", "orders.>")
	Crons    []string
	Settings spec.Function
}

// FunctionOf returns the function of an app's release configuration.
func FunctionOf(app string, c spec.Config) Function {
	f := Function{App: app, Settings: c.FunctionOrDefault()}
	for _, t := range c.Triggers {
		if t.Topic != "" {
			f.Topics = append(f.Topics, t.Topic)
		} else if t.Cron != "" {
			f.Crons = append(f.Crons, t.Cron)
		}
	}
	return f
}

func (f Function) equal(g Function) bool {
	a, b := f.Settings, g.Settings
	return f.App == g.App && slices.Equal(f.Topics, g.Topics) && slices.Equal(f.Crons, g.Crons) &&
		a.Path == b.Path && a.Timeout == b.Timeout && a.Attempts() == b.Attempts() && a.Backoff == b.Backoff &&
		a.MaxBackoff == b.MaxBackoff && a.MaxAge == b.MaxAge && a.Concurrency == b.Concurrency && a.Ordered == b.Ordered &&
		a.Idempotency == b.Idempotency
}

// consumerName is the durable consumer of an app on both streams.
func consumerName(app string) string { return "fn-" + app }

// function runs the deliveries of one app.
type function struct {
	b    *Bus
	def  Function
	idem *Idempotency // nil when idempotency is off

	ctx      context.Context // deliveries; cancelled when stop gives up waiting
	cancel   context.CancelFunc
	quitting chan struct{} // closed by stop
	quit     atomic.Pointer[struct{}]
	iters    []jetstream.MessagesContext // guarded by mu
	pumps    sync.WaitGroup
	work     sync.WaitGroup
	lanes    []chan jetstream.Msg // ordered: one per worker; unordered: one for all

	mu      sync.Mutex
	running map[string]context.CancelFunc // invocation ID → cancel
}

// SetFunction makes the bus deliver to an app as def says: it creates or
// updates the app's consumers (keeping their position, so no event is
// missed across a redeploy) and its cron schedules. Calling it again with
// the same definition does nothing.
func (b *Bus) SetFunction(ctx context.Context, def Function) error {
	def.Settings = def.Settings.WithDefaults()
	for _, t := range def.Topics {
		if err := spec.ValidTopicPattern(t); err != nil {
			return errkind.Errorf(errkind.Invalid, "function %s: %v", def.App, err)
		}
	}
	for _, c := range def.Crons {
		if _, err := spec.ParseCron(c); err != nil {
			return errkind.Errorf(errkind.Invalid, "function %s: %v", def.App, err)
		}
	}
	b.setMu.Lock()
	defer b.setMu.Unlock()
	b.mu.Lock()
	old := b.funcs[def.App]
	b.mu.Unlock()
	if old != nil && old.def.equal(def) {
		return nil
	}
	if old != nil {
		old.stop(ctx)
	}
	f, err := b.startFunction(ctx, def)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.funcs[def.App] = f
	b.mu.Unlock()
	b.cron.set(def.App, def.Crons)
	return nil
}

// RemoveFunction stops delivering to an app and deletes its consumers
// and idempotency records: events published from now on are not kept for
// it. Its dead letters stay until they expire.
func (b *Bus) RemoveFunction(ctx context.Context, app string) error {
	b.setMu.Lock()
	defer b.setMu.Unlock()
	b.cron.set(app, nil)
	b.mu.Lock()
	f := b.funcs[app]
	delete(b.funcs, app)
	b.mu.Unlock()
	if f != nil {
		f.stop(ctx)
	}
	var errs []error
	b.mu.Lock()
	if i := b.idem[app]; i != nil {
		i.close()
		delete(b.idem, app)
	}
	b.mu.Unlock()
	if err := b.js.DeleteKeyValue(ctx, bucketIdem+app); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		errs = append(errs, fmt.Errorf("deleting the idempotency records of %s: %w", app, err))
	}
	for _, s := range []string{streamEvents, streamWork} {
		if err := b.js.DeleteConsumer(ctx, s, consumerName(app)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			errs = append(errs, fmt.Errorf("deleting consumer of %s on %s: %w", app, s, err))
		}
	}
	return errors.Join(errs...)
}

func (b *Bus) startFunction(ctx context.Context, def Function) (*function, error) {
	s := def.Settings
	f := &function{b: b, def: def, running: map[string]context.CancelFunc{}, quitting: make(chan struct{})}
	if ttl := s.IdempotencyTTL(); ttl > 0 {
		var err error
		if f.idem, err = b.Idempotency(ctx, def.App, ttl); err != nil {
			return nil, err
		}
	}
	ackWait := time.Duration(s.Timeout) + 30*time.Second
	pending := max(1000, 4*s.Concurrency)
	name := consumerName(def.App)
	var consumers []jetstream.Consumer
	if len(def.Topics) > 0 {
		subjects := make([]string, len(def.Topics))
		for i, t := range def.Topics {
			subjects[i] = subjEvent + t
		}
		c, err := b.js.CreateOrUpdateConsumer(ctx, streamEvents, jetstream.ConsumerConfig{Durable: name, FilterSubjects: subjects,
			DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
			MaxAckPending: pending, Description: "noops function " + def.App})
		if err != nil {
			return nil, fmt.Errorf("subscribing %s to %v: %w", def.App, def.Topics, err)
		}
		consumers = append(consumers, c)
	} else if err := b.js.DeleteConsumer(ctx, streamEvents, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("unsubscribing %s: %w", def.App, err)
	}
	c, err := b.js.CreateOrUpdateConsumer(ctx, streamWork, jetstream.ConsumerConfig{Durable: name,
		FilterSubjects: []string{subjCron + def.App, subjInvoke + def.App, subjReplay + def.App},
		AckPolicy:      jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1, MaxAckPending: pending,
		Description: "noops function " + def.App})
	if err != nil {
		return nil, fmt.Errorf("creating the work queue consumer of %s: %w", def.App, err)
	}
	consumers = append(consumers, c)

	f.ctx, f.cancel = context.WithCancel(context.Background())
	// Ordered: one lane per worker, a key always in the same lane.
	// Unordered: one queue that every worker takes from.
	lanes, perLane := s.Concurrency, 1
	if !s.Ordered {
		lanes, perLane = 1, s.Concurrency
	}
	f.lanes = make([]chan jetstream.Msg, lanes)
	for i := range f.lanes {
		lane := make(chan jetstream.Msg)
		f.lanes[i] = lane
		for range perLane {
			f.work.Go(func() {
				for m := range lane {
					f.deliver(m, s.Ordered)
				}
			})
		}
	}
	batch := max(2*s.Concurrency, 16)
	for _, c := range consumers {
		f.pumps.Go(func() { f.pump(c, batch) })
	}
	b.log.Debug("function started", "app", def.App, "topics", def.Topics, "crons", def.Crons, "ordered", s.Ordered)
	return f, nil
}

// pump hands the consumer's messages to the workers, for as long as the
// function runs: when the iterator fails (a lost connection, missed
// heartbeats), it makes a new one. A message it cannot hand over because
// the function is stopping is given back (Nak) for prompt redelivery.
func (f *function) pump(c jetstream.Consumer, batch int) {
	for {
		it, err := c.Messages(jetstream.PullMaxMessages(batch))
		if err == nil {
			if !f.track1(it) {
				it.Stop()
				return
			}
			err = f.drain(it)
			it.Stop()
		}
		if f.quit.Load() != nil {
			return
		}
		f.b.log.Warn("event consumer interrupted; resuming", "app", f.def.App, "err", err)
		select {
		case <-time.After(time.Second):
		case <-f.quitting:
			return
		}
	}
}

// track1 registers an iterator for stop to end; false when stopping.
func (f *function) track1(it jetstream.MessagesContext) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.quit.Load() != nil {
		return false
	}
	f.iters = append(f.iters, it)
	return true
}

// drain hands an iterator's messages over until it fails or stops.
func (f *function) drain(it jetstream.MessagesContext) error {
	for {
		m, err := it.Next()
		if err != nil {
			return err
		}
		lane := f.lanes[0]
		if len(f.lanes) > 1 {
			lane = f.lanes[laneOf(m, len(f.lanes))]
		}
		select {
		case lane <- m:
		case <-f.quitting:
			_ = m.Nak()
			return nil
		}
	}
}

// laneOf is the ordered lane of a message: by partition key, or by event
// ID when it has none (no order asked for).
func laneOf(m jetstream.Msg, n int) int {
	key := m.Headers().Get(hPartition)
	if key == "" {
		key = m.Headers().Get(hID)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// stop ends the consumers, waits for deliveries in flight until ctx
// ends, then cancels them (they are redelivered later).
func (f *function) stop(ctx context.Context) {
	if f.quit.Swap(&struct{}{}) != nil {
		return
	}
	close(f.quitting)
	f.mu.Lock()
	for _, it := range f.iters {
		it.Stop()
	}
	f.mu.Unlock()
	f.pumps.Wait()
	for _, l := range f.lanes {
		close(l)
	}
	done := make(chan struct{})
	go func() { f.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.cancel()
		<-done
	}
	f.cancel()
}
