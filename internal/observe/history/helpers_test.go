package history

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// t0 is the synthetic start of every test's history: well before the
// real clock, as the exemplars' own timestamps come from it.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// platform is a registry with the gateway's request histogram as
// internal/observe/metrics/red.go defines it and the sandbox metrics.
type platform struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	cpu      *prometheus.CounterVec
	memory   *prometheus.GaugeVec
	pids     *prometheus.GaugeVec
}

func newPlatform() *platform {
	p := &platform{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP server requests through the gateway.",
			Buckets: []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10},
		}, []string{"app", "http_request_method", "http_response_status_code"}),
		cpu: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noops_sandbox_cpu_seconds_total", Help: "CPU time used by a sandbox.",
		}, []string{"app", "sandbox"}),
		memory: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "noops_sandbox_memory_bytes", Help: "Memory in use by a sandbox.",
		}, []string{"app", "sandbox"}),
		pids: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "noops_sandbox_pids", Help: "Processes in a sandbox.",
		}, []string{"app", "sandbox"}),
	}
	p.reg.MustRegister(p.requests, p.cpu, p.memory, p.pids)
	return p
}

// request observes one request as the gateway does; a non-empty traceID
// becomes the exemplar.
func (p *platform) request(app, method, status string, d time.Duration, traceID string) {
	o := p.requests.WithLabelValues(app, method, status)
	if traceID != "" {
		o.(prometheus.ExemplarObserver).ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": traceID})
		return
	}
	o.Observe(d.Seconds())
}

func openDB(t testing.TB, dir string, g prometheus.Gatherer, opt Options) *DB {
	t.Helper()
	db, err := Open(dir, g, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Stop(context.Background()) })
	return db
}

func scrapeAt(t testing.TB, db *DB, at time.Time) {
	t.Helper()
	if err := db.Scrape(context.Background(), at); err != nil {
		t.Fatalf("Scrape(%v): %v", at, err)
	}
}

// valueAt returns the value of the one-sample result of expr at at, or NaN
// when there is no sample.
func valueAt(t testing.TB, db *DB, expr string, at time.Time) float64 {
	t.Helper()
	v, err := db.Query(context.Background(), expr, at)
	if err != nil {
		t.Fatalf("Query(%s): %v", expr, err)
	}
	switch len(v) {
	case 0:
		return math.NaN()
	case 1:
		return v[0].F
	}
	t.Fatalf("Query(%s) = %d samples, want 1: %v", expr, len(v), v)
	return 0
}

func count(t testing.TB, db *DB, expr string, at time.Time) int {
	t.Helper()
	v, err := db.Query(context.Background(), expr, at)
	if err != nil {
		t.Fatalf("Query(%s): %v", expr, err)
	}
	return len(v)
}

func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

func nearDur(got, want time.Duration) bool {
	d := got - want
	return d >= -time.Microsecond && d <= time.Microsecond
}

// OTLP builders.

func kv(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func request(service string, ms ...*metricspb.Metric) *colmetricspb.ExportMetricsServiceRequest {
	var attrs []*commonpb.KeyValue
	if service != "" {
		attrs = append(attrs, kv("service.name", service))
	}
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource:     &resourcepb.Resource{Attributes: attrs},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: ms}},
	}}}
}

func ns(t time.Time) uint64 { return uint64(t.UnixNano()) }

func gauge(name, unit string, at time.Time, v float64, attrs ...*commonpb.KeyValue) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Unit: unit, Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{
		DataPoints: []*metricspb.NumberDataPoint{{Attributes: attrs, TimeUnixNano: ns(at), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v}}},
	}}}
}

func sum(name, unit string, monotonic bool, tmp metricspb.AggregationTemporality, at time.Time, v int64, attrs ...*commonpb.KeyValue) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Unit: unit, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
		IsMonotonic: monotonic, AggregationTemporality: tmp,
		DataPoints: []*metricspb.NumberDataPoint{{Attributes: attrs, TimeUnixNano: ns(at), Value: &metricspb.NumberDataPoint_AsInt{AsInt: v}}},
	}}}
}

const (
	cumulative = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
	delta      = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
)

func histogram(name, unit string, tmp metricspb.AggregationTemporality, p *metricspb.HistogramDataPoint) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Unit: unit, Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
		AggregationTemporality: tmp, DataPoints: []*metricspb.HistogramDataPoint{p},
	}}}
}
