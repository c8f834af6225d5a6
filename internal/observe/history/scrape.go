package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// scrapeState is what one scrape leaves for the next.
type scrapeState struct {
	mu        sync.Mutex // serializes scrapes
	scraped   bool
	last      int64                  // time of the previous scrape, ms
	exemplars map[uint64]exemplarKey // the exemplar each series carried, by label hash
}

// exemplarKey identifies an exemplar as the registry gave it, to append it
// once and not again at every scrape.
type exemplarKey struct {
	value  uint64 // bits of the value
	ts     int64  // its own timestamp, or 0
	labels uint64 // hash of its labels
}

// Scrape gathers the platform registry once and appends its samples at t,
// as Prometheus' scraper would with the job label PlatformJob (a job label
// of the registry's own becomes exported_job): counters, gauges and
// untyped metrics as one series each, summaries as {quantile} series plus
// _sum and _count, histograms (classic buckets only) as _bucket{le}
// series (with le="+Inf"), _sum and _count. A sample's own timestamp is
// kept. An exemplar is appended when it changed since the previous scrape,
// at its own timestamp when that lies after the previous scrape and not
// after t, otherwise at t.
//
// Samples the TSDB refuses (such as those of a t not after the previous
// scrape's) are skipped and reported in the error; the rest are kept.
func (db *DB) Scrape(ctx context.Context, t time.Time) error {
	if db.g == nil {
		return errors.New("scraping platform metrics: no registry")
	}
	mfs, gerr := db.g.Gather()
	if gerr != nil {
		gerr = fmt.Errorf("gathering platform metrics: %w", gerr)
	}
	err := db.use(func(s *tsdb.DB) error {
		st := &db.scrape
		st.mu.Lock()
		defer st.mu.Unlock()
		sc := scraper{
			app:    s.AppenderV2(ctx),
			t:      t.UnixMilli(),
			prev:   math.MinInt64,
			prevEx: st.exemplars,
			seen:   make(map[uint64]exemplarKey, len(st.exemplars)),
			lb:     labels.NewBuilder(labels.EmptyLabels()),
			sb:     labels.NewScratchBuilder(8),
		}
		if st.scraped {
			sc.prev = st.last
		}
		for _, mf := range mfs {
			sc.family(mf)
		}
		if err := sc.app.Commit(); err != nil {
			return fmt.Errorf("committing scraped platform metrics: %w", err)
		}
		st.scraped, st.last, st.exemplars = true, sc.t, sc.seen
		if sc.failed > 0 {
			return fmt.Errorf("scraping platform metrics: %d of %d samples refused: %w", sc.failed, sc.total, sc.first)
		}
		return nil
	})
	return errors.Join(gerr, err)
}

type scraper struct {
	app    storage.AppenderV2
	t      int64 // ms
	prev   int64 // the previous scrape's t, or MinInt64
	prevEx map[uint64]exemplarKey
	seen   map[uint64]exemplarKey
	lb     *labels.Builder
	sb     labels.ScratchBuilder

	total, failed int
	first         error
}

func (s *scraper) family(mf *dto.MetricFamily) {
	name := mf.GetName()
	if name == "" {
		return
	}
	for _, m := range mf.GetMetric() {
		base := s.base(m)
		t := s.t
		if m.TimestampMs != nil {
			t = m.GetTimestampMs()
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			s.add(base, name, "", "", t, m.GetCounter().GetValue(), m.GetCounter().GetExemplar())
		case dto.MetricType_GAUGE:
			s.add(base, name, "", "", t, m.GetGauge().GetValue(), nil)
		case dto.MetricType_UNTYPED:
			s.add(base, name, "", "", t, m.GetUntyped().GetValue(), nil)
		case dto.MetricType_SUMMARY:
			sm := m.GetSummary()
			for _, q := range sm.GetQuantile() {
				s.add(base, name, quantileLabel, labels.FormatOpenMetricsFloat(q.GetQuantile()), t, q.GetValue(), nil)
			}
			s.add(base, name+"_sum", "", "", t, sm.GetSampleSum(), nil)
			s.add(base, name+"_count", "", "", t, float64(sm.GetSampleCount()), nil)
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			s.histogram(base, name, t, m.GetHistogram())
		}
	}
}

func (s *scraper) histogram(base labels.Labels, name string, t int64, h *dto.Histogram) {
	count := float64(h.GetSampleCount())
	if h.SampleCountFloat != nil {
		count = h.GetSampleCountFloat()
	}
	inf := false
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			c = b.GetCumulativeCountFloat()
		}
		le := b.GetUpperBound()
		inf = inf || math.IsInf(le, 1)
		s.add(base, name+"_bucket", labels.BucketLabel, labels.FormatOpenMetricsFloat(le), t, c, b.GetExemplar())
	}
	if !inf {
		s.add(base, name+"_bucket", labels.BucketLabel, "+Inf", t, count, nil)
	}
	s.add(base, name+"_sum", "", "", t, h.GetSampleSum(), nil)
	s.add(base, name+"_count", "", "", t, count, nil)
}

// base returns m's labels with the job label.
func (s *scraper) base(m *dto.Metric) labels.Labels {
	s.sb.Reset()
	for _, lp := range m.GetLabel() {
		n, v := lp.GetName(), lp.GetValue()
		switch {
		case v == "" || n == labels.MetricName:
			continue
		case n == "job":
			n = "exported_job"
		}
		s.sb.Add(n, v)
	}
	s.sb.Add("job", PlatformJob)
	s.sb.Sort()
	return s.sb.Labels()
}

func (s *scraper) add(base labels.Labels, name, extra, extraValue string, t int64, v float64, ex *dto.Exemplar) {
	s.lb.Reset(base)
	s.lb.Set(labels.MetricName, name)
	if extra != "" {
		s.lb.Set(extra, extraValue)
	}
	ls := s.lb.Labels()
	if value.IsStaleNaN(v) {
		v = math.NaN() // staleness is the TSDB's marker, not a registry's value
	}
	var opts storage.AOptions
	if ex != nil {
		if e, ok := s.exemplar(ls.Hash(), ex); ok {
			opts.Exemplars = []exemplar.Exemplar{e}
		}
	}
	s.total++
	if _, err := s.app.Append(0, ls, 0, t, v, nil, nil, opts); err != nil && !isPartial(err) {
		s.failed++
		if s.first == nil {
			s.first = fmt.Errorf("appending %s: %w", ls, err)
		}
	}
}

// exemplar converts ex, the exemplar of the series with label hash h, and
// reports whether it is new since the previous scrape.
func (s *scraper) exemplar(h uint64, ex *dto.Exemplar) (exemplar.Exemplar, bool) {
	s.sb.Reset()
	for _, lp := range ex.GetLabel() {
		if lp.GetValue() != "" {
			s.sb.Add(lp.GetName(), lp.GetValue())
		}
	}
	s.sb.Sort()
	ls := s.sb.Labels()
	var own int64
	if ts := ex.GetTimestamp(); ts != nil && ts.IsValid() {
		own = ts.AsTime().UnixMilli()
	}
	key := exemplarKey{value: math.Float64bits(ex.GetValue()), ts: own, labels: ls.Hash()}
	s.seen[h] = key
	if old, ok := s.prevEx[h]; ok && old == key {
		return exemplar.Exemplar{}, false
	}
	ts := own
	if own == 0 || own <= s.prev || own > s.t {
		ts = s.t
	}
	return exemplar.Exemplar{Labels: ls, Value: ex.GetValue(), Ts: ts, HasTs: true}, true
}

// isPartial reports whether err only says that exemplars were refused: the
// sample itself was appended.
func isPartial(err error) bool {
	var pe *storage.AppendPartialError
	return errors.As(err, &pe)
}

const quantileLabel = "quantile"
