package history

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

func mustAppend(t *testing.T, db *DB, app string, req *colmetricspb.ExportMetricsServiceRequest, now time.Time, wantAccepted int) {
	t.Helper()
	acc, rej, err := db.AppendOTLP(app, req, now)
	if err != nil || acc != wantAccepted || rej != 0 {
		t.Fatalf("AppendOTLP(%s) = %d accepted, %d rejected, %v; want %d, 0, nil", app, acc, rej, err, wantAccepted)
	}
}

func anyInt(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func TestAppendOTLP(t *testing.T) {
	t.Parallel()
	db := openDB(t, t.TempDir(), nil, Options{})
	now := t0.Add(time.Hour)
	at := func(s int) time.Time { return now.Add(time.Duration(s-60) * time.Second) }
	traceID := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

	mustAppend(t, db, "shop", request("shop-svc",
		gauge("process.memory.usage", "By", at(0), 123, kv("host.name", "h1")),
		gauge("cpu.utilization", "1", at(0), 0.25),
		sum("http.requests", "{request}", true, cumulative, at(0), 42),
		sum("queue.size", "{item}", false, cumulative, at(0), 7),
		sum("jobs.done", "{job}", true, delta, at(0), 5),
		sum("balance", "", false, delta, at(0), 10),
		histogram("http.server.request.duration", "s", cumulative, &metricspb.HistogramDataPoint{
			TimeUnixNano: ns(at(0)), Count: 6, Sum: ptr(4.2), ExplicitBounds: []float64{0.1, 1}, BucketCounts: []uint64{3, 2, 1},
			Exemplars: []*metricspb.Exemplar{{TimeUnixNano: ns(at(0)), TraceId: traceID, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Value: &metricspb.Exemplar_AsDouble{AsDouble: 0.5}}},
		}),
		histogram("batch.size", "{item}", delta, &metricspb.HistogramDataPoint{
			TimeUnixNano: ns(at(0)), Count: 3, Sum: ptr(30.0), ExplicitBounds: []float64{10}, BucketCounts: []uint64{1, 2},
		}),
		&metricspb.Metric{Name: "rpc.latency", Unit: "ms", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{{
			TimeUnixNano: ns(at(0)), Count: 10, Sum: 55,
			QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: 0.5, Value: 4}, {Quantile: 0.99, Value: 9.5}},
		}}}}},
		gauge("forced", "", at(0), 1, kv("app", "evil"), kv("job", "x"), kv("__name__", "y"), kv("instance", "z")),
		gauge("typed", "", at(0), 1, anyInt("n", 7),
			&commonpb.KeyValue{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
			&commonpb.KeyValue{Key: "d", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}},
			&commonpb.KeyValue{Key: "arr", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
				{Value: &commonpb.AnyValue_StringValue{StringValue: "a"}}, {Value: &commonpb.AnyValue_IntValue{IntValue: 1}}}}}}},
			kv("1st", "digit"), kv("a.b", "1"), kv("a_b", "2"), kv("empty", "")),
	), now, 11)
	// Deltas accumulate.
	mustAppend(t, db, "shop", request("shop-svc",
		sum("jobs.done", "{job}", true, delta, at(30), 5),
		sum("balance", "", false, delta, at(30), -4),
		histogram("batch.size", "{item}", delta, &metricspb.HistogramDataPoint{
			TimeUnixNano: ns(at(30)), Count: 2, Sum: ptr(5.0), ExplicitBounds: []float64{10}, BucketCounts: []uint64{2, 0},
		}),
	), now, 3)
	mustAppend(t, db, "shop", request("shop-svc", sum("jobs.done", "{job}", true, delta, at(60), 2)), now, 1)
	// A resource with a namespace and an instance.
	mustAppend(t, db, "shop", &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource:     &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", "api"), kv("service.namespace", "prod"), kv("service.instance.id", "i-1")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{gauge("up.ness", "", at(0), 1)}}},
	}}}, now, 1)

	for _, c := range []struct {
		expr string
		want float64
	}{
		{`process_memory_usage_bytes{app="shop",job="shop-svc",host_name="h1"}`, 123},
		{`cpu_utilization_ratio{app="shop"}`, 0.25},
		{`http_requests_total{app="shop"}`, 42},
		{`queue_size{app="shop"}`, 7},
		{`jobs_done_total{app="shop"}`, 12},
		{`balance{app="shop"}`, 6},
		{`http_server_request_duration_seconds_bucket{app="shop",le="0.1"}`, 3},
		{`http_server_request_duration_seconds_bucket{app="shop",le="1.0"}`, 5},
		{`http_server_request_duration_seconds_bucket{app="shop",le="+Inf"}`, 6},
		{`http_server_request_duration_seconds_sum{app="shop"}`, 4.2},
		{`http_server_request_duration_seconds_count{app="shop"}`, 6},
		{`batch_size_bucket{le="10.0"}`, 3},
		{`batch_size_bucket{le="+Inf"}`, 5},
		{`batch_size_sum`, 35},
		{`batch_size_count`, 5},
		{`rpc_latency_milliseconds{quantile="0.99"}`, 9.5},
		{`rpc_latency_milliseconds_sum`, 55},
		{`rpc_latency_milliseconds_count`, 10},
		{`forced{app="shop",job="shop-svc",instance=""}`, 1},
		{`typed{n="7",b="true",d="1.5",arr="[\"a\",1]",key_1st="digit",a_b="1;2"}`, 1},
		{`up_ness{job="prod/api",instance="i-1"}`, 1},
		{`count({app="evil"} or {job="x"} or {__name__="y"})`, math.NaN()},
	} {
		got := valueAt(t, db, c.expr, now)
		if !(near(got, c.want) || math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	res, err := db.Exemplars(context.Background(), `http_server_request_duration_seconds_bucket{app="shop"}`, now.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].SeriesLabels.Get("le") != "1.0" || len(res[0].Exemplars) != 1 ||
		res[0].Exemplars[0].Labels.Get("trace_id") != "0102030405060708090a0b0c0d0e0f10" || res[0].Exemplars[0].Labels.Get("span_id") != "0102030405060708" {
		t.Errorf("Exemplars = %v, want the trace on the le=1.0 bucket", res)
	}

	// A point without a recorded value ends a series (a stale marker).
	stale := gauge("cpu.utilization", "1", at(90), 0)
	stale.GetGauge().DataPoints[0].Value = nil
	stale.GetGauge().DataPoints[0].Flags = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
	mustAppend(t, db, "shop", request("shop-svc", stale), now.Add(time.Minute), 1)
	if n := count(t, db, `cpu_utilization_ratio`, now.Add(time.Minute)); n != 0 {
		t.Errorf("after a point without a value, cpu_utilization_ratio has %d samples, want none", n)
	}
}

func ptr[T any](v T) *T { return &v }

// An app can write neither another app's series nor the platform's.
func TestAppendOTLPStaysInItsApp(t *testing.T) {
	t.Parallel()
	p := newPlatform()
	db := openDB(t, t.TempDir(), p.reg, Options{})
	now := t0.Add(time.Hour)
	p.request("shop", "GET", "200", time.Millisecond, "")
	scrapeAt(t, db, now.Add(-time.Minute))

	acc, rej, err := db.AppendOTLP("evil", request("noops",
		gauge("noops.sandbox.memory", "By", now, 1e12, kv("app", "shop"), kv("job", PlatformJob)),
		histogram("http.server.request.duration", "s", cumulative, &metricspb.HistogramDataPoint{
			TimeUnixNano: ns(now), Attributes: []*commonpb.KeyValue{kv("app", "shop"), kv("job", PlatformJob)}, Count: 1e6}),
	), now)
	if err != nil || acc != 1 || rej != 1 {
		t.Fatalf("AppendOTLP = %d, %d, %v; want the histogram accepted, the noops_ gauge rejected", acc, rej, err)
	}
	if got := valueAt(t, db, `sum(http_server_request_duration_seconds_count{app="shop"})`, now); got != 1 {
		t.Errorf("shop's request count = %v, want the platform's 1", got)
	}
	if got := valueAt(t, db, `http_server_request_duration_seconds_count{app="evil",job="unknown_service"}`, now); got != 1e6 {
		t.Errorf("evil's own histogram = %v, want it under app evil, job unknown_service", got)
	}
	if n := count(t, db, `noops_sandbox_memory_bytes`, now); n != 0 {
		t.Errorf("noops_sandbox_memory_bytes has %d series, want none", n)
	}
	if _, _, err := db.AppendOTLP("", request("x"), now); err == nil {
		t.Error("AppendOTLP for no app: no error")
	}
}

// A cardinality explosion: 100k distinct label values against a limit
// of 1000 series.
func TestSeriesLimit(t *testing.T) {
	t.Parallel()
	const limit, n = 1000, 100_000
	p := newPlatform()
	for i := range 2 * limit { // the platform's own series are not limited
		p.memory.WithLabelValues("boom", fmt.Sprint(i)).Set(1)
	}
	db := openDB(t, t.TempDir(), p.reg, Options{SeriesPerApp: limit})
	now := t0.Add(time.Hour)
	scrapeAt(t, db, now.Add(-time.Minute))

	explosion := func(at time.Time) *colmetricspb.ExportMetricsServiceRequest {
		m := &metricspb.Metric{Name: "user.requests", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{}}}
		for i := range n {
			m.GetGauge().DataPoints = append(m.GetGauge().DataPoints, &metricspb.NumberDataPoint{
				Attributes: []*commonpb.KeyValue{kv("user_id", fmt.Sprintf("user-%06d", i))}, TimeUnixNano: ns(at),
				Value: &metricspb.NumberDataPoint_AsInt{AsInt: int64(i)},
			})
		}
		return request("boom", m)
	}
	start := time.Now()
	acc, rej, err := db.AppendOTLP("boom", explosion(now), now)
	took := time.Since(start)
	if err != nil || acc != limit || rej != n-limit {
		t.Fatalf("AppendOTLP(100k series) = %d, %d, %v; want %d accepted, %d rejected", acc, rej, err, limit, n-limit)
	}
	t.Logf("100k points against the limit in %v", took)
	if got := db.Stats().Series; got > 2*limit+limit+100 {
		t.Errorf("head holds %d series, want at most the platform's %d and the app's %d", got, 2*limit, limit)
	}
	// The existing series keep updating; new ones are still refused.
	acc, rej, err = db.AppendOTLP("boom", explosion(now.Add(time.Minute)), now.Add(time.Minute))
	if err != nil || acc != limit || rej != n-limit {
		t.Fatalf("second AppendOTLP = %d, %d, %v; want %d accepted", acc, rej, err, limit)
	}
	if got := valueAt(t, db, `count(user_requests{app="boom"})`, now.Add(time.Minute)); got != limit {
		t.Errorf("boom has %v series, want %d", got, limit)
	}
	if got := valueAt(t, db, `count(noops_sandbox_memory_bytes{app="boom"})`, now.Add(time.Minute)); got != 2*limit {
		t.Errorf("the platform has %v series of boom, want all %d", got, 2*limit)
	}
	// Another app is not affected.
	mustAppend(t, db, "calm", request("calm", gauge("queue", "", now, 3, kv("q", "a")), gauge("queue", "", now, 4, kv("q", "b"))), now, 2)

	st := db.Stats().Apps
	if b := st["boom"]; b.Series != limit || b.RejectedSeries != 2*(n-limit) || b.RejectedPoints != 2*(n-limit) {
		t.Errorf("Stats.Apps[boom] = %+v, want %d series, %d rejected", b, limit, 2*(n-limit))
	}
	if c := st["calm"]; c.Series != 2 || c.RejectedSeries != 0 {
		t.Errorf("Stats.Apps[calm] = %+v, want 2 series, none rejected", c)
	}

	// A histogram point needs all its series or none.
	small := openDB(t, t.TempDir(), nil, Options{SeriesPerApp: 5})
	h := histogram("h", "", cumulative, &metricspb.HistogramDataPoint{TimeUnixNano: ns(now), Count: 1, Sum: ptr(1.0), ExplicitBounds: []float64{1, 2, 3}, BucketCounts: []uint64{1, 0, 0, 0}})
	acc, rej, _ = small.AppendOTLP("x", request("x", gauge("g", "", now, 1), h), now)
	if acc != 1 || rej != 1 || small.Stats().Apps["x"].Series != 1 || small.Stats().Apps["x"].RejectedSeries != 6 {
		t.Errorf("a 6-series histogram against 4 free series: %d accepted, %d rejected, %+v; want it refused whole", acc, rej, small.Stats().Apps["x"])
	}
}

// The set of an app's series survives a restart, read back from the head.
func TestSeriesLimitAfterReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := t0.Add(time.Hour)
	db := openDB(t, dir, nil, Options{SeriesPerApp: 3})
	for i := range 4 {
		db.AppendOTLP("a", request("a", gauge("g", "", now, 1, anyInt("i", int64(i)))), now)
	}
	if err := db.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir, nil, Options{SeriesPerApp: 3})
	later := now.Add(time.Minute)
	acc, rej, err := db.AppendOTLP("a", request("a", gauge("g", "", later, 2, anyInt("i", 0)), gauge("g", "", later, 2, anyInt("i", 9))), later)
	if err != nil || acc != 1 || rej != 1 {
		t.Errorf("after reopening, AppendOTLP = %d, %d, %v; want the old series accepted, a fourth refused", acc, rej, err)
	}
}

func TestMalformedOTLP(t *testing.T) {
	t.Parallel()
	db := openDB(t, t.TempDir(), nil, Options{})
	now := t0.Add(time.Hour)
	nested := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}
	for range 20 {
		nested = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{nested}}}}
	}
	manyAttrs := make([]*commonpb.KeyValue, 40)
	for i := range manyAttrs {
		manyAttrs[i] = anyInt(fmt.Sprint("k", i), int64(i))
	}
	hist := func(p *metricspb.HistogramDataPoint) *metricspb.Metric {
		p.TimeUnixNano = ns(now)
		return histogram("h", "", cumulative, p)
	}
	for _, c := range []struct {
		name string
		m    *metricspb.Metric
	}{
		{"no value", &metricspb.Metric{Name: "g", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{TimeUnixNano: ns(now)}}}}}},
		{"nil point", &metricspb.Metric{Name: "g", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{nil}}}}},
		{"empty name", gauge("", "", now, 1)},
		{"underscores only", gauge("...", "", now, 1)},
		{"huge name", gauge(strings.Repeat("n", 10_000), "", now, 1)},
		{"name not UTF-8", gauge("bad\xff", "", now, 1)},
		{"reserved name", gauge("noops.anything", "", now, 1)},
		{"huge label value", gauge("g", "", now, 1, kv("k", strings.Repeat("v", 2000)))},
		{"huge byte value", gauge("g", "", now, 1, &commonpb.KeyValue{Key: "k", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: make([]byte, 1000)}}})},
		{"label value not UTF-8", gauge("g", "", now, 1, kv("k", "\xff\xfe"))},
		{"label key not UTF-8", gauge("g", "", now, 1, kv("k\xff", "v"))},
		{"label key underscores", gauge("g", "", now, 1, kv("_", "v"))},
		{"huge label key", gauge("g", "", now, 1, kv(strings.Repeat("k", 200), "v"))},
		{"too many labels", gauge("g", "", now, 1, manyAttrs...)},
		{"nested too deeply", gauge("g", "", now, 1, &commonpb.KeyValue{Key: "k", Value: nested})},
		{"from the future", gauge("g", "", now.Add(time.Hour), 1)},
		{"from the past", gauge("g", "", now.Add(-2*time.Hour), 1)},
		{"no temporality", sum("s", "", true, metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED, now, 1)},
		{"NaN delta", &metricspb.Metric{Name: "d", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{AggregationTemporality: delta,
			DataPoints: []*metricspb.NumberDataPoint{{TimeUnixNano: ns(now), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: math.NaN()}}}}}}},
		{"bucket counts mismatch", hist(&metricspb.HistogramDataPoint{Count: 1, ExplicitBounds: []float64{1, 2}, BucketCounts: []uint64{1, 0}})},
		{"count mismatch", hist(&metricspb.HistogramDataPoint{Count: 9, ExplicitBounds: []float64{1}, BucketCounts: []uint64{1, 1}})},
		{"decreasing bounds", hist(&metricspb.HistogramDataPoint{Count: 2, ExplicitBounds: []float64{2, 1}, BucketCounts: []uint64{1, 1, 0}})},
		{"NaN bound", hist(&metricspb.HistogramDataPoint{Count: 2, ExplicitBounds: []float64{math.NaN()}, BucketCounts: []uint64{1, 1}})},
		{"overflowing counts", hist(&metricspb.HistogramDataPoint{Count: 1, ExplicitBounds: []float64{1}, BucketCounts: []uint64{math.MaxUint64, 2}})},
		{"too many buckets", hist(&metricspb.HistogramDataPoint{ExplicitBounds: make([]float64, 1000)})},
		{"no temporality histogram", histogram("h", "", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED, &metricspb.HistogramDataPoint{TimeUnixNano: ns(now)})},
		{"exponential histogram", &metricspb.Metric{Name: "e", Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
			AggregationTemporality: cumulative, DataPoints: []*metricspb.ExponentialHistogramDataPoint{{TimeUnixNano: ns(now), Count: 1}}}}}},
		{"quantile out of range", &metricspb.Metric{Name: "q", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{{
			TimeUnixNano: ns(now), QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: 2}}}}}}}},
		{"quantile NaN", &metricspb.Metric{Name: "q", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{{
			TimeUnixNano: ns(now), QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: math.NaN()}}}}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			acc, rej, err := db.AppendOTLP("app", request("svc", c.m), now)
			if err != nil || acc != 0 || rej != 1 {
				t.Errorf("AppendOTLP(%s) = %d accepted, %d rejected, %v; want the point rejected", c.name, acc, rej, err)
			}
		})
	}

	// Nothing to count and nothing to break.
	for _, req := range []*colmetricspb.ExportMetricsServiceRequest{
		nil,
		{},
		{ResourceMetrics: []*metricspb.ResourceMetrics{nil, {ScopeMetrics: []*metricspb.ScopeMetrics{nil, {Metrics: []*metricspb.Metric{nil, {Name: "no.data"}}}}}}},
	} {
		if acc, rej, err := db.AppendOTLP("app", req, now); acc != 0 || rej != 0 || err != nil {
			t.Errorf("AppendOTLP(%v) = %d, %d, %v; want nothing", req, acc, rej, err)
		}
	}
	// Exemplars without a usable trace ID are dropped, not the point.
	bad := sum("s", "", true, cumulative, now, 1)
	bad.GetSum().DataPoints[0].Exemplars = []*metricspb.Exemplar{nil, {TraceId: []byte{1}}, {TraceId: make([]byte, 16)}, {TraceId: make([]byte, 16)[:15]}}
	mustAppend(t, db, "app", request("svc", bad), now, 1)
	// Out of order: the same series at an earlier time.
	if acc, rej, _ := db.AppendOTLP("app", request("svc", sum("s", "", true, cumulative, now.Add(-time.Minute), 1)), now); acc != 0 || rej != 1 {
		t.Errorf("an out-of-order point: %d accepted, %d rejected; want it rejected", acc, rej)
	}
	if st := db.Stats().Apps["app"]; st.RejectedPoints < 29 {
		t.Errorf("Stats.Apps[app].RejectedPoints = %d, want every rejection counted", st.RejectedPoints)
	}
}
