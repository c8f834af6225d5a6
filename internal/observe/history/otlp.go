package history

import (
	"context"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"noops/internal/errkind"
)

// maxFuture is how far after now a data point's time may be. A point
// from the far future would move the head past everyone's present; one
// from the far past, the first in an empty head, would make the head
// span years. Points older than half a block before now are refused too:
// the head takes no older samples once it holds recent ones.
const maxFuture = 5 * time.Minute

// AppendOTLP stores the metrics that app sent over OTLP and returns how
// many data points were stored and how many refused. It returns an error
// only when the request as a whole failed (the app name is invalid, the
// history is closed, the write failed); then nothing was stored.
//
// Gauges, sums, histograms (explicit buckets) and summaries are stored as
// Prometheus' OTLP endpoint stores them; exponential histograms are
// refused. See the package documentation for names, labels, delta
// temporality and the per-app series limit. Refused points (invalid,
// timed more than 5 minutes after now or more than half a block before
// it, over the limit, or refused by the TSDB as out of order) do not stop the others.
func (db *DB) AppendOTLP(app string, req *colmetricspb.ExportMetricsServiceRequest, now time.Time) (accepted, rejected int, err error) {
	if app == "" || len(app) > maxLabelValueLen || !utf8.ValidString(app) {
		return 0, 0, errkind.Errorf(errkind.Invalid, "appending OTLP metrics: invalid app name")
	}
	a := db.appSeriesFor(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	err = db.use(func(t *tsdb.DB) error {
		ctx := context.Background()
		if err := a.sync(ctx, t, app); err != nil {
			return err
		}
		b := &otlpBatch{
			a:       a,
			app:     app,
			limit:   db.opt.SeriesPerApp,
			ap:      t.AppenderV2(ctx),
			now:     now.UnixMilli(),
			minT:    now.Add(-db.opt.BlockDuration / 2).UnixMilli(),
			maxT:    now.Add(maxFuture).UnixMilli(),
			pending: map[uint64]float64{},
			lb:      labels.NewBuilder(labels.EmptyLabels()),
			sb:      labels.NewScratchBuilder(16),
		}
		for _, rm := range req.GetResourceMetrics() {
			b.resource(rm)
		}
		if err := b.ap.Commit(); err != nil {
			return fmt.Errorf("committing OTLP metrics of app %q: %w", app, err)
		}
		for h, v := range b.pending {
			a.series[h] = v
		}
		a.rejectedSeries += b.rejectedSeries
		accepted, rejected = b.accepted, b.rejected
		return nil
	})
	if err != nil {
		rejected = countPoints(req)
		a.rejectedPoints += uint64(rejected)
		return 0, rejected, err
	}
	a.rejectedPoints += uint64(rejected)
	return accepted, rejected, nil
}

// countPoints returns the data points in req.
func countPoints(req *colmetricspb.ExportMetricsServiceRequest) int {
	n := 0
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				n += len(m.GetGauge().GetDataPoints()) + len(m.GetSum().GetDataPoints()) +
					len(m.GetHistogram().GetDataPoints()) + len(m.GetExponentialHistogram().GetDataPoints()) +
					len(m.GetSummary().GetDataPoints())
			}
		}
	}
	return n
}

// otlpBatch appends one request of one app.
type otlpBatch struct {
	a     *appSeries // locked
	app   string
	limit int
	ap    storage.AppenderV2
	now   int64 // ms
	minT  int64 // earliest time accepted, ms
	maxT  int64 // latest time accepted, ms

	job, instance string // of the resource at hand

	// pending are the series appended by this request, with their last
	// value, until Commit; added counts those not yet in a.series.
	pending map[uint64]float64
	added   int

	accepted, rejected int
	rejectedSeries     uint64

	ln     otlptranslator.LabelNamer
	lb     *labels.Builder
	sb     labels.ScratchBuilder
	pairs  []labelPair
	series []pointSeries
}

// pointSeries is one sample of a data point: a histogram point has one
// per bucket, _sum and _count.
type pointSeries struct {
	ls   labels.Labels
	hash uint64
	v    float64
	ex   []exemplar.Exemplar
}

func (b *otlpBatch) resource(rm *metricspb.ResourceMetrics) {
	b.job, b.instance = jobOf(rm.GetResource().GetAttributes())
	for _, sm := range rm.GetScopeMetrics() {
		for _, m := range sm.GetMetrics() {
			b.metric(m)
		}
	}
}

func (b *otlpBatch) metric(m *metricspb.Metric) {
	switch d := m.GetData().(type) {
	case *metricspb.Metric_Gauge:
		ps := d.Gauge.GetDataPoints()
		name, ok := b.name(m, otlptranslator.MetricTypeGauge, len(ps))
		for _, p := range ps {
			if ok {
				b.number(name, p, false, false)
			}
		}
	case *metricspb.Metric_Sum:
		ps := d.Sum.GetDataPoints()
		typ := otlptranslator.MetricType(otlptranslator.MetricTypeNonMonotonicCounter)
		if d.Sum.GetIsMonotonic() {
			typ = otlptranslator.MetricTypeMonotonicCounter
		}
		tmp := d.Sum.GetAggregationTemporality()
		name, ok := b.name(m, typ, len(ps))
		if ok && tmp == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED {
			b.rejected += len(ps)
			ok = false
		}
		for _, p := range ps {
			if ok {
				b.number(name, p, tmp == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, true)
			}
		}
	case *metricspb.Metric_Histogram:
		ps := d.Histogram.GetDataPoints()
		tmp := d.Histogram.GetAggregationTemporality()
		name, ok := b.name(m, otlptranslator.MetricTypeHistogram, len(ps))
		if ok && tmp == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED {
			b.rejected += len(ps)
			ok = false
		}
		for _, p := range ps {
			if ok {
				b.histogram(name, p, tmp == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA)
			}
		}
	case *metricspb.Metric_Summary:
		ps := d.Summary.GetDataPoints()
		name, ok := b.name(m, otlptranslator.MetricTypeSummary, len(ps))
		for _, p := range ps {
			if ok {
				b.summary(name, p)
			}
		}
	case *metricspb.Metric_ExponentialHistogram:
		b.rejected += len(d.ExponentialHistogram.GetDataPoints())
	}
}

// name translates m's name, or counts its n points rejected.
func (b *otlpBatch) name(m *metricspb.Metric, typ otlptranslator.MetricType, n int) (string, bool) {
	name, err := metricName(m, typ)
	if err != nil {
		b.rejected += n
		return "", false
	}
	return name, true
}

// time returns a point's time in ms (now when it has none) and whether it
// is acceptable.
func (b *otlpBatch) time(ns uint64) (int64, bool) {
	if ns == 0 {
		return b.now, true
	}
	t := int64(ns / 1e6)
	return t, t >= b.minT && t <= b.maxT
}

const noValue = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)

func (b *otlpBatch) number(name string, p *metricspb.NumberDataPoint, delta, withExemplars bool) {
	base, err := b.pointLabels(p.GetAttributes())
	t, ok := b.time(p.GetTimeUnixNano())
	if err != nil || !ok {
		b.rejected++
		return
	}
	var v float64
	switch x := p.GetValue().(type) {
	case *metricspb.NumberDataPoint_AsDouble:
		v = x.AsDouble
	case *metricspb.NumberDataPoint_AsInt:
		v = float64(x.AsInt)
	default:
		if p.GetFlags()&noValue == 0 {
			b.rejected++
			return
		}
	}
	stale := p.GetFlags()&noValue != 0
	if delta && !stale && (math.IsNaN(v) || math.IsInf(v, 0)) {
		b.rejected++
		return
	}
	var exs []exemplar.Exemplar
	if withExemplars {
		exs = b.pointExemplars(p.GetExemplars(), t)
	}
	b.series = b.series[:0]
	b.add(base, name, "", "", v, exs)
	b.commitPoint(t, delta, stale)
}

func (b *otlpBatch) histogram(name string, p *metricspb.HistogramDataPoint, delta bool) {
	base, err := b.pointLabels(p.GetAttributes())
	t, ok := b.time(p.GetTimeUnixNano())
	if err != nil || !ok || !validHistogram(p, delta) {
		b.rejected++
		return
	}
	bounds, counts := p.GetExplicitBounds(), p.GetBucketCounts()
	if len(counts) == 0 {
		bounds = nil
	}
	exs := b.pointExemplars(p.GetExemplars(), t)
	b.series = b.series[:0]
	var cum uint64
	for i, le := range bounds {
		cum += counts[i]
		var in []exemplar.Exemplar
		in, exs = splitExemplars(exs, le)
		b.add(base, name+"_bucket", labels.BucketLabel, labels.FormatOpenMetricsFloat(le), float64(cum), in)
	}
	b.add(base, name+"_bucket", labels.BucketLabel, "+Inf", float64(p.GetCount()), exs)
	if p.Sum != nil {
		b.add(base, name+"_sum", "", "", p.GetSum(), nil)
	}
	b.add(base, name+"_count", "", "", float64(p.GetCount()), nil)
	b.commitPoint(t, delta, p.GetFlags()&noValue != 0)
}

// validHistogram checks a histogram point: bounds finite and increasing,
// one count per bucket (or none) adding up to the point's count, and a
// finite sum if it is a delta.
func validHistogram(p *metricspb.HistogramDataPoint, delta bool) bool {
	bounds, counts := p.GetExplicitBounds(), p.GetBucketCounts()
	if len(bounds) > maxBuckets || (len(counts) != 0 && len(counts) != len(bounds)+1) {
		return false
	}
	for i, le := range bounds {
		if math.IsNaN(le) || math.IsInf(le, 0) || (i > 0 && le <= bounds[i-1]) {
			return false
		}
	}
	var total uint64
	for _, c := range counts {
		if total+c < total {
			return false
		}
		total += c
	}
	if len(counts) > 0 && total != p.GetCount() {
		return false
	}
	return !delta || p.Sum == nil || !(math.IsNaN(p.GetSum()) || math.IsInf(p.GetSum(), 0))
}

// splitExemplars returns the exemplars (sorted by time) whose value is at
// most le, and the others.
func splitExemplars(exs []exemplar.Exemplar, le float64) (in, rest []exemplar.Exemplar) {
	for _, e := range exs {
		if e.Value <= le {
			in = append(in, e)
		} else {
			rest = append(rest, e)
		}
	}
	return in, rest
}

func (b *otlpBatch) summary(name string, p *metricspb.SummaryDataPoint) {
	base, err := b.pointLabels(p.GetAttributes())
	t, ok := b.time(p.GetTimeUnixNano())
	qs := p.GetQuantileValues()
	if err != nil || !ok || len(qs) > maxQuantiles {
		b.rejected++
		return
	}
	b.series = b.series[:0]
	for _, q := range qs {
		if !(q.GetQuantile() >= 0 && q.GetQuantile() <= 1) {
			b.rejected++
			return
		}
		b.add(base, name, quantileLabel, labels.FormatOpenMetricsFloat(q.GetQuantile()), q.GetValue(), nil)
	}
	b.add(base, name+"_sum", "", "", p.GetSum(), nil)
	b.add(base, name+"_count", "", "", float64(p.GetCount()), nil)
	b.commitPoint(t, false, p.GetFlags()&noValue != 0)
}

func (b *otlpBatch) add(base labels.Labels, name, extra, extraValue string, v float64, ex []exemplar.Exemplar) {
	b.lb.Reset(base)
	b.lb.Set(labels.MetricName, name)
	if extra != "" {
		b.lb.Set(extra, extraValue)
	}
	ls := b.lb.Labels()
	b.series = append(b.series, pointSeries{ls: ls, hash: ls.Hash(), v: v, ex: ex})
}

// last returns the last value appended to a series, and whether it is
// known (in memory or appended by this request).
func (b *otlpBatch) last(h uint64) (float64, bool) {
	if v, ok := b.pending[h]; ok {
		return v, true
	}
	v, ok := b.a.series[h]
	return v, ok
}

// commitPoint appends the samples of one data point in b.series at t, all
// or none of them as far as the series limit goes. A delta adds to each
// series' running total; a point without a recorded value marks the
// series it has stale.
func (b *otlpBatch) commitPoint(t int64, delta, stale bool) {
	fresh := 0
	for _, s := range b.series {
		if _, ok := b.last(s.hash); !ok {
			fresh++
		}
	}
	if fresh > 0 && len(b.a.series)+b.added+fresh > b.limit {
		b.rejectedSeries += uint64(fresh)
		b.rejected++
		return
	}
	failed := false
	for _, s := range b.series {
		last, known := b.last(s.hash)
		v := s.v
		switch {
		case stale:
			if !known {
				continue
			}
			v = math.Float64frombits(value.StaleNaN)
		case delta:
			v += last
		case value.IsStaleNaN(v):
			v = math.NaN() // staleness is the TSDB's marker, not an app's value
		}
		if _, err := b.ap.Append(0, s.ls, 0, t, v, nil, nil, storage.AOptions{Exemplars: s.ex}); err != nil && !isPartial(err) {
			failed = true
			continue
		}
		if stale {
			continue
		}
		if _, ok := b.pending[s.hash]; !ok {
			if _, ok := b.a.series[s.hash]; !ok {
				b.added++
			}
		}
		b.pending[s.hash] = v
	}
	if failed {
		b.rejected++
	} else {
		b.accepted++
	}
}
