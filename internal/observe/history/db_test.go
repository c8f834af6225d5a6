package history

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"noops/internal/errkind"
)

func TestScrapeTypes(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total", Help: "h"}, []string{"job"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "temperature_celsius", Help: "h"})
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "latency_seconds", Help: "h", Objectives: map[float64]float64{0.5: 0.01}})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "size_bytes", Help: "h", Buckets: []float64{1, 10}})
	u := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "legacy", Help: "h"}, func() float64 { return 7 })
	reg.MustRegister(c, g, s, h, u)
	c.WithLabelValues("build").Add(3)
	g.Set(-4.5)
	for _, v := range []float64{1, 2, 3} {
		s.Observe(v)
	}
	h.Observe(0.5)
	h.Observe(5)
	h.Observe(50)

	db := openDB(t, t.TempDir(), reg, Options{})
	scrapeAt(t, db, t0)
	for _, c := range []struct {
		expr string
		want float64
	}{
		{`jobs_total{job="noops",exported_job="build"}`, 3},
		{`temperature_celsius{job="noops"}`, -4.5},
		{`latency_seconds{quantile="0.5"}`, 2},
		{`latency_seconds_sum`, 6},
		{`latency_seconds_count`, 3},
		{`size_bytes_bucket{le="1.0"}`, 1},
		{`size_bytes_bucket{le="10.0"}`, 2},
		{`size_bytes_bucket{le="+Inf"}`, 3},
		{`size_bytes_sum`, 55.5},
		{`size_bytes_count`, 3},
		{`legacy`, 7},
		{`histogram_quantile(0.5, size_bytes_bucket)`, 5.5},
	} {
		if got := valueAt(t, db, c.expr, t0); !near(got, c.want) {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	// A scrape at the same time again changes nothing it should not: the
	// same values are accepted, a new value at the same time is refused.
	g.Set(1)
	err := db.Scrape(context.Background(), t0)
	if err == nil || !strings.Contains(err.Error(), "1 of 11 samples refused") {
		t.Errorf("Scrape at the same time with a changed value = %v, want 1 of 11 samples refused", err)
	}
}

type failingGatherer struct{}

func (failingGatherer) Gather() ([]*dto.MetricFamily, error) {
	return []*dto.MetricFamily{{
		Name: proto.String("half"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}},
	}}, errors.New("a collector failed")
}

func TestScrapeKeepsWhatWasGathered(t *testing.T) {
	t.Parallel()
	db := openDB(t, t.TempDir(), failingGatherer{}, Options{})
	if err := db.Scrape(context.Background(), t0); err == nil || !strings.Contains(err.Error(), "a collector failed") {
		t.Errorf("Scrape = %v, want the gatherer's error", err)
	}
	if got := valueAt(t, db, "half", t0); got != 1 {
		t.Errorf("half = %v, want the sample gathered despite the error", got)
	}
}

func TestReopenKeepsHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPlatform()
	db := openDB(t, dir, p.reg, Options{Interval: interval})
	slow := traffic(t, db, p, 0, 21)
	now := t0.Add(5 * time.Minute)
	before, err := db.Summary(context.Background(), "shop", 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Query(context.Background(), "1", now); !errkind.Is(err, errkind.Unavailable) {
		t.Errorf("Query after Stop = %v, want unavailable", err)
	}
	if _, _, err := db.AppendOTLP("shop", request("x"), now); err == nil {
		t.Error("AppendOTLP after Stop: no error")
	}

	db = openDB(t, dir, p.reg, Options{Interval: interval})
	after, err := db.Summary(context.Background(), "shop", 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if after.Requests != before.Requests || after.P95 != before.P95 || after.Requests == 0 {
		t.Errorf("after reopening, Summary = %+v, want %+v", after, before)
	}
	if _, ok := slow[after.Exemplar]; !ok {
		t.Errorf("after reopening, the exemplar %q is not a slow request's (exemplars replayed from the WAL)", after.Exemplar)
	}
	// And it goes on.
	traffic(t, db, p, 21, 25)
	if st := db.Stats(); !st.MaxTime.Equal(t0.Add(24*interval)) || !st.MinTime.Equal(t0) || st.Series == 0 || st.DiskBytes == 0 {
		t.Errorf("Stats = %+v, want samples from t0 to 6m", st)
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ticks_total", Help: "h"})
	reg.MustRegister(c)
	opt := Options{Retention: 2 * time.Hour, BlockDuration: 30 * time.Minute, Interval: 5 * time.Minute}
	db := openDB(t, dir, reg, opt)
	const hours = 8
	for i := range hours * 12 {
		c.Inc()
		scrapeAt(t, db, t0.Add(time.Duration(i)*opt.Interval))
	}
	end := t0.Add(hours*time.Hour - opt.Interval)
	if err := db.tsdb.Compact(context.Background()); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	check := func(when string) {
		t.Helper()
		st := db.Stats()
		if st.Blocks == 0 {
			t.Errorf("%s: no blocks written", when)
		}
		if oldest := end.Add(-opt.Retention - 2*opt.BlockDuration); st.MinTime.Before(oldest) {
			t.Errorf("%s: oldest sample at %v, want none before %v", when, st.MinTime.UTC(), oldest.UTC())
		}
		if n := count(t, db, "ticks_total", t0.Add(time.Hour)); n != 0 {
			t.Errorf("%s: a sample from 7h before the end is still returned", when)
		}
		if got := valueAt(t, db, "ticks_total", end); got != hours*12 {
			t.Errorf("%s: ticks_total at the end = %v, want %d", when, got, hours*12)
		}
		if got := valueAt(t, db, "increase(ticks_total[1h])", end); !near(got, 12) {
			t.Errorf("%s: increase over the last hour = %v, want 12", when, got)
		}
	}
	check("after compaction")
	if err := db.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir, reg, opt)
	check("after reopening")
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	p := newPlatform()
	p.memory.WithLabelValues("shop", "a").Set(42)
	db := openDB(t, t.TempDir(), p.reg, Options{Interval: 5 * time.Millisecond})
	if err := db.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Start(context.Background()); err == nil {
		t.Error("a second Start: no error")
	}
	deadline := time.Now().Add(5 * time.Second)
	for db.Stats().MaxTime.IsZero() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the loop's own clock is real
	}
	if got := valueAt(t, db, "noops_sandbox_memory_bytes", time.Now()); got != 42 {
		t.Errorf("after the scrape loop ran, noops_sandbox_memory_bytes = %v, want 42", got)
	}
	if err := db.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Stop(context.Background()); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
	if err := db.Start(context.Background()); err == nil {
		t.Error("Start after Stop: no error")
	}
	if st := db.Stats(); st.Series != 0 || st.DiskBytes == 0 {
		t.Errorf("Stats after Stop = %+v, want the disk only", st)
	}
}

func TestOpenOptions(t *testing.T) {
	t.Parallel()
	if _, err := Open(t.TempDir(), nil, Options{Retention: -1}); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Open with a negative retention = %v, want invalid", err)
	}
	db := openDB(t, t.TempDir(), nil, Options{})
	if o := db.opt; o.Retention != DefaultRetention || o.MaxBytes != DefaultMaxBytes || o.Interval != DefaultInterval || o.SeriesPerApp != DefaultSeriesPerApp {
		t.Errorf("defaults = %+v", o)
	}
	if got := db.opt.maxBlockDuration(); got != 36*time.Hour {
		t.Errorf("max block duration for 15 days = %v, want 36h", got)
	}
	if err := db.Start(context.Background()); err == nil {
		t.Error("Start without a registry: no error")
	}
}
