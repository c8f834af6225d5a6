package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"noops/internal/errkind"
)

// Streams and subjects. Topic events fan out to every function that
// subscribes (interest retention: an event stays until each subscriber
// has it). Work for one app (cron ticks, asynchronous invocations,
// replays from the dead letters) waits in a work queue until that app
// takes it, even when the app has no consumer yet. Dead letters are kept
// 14 days.
const (
	streamEvents = "NOOPS_EVENTS"
	streamWork   = "NOOPS_WORK"
	streamDLQ    = "NOOPS_DLQ"
	bucketInv    = "noops_invocations"
	bucketIdem   = "noops_idem_" // + app

	subjEvent  = "ev."   // + topic
	subjCron   = "cron." // + app
	subjInvoke = "inv."  // + app
	subjReplay = "rp."   // + app
	subjDLQ    = "dlq."  // + app
)

// Config configures a Bus.
type Config struct {
	// Target delivers requests to apps (the gateway in the platform).
	Target Target
	Logger *slog.Logger
	// MaxEventSize bounds an event's data (DefaultMaxEventSize).
	MaxEventSize int
	// MaxBytes bounds each stream's storage (default 1 GiB): when the
	// events nobody has taken yet fill it, publishing is refused rather
	// than anything dropped.
	MaxBytes int64
	// Replicas of each stream and bucket: 1 on the embedded server, 3 on
	// a NATS cluster.
	Replicas int
	// Shared says other servers deliver from the same NATS cluster:
	// each then follows the idempotency records the others write.
	Shared bool
	// OnDeadLetter, when set, is told of each event that went to the
	// dead letters.
	OnDeadLetter func(DeadLetter)
	// OnDelivery, when set, is told how each delivery attempt ended
	// (Delivered, Retried, DeadLettered, Duplicate, Cancelled) and how
	// long the app took; OnPublish of each event stored.
	OnDelivery func(app, outcome string, d time.Duration)
	OnPublish  func()
	// Now is the clock (tests).
	Now func() time.Time
}

// Target sends one request to one of an app's sandboxes and returns its
// answer with the body read up to limit bytes.
type Target interface {
	Call(ctx context.Context, app string, r *http.Request, limit int) (*Response, error)
}

// Response is an app's answer to a delivery.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool // the body was longer than the limit
}

// Bus publishes events and delivers them to functions.
type Bus struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
	dlq jetstream.Stream
	inv jetstream.KeyValue

	setMu sync.Mutex // serialises SetFunction and RemoveFunction
	mu    sync.Mutex
	funcs map[string]*function
	idem  map[string]*Idempotency
	cron  *scheduler
}

// Open makes sure the streams and buckets exist on the server behind nc
// and returns a bus. The connection stays the caller's.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Bus, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxEventSize <= 0 {
		cfg.MaxEventSize = DefaultMaxEventSize
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if v := nc.ConnectedServerVersion(); !versionAtLeast(v, 2, 10) {
		return nil, errkind.WithHint(errkind.Unavailable, fmt.Errorf("the NATS server at %s is version %s: noops needs 2.10 or later (consumers of several subjects)", nc.ConnectedUrlRedacted(), v),
			"upgrade the NATS cluster, or leave out --nats to use the embedded server")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	b := &Bus{cfg: cfg, log: cfg.Logger, nc: nc, js: js, funcs: map[string]*function{}, idem: map[string]*Idempotency{}}
	msgSize := int32(cfg.MaxEventSize + 64<<10) // attributes, headers
	streams := []jetstream.StreamConfig{
		{Name: streamEvents, Subjects: []string{subjEvent + ">"}, Retention: jetstream.InterestPolicy,
			MaxAge: 15 * 24 * time.Hour, Description: "noops topic events"},
		{Name: streamWork, Subjects: []string{subjCron + ">", subjInvoke + ">", subjReplay + ">"}, Retention: jetstream.WorkQueuePolicy,
			MaxAge: 15 * 24 * time.Hour, Description: "noops work for one app: cron ticks, invocations, replays"},
		{Name: streamDLQ, Subjects: []string{subjDLQ + ">"}, Retention: jetstream.LimitsPolicy,
			MaxAge: 14 * 24 * time.Hour, Description: "noops dead letters"},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Discard = jetstream.DiscardNew
		sc.MaxBytes = cfg.MaxBytes
		sc.MaxMsgSize = msgSize
		sc.Duplicates = 2 * time.Minute
		sc.Replicas = cfg.Replicas
		s, err := js.CreateOrUpdateStream(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("creating stream %s: %w", sc.Name, err)
		}
		if sc.Name == streamDLQ {
			b.dlq = s
		}
	}
	b.inv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucketInv, Description: "noops asynchronous invocations",
		TTL: 24 * time.Hour, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxValueSize: int32(maxStoredBody + 64<<10)})
	if err != nil {
		return nil, fmt.Errorf("creating bucket %s: %w", bucketInv, err)
	}
	b.cron = newScheduler(b)
	return b, nil
}

// Close stops every function's deliveries and the cron scheduler; a
// delivery in flight is given until ctx ends to finish.
func (b *Bus) Close(ctx context.Context) error {
	b.cron.stop()
	b.mu.Lock()
	fs := make([]*function, 0, len(b.funcs))
	for _, f := range b.funcs {
		fs = append(fs, f)
	}
	b.funcs = map[string]*function{}
	for _, i := range b.idem {
		i.close()
	}
	b.idem = map[string]*Idempotency{}
	b.mu.Unlock()
	for _, f := range fs {
		f.stop(ctx)
	}
	return nil
}

// Publish stores an event on its topic once the event is prepared
// (Prepare); it returns when JetStream has it. Publishing the same ID
// again within two minutes stores nothing new.
func (b *Bus) Publish(ctx context.Context, e *Event, defaultSource string) error {
	if err := e.Prepare(defaultSource, b.cfg.MaxEventSize); err != nil {
		return err
	}
	_, err := b.js.PublishMsg(ctx, e.natsMsg(subjEvent+e.Topic))
	if err == nil && b.cfg.OnPublish != nil {
		b.cfg.OnPublish()
	}
	return publishError(e.Topic, err)
}

// publishError classifies a failed publish.
func publishError(topic string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return errkind.Errorf(errkind.Unavailable, "publishing to %s: the event store does not answer: %v", topic, err)
	case strings.Contains(err.Error(), "maximum bytes exceeded"), strings.Contains(err.Error(), "insufficient resources"):
		return errkind.WithHint(errkind.Unavailable, fmt.Errorf("publishing to %s: the event store is full: %w", topic, err),
			"functions are behind: look at `noops events dlq list` and the functions' logs; nothing was dropped")
	case strings.Contains(err.Error(), "message size exceeds"):
		return errkind.Errorf(errkind.Invalid, "publishing to %s: the event is over the size limit: %v", topic, err)
	}
	return fmt.Errorf("publishing to %s: %w", topic, err)
}

// MaxEventSize is the largest event data (and asynchronous request body).
func (b *Bus) MaxEventSize() int { return b.cfg.MaxEventSize }

// Call sends a request to an app now, through the bus's Target: a
// synchronous invocation.
func (b *Bus) Call(ctx context.Context, app string, r *http.Request, limit int) (*Response, error) {
	return b.cfg.Target.Call(ctx, app, r, limit)
}

// versionAtLeast compares a "MAJOR.MINOR.PATCH" server version.
func versionAtLeast(v string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// Backlog returns, per function, the events waiting for it: not yet
// delivered, or delivered and not yet acknowledged (retries included).
func (b *Bus) Backlog(ctx context.Context) map[string]uint64 {
	b.mu.Lock()
	apps := make([]string, 0, len(b.funcs))
	for app := range b.funcs {
		apps = append(apps, app)
	}
	b.mu.Unlock()
	out := make(map[string]uint64, len(apps))
	for _, app := range apps {
		for _, s := range []string{streamEvents, streamWork} {
			c, err := b.js.Consumer(ctx, s, consumerName(app))
			if err != nil {
				continue
			}
			if info, err := c.Info(ctx); err == nil {
				out[app] += info.NumPending + uint64(info.NumAckPending)
			}
		}
	}
	return out
}
