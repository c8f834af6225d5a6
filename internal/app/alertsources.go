package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"noops/internal/observe/alert"
	"noops/internal/observe/anomaly"
	"noops/internal/observe/logstore"
	"noops/internal/observe/monitor"
)

// metricSource evaluates PromQL over the metric history: one sample per
// series of the result.
type metricSource struct{ a *App }

func (s metricSource) Eval(ctx context.Context, r alert.Rule, now time.Time) ([]alert.Sample, error) {
	vec, err := s.a.history.Query(ctx, r.Expr, now)
	if err != nil {
		return nil, err
	}
	out := make([]alert.Sample, 0, len(vec))
	for _, smp := range vec {
		ls := map[string]string{}
		smp.Metric.Range(func(l labels.Label) { ls[l.Name] = l.Value })
		delete(ls, "__name__")
		out = append(out, alert.Sample{Labels: ls, Value: smp.F})
	}
	return out, nil
}

// maxLogCount bounds how many matching lines a log rule counts.
const maxLogCount = 100000

// logStreams are the lines a log rule counts: what the app says, not the
// access log (whose paths a client chooses).
var logStreams = []string{"stdout", "stderr", "otlp", "platform"}

// logSource counts an app's log lines that match the rule's pattern over
// its window.
type logSource struct{ a *App }

func (s logSource) Eval(ctx context.Context, r alert.Rule, now time.Time) ([]alert.Sample, error) {
	q := logstore.Query{App: r.App, Streams: logStreams, From: now.Add(-r.Window), To: now.Add(time.Second), Limit: maxLogCount}
	if len(r.Expr) > 2 && strings.HasPrefix(r.Expr, "/") && strings.HasSuffix(r.Expr, "/") {
		re, err := regexp.Compile(r.Expr[1 : len(r.Expr)-1])
		if err != nil {
			return nil, err
		}
		q.Regexp = re
	} else {
		q.Grep = r.Expr
	}
	n := 0
	if err := s.a.logs.Query(ctx, q, func(logstore.Record) error { n++; return nil }); err != nil {
		return nil, err
	}
	return []alert.Sample{{Labels: map[string]string{}, Value: float64(n)}}, nil
}

// monitorSource is 1 for each of the rule's monitors that is down or
// flapping, 0 for the others (pending ones are left out).
type monitorSource struct{ a *App }

func (s monitorSource) Eval(_ context.Context, r alert.Rule, _ time.Time) ([]alert.Sample, error) {
	runner := s.a.watch.runnerOf()
	if runner == nil {
		return nil, errors.New("the monitors are not running")
	}
	var out []alert.Sample
	for _, st := range runner.List() {
		if r.Expr == "*" && st.Spec.App != r.App && r.App != "" || r.Expr != "*" && st.Spec.Name != r.Expr {
			continue
		}
		if st.State == monitor.Pending {
			continue
		}
		v := 0.0
		if st.State == monitor.Down || st.State == monitor.Flapping {
			v = 1
		}
		out = append(out, alert.Sample{Labels: map[string]string{"monitor": st.Spec.Name, "state": string(st.State)}, Value: v})
	}
	return out, nil
}

// anomalyBucket is the width of the anomaly detectors' observations.
const anomalyBucket = 5 * time.Minute

// anomalySource feeds each watched app series (request rate, error ratio,
// p95 latency) to a robust seasonal detector once per bucket and is 1
// while the detector fires. The detectors' state is kept in a file so
// that a restart does not forget weeks of baseline.
type anomalySource struct {
	a    *App
	path string

	mu   sync.Mutex
	set  *anomaly.Set
	fed  map[string]time.Time // series → the bucket last fed
	last map[string]anomaly.Verdict
}

func newAnomalySource(a *App) *anomalySource {
	s := &anomalySource{a: a, path: a.path("telemetry", "anomaly.json"), set: anomaly.NewSet(1000), fed: map[string]time.Time{},
		last: map[string]anomaly.Verdict{}}
	if b, err := os.ReadFile(s.path); err == nil {
		if err := json.Unmarshal(b, s.set); err != nil {
			a.log.Warn("the anomaly baselines could not be read; starting afresh", "err", err)
			s.set = anomaly.NewSet(1000)
		}
	}
	return s
}

// anomalyQueries are the PromQL of each series over one bucket.
var anomalyQueries = map[string]string{
	"rate":    `sum(rate(http_server_request_duration_seconds_count{app=%q}[5m]))`,
	"errors":  `sum(rate(http_server_request_duration_seconds_count{app=%q,http_response_status_code=~"5..|0"}[5m])) / sum(rate(http_server_request_duration_seconds_count{app=%q}[5m]))`,
	"latency": `histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket{app=%q}[5m])))`,
	"count":   `sum(increase(http_server_request_duration_seconds_count{app=%q}[5m]))`,
}

func anomalyConfig(series string) anomaly.Config {
	switch series {
	case "errors":
		return anomaly.ErrorRatio()
	case "latency":
		return anomaly.Latency()
	}
	return anomaly.RequestRate()
}

func (s *anomalySource) Eval(ctx context.Context, r alert.Rule, now time.Time) ([]alert.Sample, error) {
	q, ok := anomalyQueries[r.Expr]
	if !ok || r.Expr == "count" {
		return nil, fmt.Errorf("no anomaly series %q", r.Expr)
	}
	key := r.App + "/" + r.Expr
	end := now.Truncate(anomalyBucket)
	s.mu.Lock()
	fed := s.fed[key]
	s.mu.Unlock()
	if end.After(fed) {
		v, err := s.value(ctx, r.App, r.Expr, q, end)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		verdict := s.set.Observe(key, anomalyConfig(r.Expr), end.Add(-anomalyBucket), v)
		s.fed[key], s.last[key] = end, verdict
		b, merr := json.Marshal(s.set)
		s.mu.Unlock()
		if merr == nil {
			if err := writeFileAtomic(s.path, b); err != nil {
				s.a.log.Warn("saving the anomaly baselines", "err", err)
			}
		}
	}
	s.mu.Lock()
	v, ok := s.last[key]
	s.mu.Unlock()
	if !ok {
		return nil, nil
	}
	val := 0.0
	if v.Firing {
		val = 1
	}
	return []alert.Sample{{Labels: map[string]string{"series": r.Expr, "score": strconv.FormatFloat(round2(v.Score), 'f', -1, 64),
		"expected": strconv.FormatFloat(round2(v.Expected), 'g', 4, 64)}, Value: val}}, nil
}

// value reads one bucket of a series; an error ratio over fewer than 20
// requests is NaN (noise, which the detector ignores).
func (s *anomalySource) value(ctx context.Context, app, series, q string, end time.Time) (float64, error) {
	expr := fmt.Sprintf(q, app)
	if series == "errors" {
		expr = fmt.Sprintf(q, app, app)
		n, err := s.scalar(ctx, fmt.Sprintf(anomalyQueries["count"], app), end)
		if err != nil {
			return 0, err
		}
		if n < 20 {
			return math.NaN(), nil
		}
	}
	return s.scalar(ctx, expr, end)
}

func (s *anomalySource) scalar(ctx context.Context, expr string, at time.Time) (float64, error) {
	vec, err := s.a.history.Query(ctx, expr, at)
	if err != nil {
		return 0, err
	}
	if len(vec) == 0 {
		return 0, nil // no requests at all in the bucket
	}
	return vec[0].F, nil
}

func round2(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*100) / 100
}

// writeFileAtomic replaces path with b (temporary file, fsync, rename).
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
