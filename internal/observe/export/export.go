package export

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// ErrStopped is returned by Traces, Metrics and Logs after Stop.
var ErrStopped = errors.New("OTLP exporter stopped")

// Reasons a batch was dropped, the keys of SignalStats.Dropped.
const (
	// DropQueueFull: the queue reached MaxQueueBytes; the oldest batches
	// went.
	DropQueueFull = "queue_full"
	// DropRejected: the receiver answered with a non-retryable failure.
	DropRejected = "rejected"
	// DropCorrupt: the batch could not be read back from disk. At start-up
	// the count is of damaged regions cut from segment files, whose
	// batches cannot be counted.
	DropCorrupt = "corrupt"
	// DropTooLarge: a batch over a quarter of MaxQueueBytes was refused.
	DropTooLarge = "too_large"
)

// Stats describes an Exporter's work since New.
type Stats struct {
	Endpoint string // scheme://host[:port]
	Protocol string
	Traces   SignalStats
	Metrics  SignalStats
	Logs     SignalStats
}

// SignalStats describes one signal's queue and deliveries.
type SignalStats struct {
	QueuedBatches int64 // on disk, not yet delivered (including one being sent)
	QueuedBytes   int64
	Sent          uint64            // batches the receiver accepted
	Requests      uint64            // successful export requests (merged batches)
	Retries       uint64            // failed requests that will be retried
	Dropped       map[string]uint64 // batches given up, by reason (Drop*)
	// RejectedItems counts the spans, data points or log records that
	// receivers reported rejecting in partial-success replies.
	RejectedItems uint64
	// Refused is set while the receiver refuses the exporter itself (HTTP
	// 401, 403, 404 or a redirect; gRPC Unauthenticated, PermissionDenied
	// or Unimplemented): batches are kept and retried every MaxBackoff.
	Refused       bool
	LastError     string // the last failure, with header values cut out
	LastErrorTime time.Time
	LastSuccess   time.Time
}

// Exporter queues OTLP batches on disk and sends them to one receiver.
// Its methods are safe for concurrent use.
type Exporter struct {
	cfg    Config
	target target
	client client
	redact redactor
	sigs   [numKinds]*signal
	// sleep waits d or until ctx ends, reporting whether it waited;
	// tests replace it.
	sleep func(ctx context.Context, d time.Duration) bool

	stopping atomic.Bool // Stop has begun: no more batches

	mu       sync.Mutex // guards started, stopped, cancel
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	draining chan struct{} // closed by Stop: send what is queued, then return
	workers  sync.WaitGroup
}

// signal is one signal's queue and counters.
type signal struct {
	kind kind
	q    *queue

	mu    sync.Mutex // guards stats
	stats SignalStats
}

// New checks cfg and opens the queues in cfg.Dir, keeping what a previous
// Exporter left there; it does not connect. Batches may be queued at once;
// they are sent after Start.
func New(cfg Config) (*Exporter, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configuring OTLP export: %w", err)
	}
	t, err := parseEndpoint(&cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring OTLP export: %w", err)
	}
	e := &Exporter{
		cfg:      cfg,
		target:   t,
		redact:   newRedactor(cfg.Headers),
		sleep:    sleepCtx,
		draining: make(chan struct{}),
	}
	for k := range numKinds {
		q, st, err := openQueue(filepath.Join(cfg.Dir, k.String()), k.String(), cfg.MaxQueueBytes, cfg.Logger)
		if err != nil {
			e.closeQueues()
			return nil, fmt.Errorf("opening OTLP export queue: %w", err)
		}
		s := &signal{kind: k, q: q, stats: SignalStats{Dropped: map[string]uint64{}}}
		if st.corrupt > 0 {
			s.stats.Dropped[DropCorrupt] = st.corrupt
		}
		if st.full > 0 {
			s.stats.Dropped[DropQueueFull] = st.full
		}
		e.sigs[k] = s
	}
	if cfg.Protocol == ProtocolGRPC {
		e.client, err = newGRPCClient(t, &e.cfg)
		if err != nil {
			e.closeQueues()
			return nil, fmt.Errorf("configuring OTLP export: %w", err)
		}
	} else {
		e.client = newHTTPClient(t, &e.cfg)
	}
	return e, nil
}

func (e *Exporter) closeQueues() error {
	var errs []error
	for _, s := range e.sigs {
		if s != nil {
			errs = append(errs, s.q.close())
		}
	}
	return errors.Join(errs...)
}

// Start begins sending, one goroutine per signal, and returns at once.
// Sending runs until Stop, not until ctx ends.
func (e *Exporter) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.stopped {
		return errors.New("starting OTLP exporter: already started")
	}
	e.started = true
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	for _, s := range e.sigs {
		if n, b := s.q.pending(); n > 0 {
			e.cfg.Logger.Info("resuming queued OTLP export", "signal", s.kind.String(), "batches", n, "bytes", b)
		}
		e.workers.Add(1)
		go e.deliver(run, s)
	}
	e.cfg.Logger.Info("exporting telemetry over OTLP", "endpoint", e.target.display, "protocol", e.cfg.Protocol)
	return nil
}

// Stop refuses new batches, sends what is queued until every queue is
// empty, a request fails or ctx ends (then it cuts short the requests in
// flight), and syncs the queues to disk: what was not sent stays queued for
// the next Exporter on the same Dir.
func (e *Exporter) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	e.stopping.Store(true)
	started, cancel := e.started, e.cancel
	e.mu.Unlock()
	if started {
		close(e.draining)
		done := make(chan struct{})
		go func() {
			e.workers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
		}
		cancel()
		<-done
	}
	e.client.close()
	if err := e.closeQueues(); err != nil {
		return fmt.Errorf("stopping OTLP exporter: %w", err)
	}
	return nil
}

// Traces queues req for export. It does no network I/O: it serializes req
// and appends it to the traces queue on disk; it does not keep req. An
// empty req is ignored. The error is ErrStopped after Stop, or a failure
// to write the queue, or a batch over a quarter of MaxQueueBytes.
func (e *Exporter) Traces(req *coltracepb.ExportTraceServiceRequest) error {
	if len(req.GetResourceSpans()) == 0 {
		return nil
	}
	return e.enqueue(kindTraces, req)
}

// Metrics queues req for export, as Traces does.
func (e *Exporter) Metrics(req *colmetricspb.ExportMetricsServiceRequest) error {
	if len(req.GetResourceMetrics()) == 0 {
		return nil
	}
	return e.enqueue(kindMetrics, req)
}

// Logs queues req for export, as Traces does.
func (e *Exporter) Logs(req *collogspb.ExportLogsServiceRequest) error {
	if len(req.GetResourceLogs()) == 0 {
		return nil
	}
	return e.enqueue(kindLogs, req)
}

func (e *Exporter) enqueue(k kind, req proto.Message) error {
	if e.stopping.Load() {
		return ErrStopped
	}
	s := e.sigs[k]
	rec := make([]byte, recordHeader, recordHeader+proto.Size(req))
	rec, err := proto.MarshalOptions{}.MarshalAppend(rec, req)
	if err != nil {
		return fmt.Errorf("encoding %s for export: %w", k, err)
	}
	payload := rec[recordHeader:]
	if limit := e.cfg.MaxQueueBytes / 4; int64(len(rec)) > limit || len(payload) > maxRecordPayload {
		s.count(func(st *SignalStats) { st.Dropped[DropTooLarge]++ })
		return fmt.Errorf("queueing %s for export: batch of %d bytes is over the limit of %d", k, len(rec), min(limit, maxRecordPayload))
	}
	dropped, err := s.q.append(rec, payloadCRC(payload))
	if dropped > 0 {
		s.count(func(st *SignalStats) { st.Dropped[DropQueueFull] += dropped })
		e.cfg.Logger.Warn("OTLP export queue full; dropped the oldest batches", "signal", k.String(), "batches", dropped, "max_bytes", e.cfg.MaxQueueBytes)
	}
	return err
}

func (s *signal) count(f func(*SignalStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *signal) snapshot() SignalStats {
	s.mu.Lock()
	st := s.stats
	st.Dropped = maps.Clone(s.stats.Dropped)
	s.mu.Unlock()
	st.QueuedBatches, st.QueuedBytes = s.q.pending()
	return st
}

// Stats returns the counters so far.
func (e *Exporter) Stats() Stats {
	return Stats{
		Endpoint: e.target.display,
		Protocol: e.cfg.Protocol,
		Traces:   e.sigs[kindTraces].snapshot(),
		Metrics:  e.sigs[kindMetrics].snapshot(),
		Logs:     e.sigs[kindLogs].snapshot(),
	}
}
