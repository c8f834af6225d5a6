package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"noops/internal/events"
	"noops/internal/spec"
)

// The sides.
const (
	sideNoops           = "noops"
	sideNoopsIdemOff    = "noops-idem-off"
	sideJetStream       = "jetstream"
	sideJetStreamNoHTTP = "jetstream-nohttp"
)

const (
	topic       = "bench.load"
	app         = "bench"
	baseStream  = "BENCH"
	busStream   = "NOOPS_EVENTS" // the bus's event stream, read only to see it drain
	streamBytes = 1 << 30
)

// side is one way of getting events from publishers to the handler.
type side struct {
	name    string
	rcv     *receiver
	publish func(ctx context.Context, data []byte) error
	// left is how many messages the side's stream still holds (not yet
	// acked by every consumer).
	left func(ctx context.Context) (uint64, error)
	// final, when set, checks the side after the last round.
	final   func(ctx context.Context) error
	closers []func()
	// missedHeartbeats counts the baseline's ErrNoHeartbeat from Next.
	missedHeartbeats atomic.Int64
}

// warnings makes the bus's log records of level Warn and above
// anomalies, and logs every record.
type warnings struct {
	slog.Handler
	rcv *receiver
}

func (w *warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool {
			attrs = append(attrs, a.String())
			return true
		})
		_ = w.rcv.fail("the bus logged %q %s", r.Message, strings.Join(attrs, " "))
	}
	return w.Handler.Handle(ctx, r)
}

func (w *warnings) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnings{Handler: w.Handler.WithAttrs(as), rcv: w.rcv}
}

func (w *warnings) WithGroup(g string) slog.Handler {
	return &warnings{Handler: w.Handler.WithGroup(g), rcv: w.rcv}
}

var nextRun atomic.Uint32

func (s *side) close() {
	for _, c := range slices.Backward(s.closers) {
		c()
	}
	s.closers = nil
}

// startSide starts a side's embedded server in dir, its handler and its
// consumers.
func startSide(name, dir string, cfg config) (_ *side, err error) {
	s := &side{name: name, rcv: &receiver{}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	text := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	emb, err := events.StartEmbedded(events.EmbeddedConfig{Dir: dir, Logger: slog.New(text).With("side", name)})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, emb.Shutdown)
	nc, err := emb.Connect("bench")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, nc.Close)
	// A slow consumer (the client dropped messages of a subscription whose
	// channel was full) means redeliveries later: an anomaly, on any side.
	nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subj := ""
		if sub != nil {
			subj = sub.Subject
		}
		_ = s.rcv.fail("the NATS client reported %v (subscription %q)", err, subj)
	})
	var h *handler
	if name != sideJetStreamNoHTTP {
		if h, err = startHandler(s.rcv); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = h.srv.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	switch name {
	case sideNoops, sideNoopsIdemOff:
		// The bus's warnings (a consumer that stopped, an idempotency
		// record it could not write) are anomalies.
		logger := slog.New(&warnings{Handler: text, rcv: s.rcv}).With("side", name)
		err = s.startNoops(ctx, nc, js, h, name == sideNoopsIdemOff, cfg, logger)
	default:
		err = s.startJetStream(ctx, js, h, cfg)
	}
	if err != nil {
		return nil, err
	}
	// Warm-up: connections, files, the JIT-less but cache-hungry first
	// events; not counted.
	if cfg.warmup > 0 {
		r, err := s.round(cfg, cfg.warmup, "")
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		fmt.Fprintf(os.Stderr, "  warm-up %s: %d events, %.0f events/s\n", name, cfg.warmup, r.EPS)
	}
	return s, nil
}

// startNoops opens the platform's bus on nc with one function, "bench",
// subscribed to the topic, delivered over HTTP to h.
func (s *side) startNoops(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, h *handler, idemOff bool, cfg config, logger *slog.Logger) error {
	target := events.HTTPTarget{Client: newClient(cfg.concurrency), URL: func(string) string { return h.url }}
	bus, err := events.Open(ctx, nc, events.Config{Target: target, MaxBytes: streamBytes, Logger: logger})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bus.Close(ctx)
	})
	settings := spec.Function{Concurrency: cfg.concurrency}
	if idemOff {
		settings.Idempotency = "off"
	}
	if err := bus.SetFunction(ctx, events.Function{App: app, Topics: []string{topic}, Settings: settings}); err != nil {
		return err
	}
	s.publish = func(ctx context.Context, data []byte) error {
		return bus.Publish(ctx, &events.Event{Topic: topic, Data: data}, "/bench")
	}
	s.left = streamLeft(js, busStream)
	// At the end: nothing may have gone to the dead letters.
	s.final = func(ctx context.Context) error {
		dl, err := bus.DeadLetters(ctx, app, 10)
		if err != nil {
			return fmt.Errorf("listing the dead letters: %w", err)
		}
		if len(dl) > 0 {
			return fmt.Errorf("%d events went to the dead letters, the first: %s", len(dl), dl[0].Error)
		}
		return nil
	}
	return nil
}

// startJetStream makes the baseline: a file-storage stream on the topic,
// a durable pull consumer with explicit ack and concurrency workers that
// POST each event to h (or, without h, hand it to the receiver) and ack.
func (s *side) startJetStream(ctx context.Context, js jetstream.JetStream, h *handler, cfg config) error {
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: baseStream, Subjects: []string{topic},
		Storage: jetstream.FileStorage, Retention: jetstream.InterestPolicy, Discard: jetstream.DiscardNew, MaxBytes: streamBytes})
	if err != nil {
		return err
	}
	// The bus's settings for a function's consumer and its pull batch.
	c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, MaxDeliver: -1, MaxAckPending: max(1000, 4*cfg.concurrency)})
	if err != nil {
		return err
	}
	it, err := c.Messages(jetstream.PullMaxMessages(max(2*cfg.concurrency, 16)))
	if err != nil {
		return err
	}
	var workers sync.WaitGroup
	s.closers = append(s.closers, func() { it.Stop(); workers.Wait() })
	var client *http.Client
	if h != nil {
		client = newClient(cfg.concurrency)
	}
	for range cfg.concurrency {
		workers.Go(func() {
			for {
				m, err := it.Next()
				if errors.Is(err, jetstream.ErrNoHeartbeat) {
					// Not terminal (nats.go): the iterator goes on.
					s.missedHeartbeats.Add(1)
					continue
				}
				if err != nil {
					if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						_ = s.rcv.fail("the consumer stopped: %v", err)
					}
					return
				}
				if client == nil {
					_ = s.rcv.record(m.Data(), since())
				} else {
					post(client, h.url+"/", m.Data(), s.rcv)
				}
				_ = m.Ack()
			}
		})
	}
	s.publish = func(ctx context.Context, data []byte) error {
		_, err := js.Publish(ctx, topic, data)
		return err
	}
	s.left = streamLeft(js, baseStream)
	return nil
}

// post makes the baseline's delivery: the event's data as the body of a
// POST; anything but a 200 is an anomaly.
func post(client *http.Client, url string, data []byte, rcv *receiver) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		_ = rcv.fail("%v", err)
		return
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		_ = rcv.fail("delivering: %v", err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = rcv.fail("delivering: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
}

func streamLeft(js jetstream.JetStream, name string) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return 0, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0, err
		}
		return info.State.Msgs, nil
	}
}

// roundResult is one round of one side.
type roundResult struct {
	Events      int     `json:"events"`
	Seconds     float64 `json:"seconds"`      // first publish call to the last receipt
	EPS         float64 `json:"events_per_s"` // end to end
	PublishEPS  float64 `json:"publish_events_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	CPUPerEvent float64 `json:"process_cpu_us_per_event"` // the whole process: publishers, server, deliveries, handler
	DrainMs     float64 `json:"drain_ms"`                 // after the last receipt, until the stream held nothing
}

// round publishes n events from cfg.publishers goroutines and waits until
// the handler has seen each, then until the stream is empty. With
// cpuProfile, the round runs under the CPU profiler.
func (s *side) round(cfg config, n int, cpuProfile string) (roundResult, error) {
	return s.run(cfg, n, cfg.publishers, 0, cpuProfile)
}

// run is a round of n events from publishers goroutines; with rate > 0,
// event i is published no earlier than i/rate seconds after the start.
func (s *side) run(cfg config, n, publishers int, rate float64, cpuProfile string) (roundResult, error) {
	run := nextRun.Add(1)
	t := newTally(run, n)
	s.rcv.cur.Store(t)
	defer s.rcv.cur.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return roundResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return roundResult{}, err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		next     atomic.Int64
		pubs     sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	cpu0 := processCPU()
	start := since()
	for range publishers {
		pubs.Go(func() {
			buf := make([]byte, cfg.size)
			for i := headerLen; i < len(buf); i++ {
				buf[i] = 'a' + byte(i%26)
			}
			for {
				seq := next.Add(1) - 1
				if seq >= int64(n) {
					return
				}
				if rate > 0 {
					if d := start + time.Duration(float64(seq)/rate*1e9) - since(); d > 0 {
						time.Sleep(d)
					}
				}
				t0 := since()
				putHeader(buf, run, uint64(seq), t0)
				if err := s.publish(ctx, buf); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("publishing event %d: %w", seq, err)
					}
					errMu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	pubs.Wait()
	published := since()
	if firstErr != nil {
		return roundResult{}, firstErr
	}
	// Any anomaly fails the run: no need to wait for the rest.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-t.done:
			break wait
		case <-tick.C:
			if bad, first := s.rcv.anomalies(); bad > 0 {
				return roundResult{}, fmt.Errorf("%d of %d events handled after %s; %d anomalies, the first: %s",
					t.got.Load(), n, (since() - start).Round(time.Millisecond), bad, first)
			}
		case <-ctx.Done():
			return roundResult{}, fmt.Errorf("%d of %d events handled after %s", t.got.Load(), n, cfg.timeout)
		}
	}
	cpu1 := processCPU()
	end := time.Duration(t.end.Load())
	// Every event acked: the stream (interest retention) is empty.
	var drain time.Duration
	for {
		left, err := s.left(context.Background())
		if err != nil {
			return roundResult{}, fmt.Errorf("reading the stream: %w", err)
		}
		if left == 0 {
			drain = since() - end
			break
		}
		if since()-end > 30*time.Second {
			return roundResult{}, fmt.Errorf("the stream still holds %d messages 30 s after every event was handled", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if bad, first := s.rcv.anomalies(); bad > 0 {
		return roundResult{}, fmt.Errorf("%d anomalies, the first: %s", bad, first)
	}
	lat := slices.Clone(t.lat)
	slices.Sort(lat)
	secs := (end - start).Seconds()
	return roundResult{Events: n, Seconds: secs, EPS: float64(n) / secs, PublishEPS: float64(n) / (published - start).Seconds(),
		P50ms: quantile(lat, 0.5), P99ms: quantile(lat, 0.99), MaxMs: float64(lat[len(lat)-1]) / 1e6,
		CPUPerEvent: (cpu1 - cpu0).Seconds() / float64(n) * 1e6, DrainMs: float64(drain) / 1e6}, nil
}

// quantile of sorted nanoseconds, in ms (nearest rank).
func quantile(sorted []int64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / 1e6
}

// processCPU is this process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
