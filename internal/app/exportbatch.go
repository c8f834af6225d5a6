package app

import (
	"context"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"noops/internal/observe/export"
	"noops/internal/observe/logstore"
	"noops/internal/observe/tracestore"
)

// batcher gathers the spans and log lines the platform forwards to the
// OTLP exporter (the gateway's, the apps' spans, access lines) into one
// request per signal every second or every batchMax items: the
// exporter's queue holds requests, not single spans. Every metricEvery it
// also sends the platform's own metrics.
type batcher struct {
	ex          *export.Exporter
	logger      *slog.Logger
	gather      prometheus.Gatherer
	metricEvery time.Duration
	started     time.Time

	mu    sync.Mutex
	spans []tracestore.Span
	logs  []logstore.Record
	kick  chan struct{}
	done  chan struct{}
	quit  chan struct{}
}

const (
	batchMax   = 512
	batchEvery = time.Second
	// batchHold bounds what waits while the exporter is slow to take it.
	batchHold = 8 * batchMax
)

func newBatcher(ex *export.Exporter, log *slog.Logger, g prometheus.Gatherer, metricEvery time.Duration) *batcher {
	b := &batcher{ex: ex, logger: log, gather: g, metricEvery: metricEvery, started: time.Now(),
		kick: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{})}
	go b.run()
	return b
}

func (b *batcher) span(s tracestore.Span) {
	b.mu.Lock()
	if len(b.spans) < batchHold {
		b.spans = append(b.spans, s)
	}
	full := len(b.spans) >= batchMax
	b.mu.Unlock()
	if full {
		b.nudge()
	}
}

func (b *batcher) log(r logstore.Record) {
	b.mu.Lock()
	if len(b.logs) < batchHold {
		b.logs = append(b.logs, r)
	}
	full := len(b.logs) >= batchMax
	b.mu.Unlock()
	if full {
		b.nudge()
	}
}

func (b *batcher) nudge() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *batcher) run() {
	defer close(b.done)
	t := time.NewTicker(batchEvery)
	defer t.Stop()
	m := time.NewTicker(b.metricEvery)
	defer m.Stop()
	for {
		select {
		case <-b.quit:
			b.flush()
			return
		case <-t.C:
		case <-b.kick:
		case now := <-m.C:
			b.sendMetrics(now)
		}
		b.flush()
	}
}

func (b *batcher) sendMetrics(now time.Time) {
	req, err := metricsRequest(b.gather, b.started, now)
	if err != nil {
		b.logger.Warn("gathering the platform's metrics for export", "err", err)
	}
	if req == nil {
		return
	}
	if err := b.ex.Metrics(req); err != nil {
		b.logger.Warn("queueing metrics for export", "err", err)
	}
}

func (b *batcher) stop(context.Context) error {
	close(b.quit)
	<-b.done
	return nil
}

func (b *batcher) flush() {
	b.mu.Lock()
	spans, logs := b.spans, b.logs
	b.spans, b.logs = nil, nil
	b.mu.Unlock()
	if len(spans) > 0 {
		if err := b.ex.Traces(tracesRequest(spans)); err != nil {
			b.logger.Warn("queueing spans for export", "count", len(spans), "err", err)
		}
	}
	if len(logs) > 0 {
		if err := b.ex.Logs(logsRequest(logs)); err != nil {
			b.logger.Warn("queueing log lines for export", "count", len(logs), "err", err)
		}
	}
}

// tracesRequest groups spans by service and app into OTLP resources.
func tracesRequest(spans []tracestore.Span) *coltracepb.ExportTraceServiceRequest {
	type key struct{ service, app string }
	by := map[key][]*tracepb.Span{}
	for _, s := range spans {
		k := key{s.Service, s.App}
		by[k] = append(by[k], otlpSpan(s))
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, k := range sortedKeysOf(by, func(k key) string { return k.service + "\x00" + k.app }) {
		req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
			Resource:   resource(k.service, k.app),
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "noops"}, Spans: by[k]}},
		})
	}
	return req
}

func otlpSpan(s tracestore.Span) *tracepb.Span {
	tid, _ := hex.DecodeString(s.TraceID)
	sid, _ := hex.DecodeString(s.SpanID)
	out := &tracepb.Span{TraceId: tid, SpanId: sid, Name: s.Name, StartTimeUnixNano: uint64(s.Start.UnixNano()),
		EndTimeUnixNano: uint64(s.End.UnixNano()), Kind: spanKind(s.Kind), Attributes: attrs(s.Attributes)}
	if s.ParentID != "" {
		out.ParentSpanId, _ = hex.DecodeString(s.ParentID)
	}
	switch s.StatusCode {
	case "error":
		out.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: s.StatusMessage}
	case "ok":
		out.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
	}
	return out
}

func spanKind(k string) tracepb.Span_SpanKind {
	switch k {
	case "server":
		return tracepb.Span_SPAN_KIND_SERVER
	case "client":
		return tracepb.Span_SPAN_KIND_CLIENT
	case "producer":
		return tracepb.Span_SPAN_KIND_PRODUCER
	case "consumer":
		return tracepb.Span_SPAN_KIND_CONSUMER
	case "internal":
		return tracepb.Span_SPAN_KIND_INTERNAL
	}
	return tracepb.Span_SPAN_KIND_UNSPECIFIED
}

// logsRequest groups log lines by app into OTLP resources.
func logsRequest(recs []logstore.Record) *collogspb.ExportLogsServiceRequest {
	by := map[string][]*logspb.LogRecord{}
	for _, r := range recs {
		lr := &logspb.LogRecord{TimeUnixNano: uint64(r.Time.UnixNano()), ObservedTimeUnixNano: uint64(r.Time.UnixNano()),
			SeverityText: r.Severity, Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: r.String()}},
			Attributes: attrs(map[string]string{"noops.stream": r.Stream, "noops.sandbox": r.Sandbox})}
		if r.TraceID != "" {
			lr.TraceId, _ = hex.DecodeString(r.TraceID)
		}
		if r.SpanID != "" {
			lr.SpanId, _ = hex.DecodeString(r.SpanID)
		}
		by[r.App] = append(by[r.App], lr)
	}
	req := &collogspb.ExportLogsServiceRequest{}
	for _, app := range sortedKeysOf(by, func(s string) string { return s }) {
		service := app
		if service == "" {
			service = "noops"
		}
		req.ResourceLogs = append(req.ResourceLogs, &logspb.ResourceLogs{Resource: resource(service, app),
			ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "noops"}, LogRecords: by[app]}}})
	}
	return req
}

func resource(service, app string) *resourcepb.Resource {
	m := map[string]string{"service.name": service}
	if app != "" {
		m["noops.app"] = app
	}
	return &resourcepb.Resource{Attributes: attrs(m)}
}

// attrs are m's non-empty values as OTLP string attributes, by key.
func attrs(m map[string]string) []*commonpb.KeyValue {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]*commonpb.KeyValue, len(keys))
	for i, k := range keys {
		out[i] = &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: m[k]}}}
	}
	return out
}

func sortedKeysOf[K comparable, V any](m map[K]V, name func(K) string) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return name(keys[i]) < name(keys[j]) })
	return keys
}
