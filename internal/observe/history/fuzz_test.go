package history

import (
	"math"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzAppendOTLP feeds AppendOTLP whatever decodes as an OTLP metrics
// request: it must not panic, and must account for every data point as
// accepted or rejected.
func FuzzAppendOTLP(f *testing.F) {
	now := t0.Add(time.Hour)
	for _, req := range []*colmetricspb.ExportMetricsServiceRequest{
		request("svc", gauge("process.memory.usage", "By", now, 123, kv("host.name", "h1"))),
		request("svc", sum("http.requests", "{request}", true, cumulative, now, 42), sum("jobs", "", true, delta, now, 1)),
		request("svc", histogram("http.server.request.duration", "s", cumulative, &metricspb.HistogramDataPoint{
			TimeUnixNano: ns(now), Count: 6, Sum: ptr(4.2), ExplicitBounds: []float64{0.1, 1}, BucketCounts: []uint64{3, 2, 1},
			Exemplars: []*metricspb.Exemplar{{TraceId: make([]byte, 16), Value: &metricspb.Exemplar_AsDouble{AsDouble: 0.5}}},
		})),
		request("svc", &metricspb.Metric{Name: "rpc", Unit: "ms", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{{
			TimeUnixNano: ns(now), Count: 10, Sum: 55, QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: 0.5, Value: 4}},
		}}}}}),
		request("svc", gauge("g", "1", now, math.NaN(), &commonpb.KeyValue{Key: "k", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{
			KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{kv("a", "b")}}}}})),
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	db := openDB(f, f.TempDir(), nil, Options{SeriesPerApp: 1000})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req colmetricspb.ExportMetricsServiceRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		acc, rej, err := db.AppendOTLP("fuzz", &req, now)
		if err != nil {
			t.Fatalf("AppendOTLP: %v", err)
		}
		if n := countPoints(&req); acc+rej != n {
			t.Fatalf("AppendOTLP = %d accepted + %d rejected, want %d points", acc, rej, n)
		}
		if got := db.Stats().Apps["fuzz"].Series; got > 1000 {
			t.Fatalf("%d series, over the limit of 1000", got)
		}
	})
}
