package history

import (
	"context"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"

	"noops/internal/errkind"
)

// The gateway's and the supervisor's metrics that Summary and Points read
// (internal/observe/metrics).
const (
	requestMetric = "http_server_request_duration_seconds"
	cpuMetric     = "noops_sandbox_cpu_seconds_total"
	memoryMetric  = "noops_sandbox_memory_bytes"
	pidsMetric    = "noops_sandbox_pids"
	// errorStatus matches the statuses that count as errors: 5xx, and 0
	// (the client left before an answer).
	errorStatus = `5..|0`
)

// Summary is an app's traffic and resource use over a window, as
// `noops metrics APP` prints it.
type Summary struct {
	Window     time.Duration // the range the rates are computed over
	Requests   float64       // requests answered in the window
	Rate       float64       // requests per second
	Errors     float64       // requests answered 5xx or left unanswered (status 0)
	ErrorRatio float64       // Errors / Requests, 0 without requests
	P50        time.Duration // request duration percentiles, interpolated within histogram buckets
	P95        time.Duration
	P99        time.Duration
	CPU        float64 // cores, on average over the window, all sandboxes
	Memory     float64 // bytes, now, all sandboxes
	Pids       float64 // processes and threads, now, all sandboxes
	Exemplar   string  // the trace ID of the slowest request with an exemplar in the window, if any
}

// Point is one step of a sparkline.
type Point struct {
	Time       time.Time
	Rate       float64 // requests per second
	ErrorRatio float64
	P95        time.Duration
}

// rangeFor returns the range a rate is computed over for a window: the
// window, but at least two scrape intervals so that it holds two samples.
func (db *DB) rangeFor(window time.Duration) time.Duration {
	return max(window, 2*db.opt.Interval).Round(time.Millisecond)
}

func selector(metric, app string, extra ...string) string {
	s := fmt.Sprintf("%s{job=%q,app=%q", metric, PlatformJob, app)
	for i := 0; i+1 < len(extra); i += 2 {
		s += fmt.Sprintf(",%s=~%q", extra[i], extra[i+1])
	}
	return s + "}"
}

func checkApp(app string) error {
	if app == "" || len(app) > maxLabelValueLen || !utf8.ValidString(app) {
		return errkind.Errorf(errkind.Invalid, "invalid app name")
	}
	return nil
}

// Summary computes app's summary over the window that ends at now, with
// PromQL over the history: increase of the request histogram's _count
// (all, and 5xx or 0), histogram_quantile over the rate of its buckets by
// le, the rate of the sandboxes' CPU seconds and the sum of their memory
// and pids gauges. The range is the window, but at least two scrape
// intervals (Summary.Window says which).
func (db *DB) Summary(ctx context.Context, app string, window time.Duration, now time.Time) (Summary, error) {
	if err := checkApp(app); err != nil {
		return Summary{}, err
	}
	if window <= 0 {
		return Summary{}, errkind.Errorf(errkind.Invalid, "summary of %q: window must be positive", app)
	}
	rng := db.rangeFor(window)
	r := model.Duration(rng).String()
	sum := Summary{Window: rng}
	scalars := []struct {
		dst  *float64
		expr string
	}{
		{&sum.Requests, fmt.Sprintf("sum(increase(%s[%s]))", selector(requestMetric+"_count", app), r)},
		{&sum.Errors, fmt.Sprintf("sum(increase(%s[%s]))", selector(requestMetric+"_count", app, "http_response_status_code", errorStatus), r)},
		{&sum.CPU, fmt.Sprintf("sum(rate(%s[%s]))", selector(cpuMetric, app), r)},
		{&sum.Memory, fmt.Sprintf("sum(%s)", selector(memoryMetric, app))},
		{&sum.Pids, fmt.Sprintf("sum(%s)", selector(pidsMetric, app))},
	}
	for _, s := range scalars {
		v, err := db.Query(ctx, s.expr, now)
		if err != nil {
			return Summary{}, fmt.Errorf("summarizing app %q: %w", app, err)
		}
		*s.dst = first(v)
	}
	for _, q := range []struct {
		dst *time.Duration
		q   float64
	}{{&sum.P50, 0.5}, {&sum.P95, 0.95}, {&sum.P99, 0.99}} {
		v, err := db.Query(ctx, quantileExpr(q.q, app, r), now)
		if err != nil {
			return Summary{}, fmt.Errorf("summarizing app %q: %w", app, err)
		}
		*q.dst = seconds(first(v))
	}
	sum.Rate = sum.Requests / rng.Seconds()
	if sum.Requests > 0 {
		sum.ErrorRatio = sum.Errors / sum.Requests
	}
	ex, err := db.slowest(ctx, app, now.Add(-rng+time.Millisecond), now) // (now-rng, now], as a range selector
	if err != nil {
		return Summary{}, fmt.Errorf("summarizing app %q: %w", app, err)
	}
	sum.Exemplar = ex
	return sum, nil
}

func quantileExpr(q float64, app, r string) string {
	return fmt.Sprintf("histogram_quantile(%g, sum by (le) (rate(%s[%s])))", q, selector(requestMetric+"_bucket", app), r)
}

// slowest returns the trace ID of the request exemplar with the highest
// duration between start and end.
func (db *DB) slowest(ctx context.Context, app string, start, end time.Time) (string, error) {
	res, err := db.Exemplars(ctx, selector(requestMetric+"_bucket", app), start, end)
	if err != nil {
		return "", err
	}
	best, id := math.Inf(-1), ""
	for _, r := range res {
		for _, e := range r.Exemplars {
			if tid := e.Labels.Get("trace_id"); tid != "" && e.Value > best {
				best, id = e.Value, tid
			}
		}
	}
	return id, nil
}

// Points returns app's request rate, error ratio and p95 at every step
// over the window that ends at now, oldest first: window/step+1 points,
// each computed over the step (at least two scrape intervals) before it.
// A step without requests has zeros.
func (db *DB) Points(ctx context.Context, app string, window, step time.Duration, now time.Time) ([]Point, error) {
	if err := checkApp(app); err != nil {
		return nil, err
	}
	if window <= 0 || step <= 0 || window < step {
		return nil, errkind.Errorf(errkind.Invalid, "points of %q: window and step must be positive, the step not longer than the window", app)
	}
	if window/step >= maxRangePoints {
		return nil, errkind.Errorf(errkind.Invalid, "points of %q: more than %d steps; use a larger step", app, maxRangePoints)
	}
	r := model.Duration(db.rangeFor(step)).String()
	start := now.Add(-window)
	exprs := []string{
		fmt.Sprintf("sum(rate(%s[%s]))", selector(requestMetric+"_count", app), r),
		fmt.Sprintf("sum(rate(%s[%s]))", selector(requestMetric+"_count", app, "http_response_status_code", errorStatus), r),
		quantileExpr(0.95, app, r),
	}
	var cols [3]map[int64]float64
	for i, e := range exprs {
		m, err := db.QueryRange(ctx, e, start, now, step)
		if err != nil {
			return nil, fmt.Errorf("charting app %q: %w", app, err)
		}
		cols[i] = map[int64]float64{}
		if len(m) > 0 {
			for _, p := range m[0].Floats {
				cols[i][p.T] = p.F
			}
		}
	}
	var out []Point
	for t := start; !t.After(now); t = t.Add(step) {
		ms := t.UnixMilli()
		p := Point{Time: t, Rate: finite(cols[0][ms]), P95: seconds(cols[2][ms])}
		if p.Rate > 0 {
			p.ErrorRatio = finite(cols[1][ms]) / p.Rate
		}
		out = append(out, p)
	}
	return out, nil
}

// first returns the value of a one-sample vector, 0 when it is empty or
// not a finite number.
func first(v promql.Vector) float64 {
	if len(v) == 0 {
		return 0
	}
	return finite(v[0].F)
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func seconds(f float64) time.Duration {
	f = finite(f)
	if f*1e9 >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f * float64(time.Second))
}
