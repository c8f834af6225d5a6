package app

import (
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// metricsRequest is the platform's own metrics (what /metrics shows) as
// one OTLP request: counters as cumulative monotonic sums, gauges and
// untyped as gauges, histograms with their explicit buckets, summaries
// with their quantiles. start is when the counters started (the
// server's start).
func metricsRequest(g prometheus.Gatherer, start, now time.Time) (*colmetricspb.ExportMetricsServiceRequest, error) {
	mfs, err := g.Gather()
	if len(mfs) == 0 {
		return nil, err
	}
	st, ts := uint64(start.UnixNano()), uint64(now.UnixNano())
	var out []*metricspb.Metric
	for _, mf := range mfs {
		m := &metricspb.Metric{Name: mf.GetName(), Description: mf.GetHelp()}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			var pts []*metricspb.NumberDataPoint
			for _, x := range mf.GetMetric() {
				pts = append(pts, &metricspb.NumberDataPoint{Attributes: labelAttrs(x.GetLabel()), StartTimeUnixNano: st, TimeUnixNano: ts,
					Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: x.GetCounter().GetValue()}})
			}
			m.Data = &metricspb.Metric_Sum{Sum: &metricspb.Sum{DataPoints: pts, IsMonotonic: true,
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE}}
		case dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
			var pts []*metricspb.NumberDataPoint
			for _, x := range mf.GetMetric() {
				v := x.GetGauge().GetValue()
				if mf.GetType() == dto.MetricType_UNTYPED {
					v = x.GetUntyped().GetValue()
				}
				pts = append(pts, &metricspb.NumberDataPoint{Attributes: labelAttrs(x.GetLabel()), TimeUnixNano: ts,
					Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v}})
			}
			m.Data = &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: pts}}
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			var pts []*metricspb.HistogramDataPoint
			for _, x := range mf.GetMetric() {
				pts = append(pts, histogramPoint(x, st, ts))
			}
			m.Data = &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{DataPoints: pts,
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE}}
		case dto.MetricType_SUMMARY:
			var pts []*metricspb.SummaryDataPoint
			for _, x := range mf.GetMetric() {
				s := x.GetSummary()
				p := &metricspb.SummaryDataPoint{Attributes: labelAttrs(x.GetLabel()), StartTimeUnixNano: st, TimeUnixNano: ts,
					Count: s.GetSampleCount(), Sum: s.GetSampleSum()}
				for _, q := range s.GetQuantile() {
					p.QuantileValues = append(p.QuantileValues, &metricspb.SummaryDataPoint_ValueAtQuantile{Quantile: q.GetQuantile(), Value: q.GetValue()})
				}
				pts = append(pts, p)
			}
			m.Data = &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: pts}}
		default:
			continue
		}
		out = append(out, m)
	}
	req := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource:     resource("noops", ""),
		ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: &commonpb.InstrumentationScope{Name: "noops"}, Metrics: out}},
	}}}
	return req, err
}

// histogramPoint turns Prometheus' cumulative buckets into OTLP's counts
// per bucket (the last one above the highest bound).
func histogramPoint(x *dto.Metric, st, ts uint64) *metricspb.HistogramDataPoint {
	h := x.GetHistogram()
	bs := append([]*dto.Bucket(nil), h.GetBucket()...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
	sum := h.GetSampleSum()
	p := &metricspb.HistogramDataPoint{Attributes: labelAttrs(x.GetLabel()), StartTimeUnixNano: st, TimeUnixNano: ts,
		Count: h.GetSampleCount(), Sum: &sum}
	var prev uint64
	for _, b := range bs {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue
		}
		p.ExplicitBounds = append(p.ExplicitBounds, b.GetUpperBound())
		c := b.GetCumulativeCount()
		p.BucketCounts = append(p.BucketCounts, c-min(prev, c))
		prev = c
	}
	p.BucketCounts = append(p.BucketCounts, h.GetSampleCount()-min(prev, h.GetSampleCount()))
	return p
}

func labelAttrs(ls []*dto.LabelPair) []*commonpb.KeyValue {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.GetName()] = l.GetValue()
	}
	return attrs(m)
}
