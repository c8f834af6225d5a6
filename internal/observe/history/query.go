package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"

	"noops/internal/errkind"
)

// Bounds of a query, besides Options.QueryTimeout and MaxSamples.
const (
	maxExprLen     = 16 << 10 // bytes of PromQL
	maxRangePoints = 11_000   // steps of a range query, as Prometheus' API allows
)

// querier evaluates PromQL over the TSDB.
type querier struct {
	engine *promql.Engine
	parser parser.Parser
}

func newQuerier(opt Options) querier {
	return querier{
		engine: promql.NewEngine(promql.EngineOpts{
			Logger:               opt.Logger.With("component", "promql"),
			MaxSamples:           opt.MaxSamples,
			Timeout:              opt.QueryTimeout,
			LookbackDelta:        max(5*time.Minute, 3*opt.Interval),
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
		}),
		parser: parser.NewParser(parser.Options{}),
	}
}

func (q querier) close() { _ = q.engine.Close() }

// queryContext returns ctx, cut short by Stop as well.
func (db *DB) queryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(db.stopping, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

func checkExpr(expr string) error {
	if expr == "" {
		return errkind.Errorf(errkind.Invalid, "empty query")
	}
	if len(expr) > maxExprLen {
		return errkind.Errorf(errkind.Invalid, "query of %d bytes is longer than %d", len(expr), maxExprLen)
	}
	return nil
}

// Query evaluates expr at t. A scalar result comes back as one sample
// without labels; a string or range-vector result is refused.
func (db *DB) Query(ctx context.Context, expr string, t time.Time) (promql.Vector, error) {
	if err := checkExpr(expr); err != nil {
		return nil, err
	}
	ctx, cancel := db.queryContext(ctx)
	defer cancel()
	var out promql.Vector
	err := db.use(func(s *tsdb.DB) error {
		qry, err := db.query.engine.NewInstantQuery(ctx, s, nil, expr, t)
		if err != nil {
			return queryErr(expr, err)
		}
		defer qry.Close()
		res := qry.Exec(ctx)
		if res.Err != nil {
			return queryErr(expr, res.Err)
		}
		switch v := res.Value.(type) {
		case promql.Vector:
			out = copyVector(v)
		case promql.Scalar:
			out = promql.Vector{{T: v.T, F: v.V}}
		default:
			return errkind.Errorf(errkind.Invalid, "query %q: result is a %s, not an instant vector", expr, res.Value.Type())
		}
		return nil
	})
	return out, err
}

// QueryRange evaluates expr at every step from start to end.
func (db *DB) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) (promql.Matrix, error) {
	if err := checkExpr(expr); err != nil {
		return nil, err
	}
	if step <= 0 || end.Before(start) {
		return nil, errkind.Errorf(errkind.Invalid, "range query %q: step must be positive and end not before start", expr)
	}
	if n := end.Sub(start) / step; n >= maxRangePoints {
		return nil, errkind.Errorf(errkind.Invalid, "range query %q: %d steps, more than %d; use a larger step", expr, n+1, maxRangePoints)
	}
	ctx, cancel := db.queryContext(ctx)
	defer cancel()
	var out promql.Matrix
	err := db.use(func(s *tsdb.DB) error {
		qry, err := db.query.engine.NewRangeQuery(ctx, s, nil, expr, start, end, step)
		if err != nil {
			return queryErr(expr, err)
		}
		defer qry.Close()
		res := qry.Exec(ctx)
		if res.Err != nil {
			return queryErr(expr, res.Err)
		}
		m, ok := res.Value.(promql.Matrix)
		if !ok {
			return errkind.Errorf(errkind.Invalid, "range query %q: result is a %s", expr, res.Value.Type())
		}
		out = copyMatrix(m)
		return nil
	})
	return out, err
}

// Exemplars returns the exemplars between start and end of the series
// that expr selects (every selector in it), such as the trace IDs behind
// the spikes of a chart of expr.
func (db *DB) Exemplars(ctx context.Context, expr string, start, end time.Time) ([]exemplar.QueryResult, error) {
	if err := checkExpr(expr); err != nil {
		return nil, err
	}
	if end.Before(start) {
		return nil, errkind.Errorf(errkind.Invalid, "exemplars of %q: end before start", expr)
	}
	e, err := db.query.parser.ParseExpr(expr)
	if err != nil {
		return nil, errkind.E(errkind.Invalid, fmt.Errorf("parsing query %q: %w", expr, err))
	}
	sel := parser.ExtractSelectors(e)
	if len(sel) == 0 {
		return nil, nil
	}
	var out []exemplar.QueryResult
	err = db.use(func(s *tsdb.DB) error {
		eq, err := s.ExemplarQuerier(ctx)
		if err != nil {
			return fmt.Errorf("querying exemplars: %w", err)
		}
		out, err = eq.Select(start.UnixMilli(), end.UnixMilli(), sel...)
		if err != nil {
			return fmt.Errorf("querying exemplars of %q: %w", expr, err)
		}
		return nil
	})
	return out, err
}

// queryErr classifies a PromQL error: running out of time is a limit
// that a retry may clear, a storage failure is internal, anything else
// (a bad expression, too many samples, clashing label sets) is the
// query's fault.
func queryErr(expr string, err error) error {
	var (
		timeout promql.ErrQueryTimeout
		cancel  promql.ErrQueryCanceled
		storage promql.ErrStorage
	)
	err = fmt.Errorf("evaluating query %q: %w", expr, err)
	switch {
	case errors.As(err, &timeout), errors.As(err, &cancel),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errkind.E(errkind.Unavailable, err)
	case errors.As(err, &storage):
		return err
	}
	return errkind.E(errkind.Invalid, err)
}

// copyVector and copyMatrix detach a result from the engine's pools,
// which Close recycles.
func copyVector(v promql.Vector) promql.Vector {
	out := make(promql.Vector, len(v))
	for i, s := range v {
		if s.H != nil {
			s.H = s.H.Copy()
		}
		out[i] = s
	}
	return out
}

func copyMatrix(m promql.Matrix) promql.Matrix {
	out := make(promql.Matrix, len(m))
	for i, s := range m {
		s.Floats = slices.Clone(s.Floats)
		s.Histograms = slices.Clone(s.Histograms)
		for j := range s.Histograms {
			s.Histograms[j].H = s.Histograms[j].H.Copy()
		}
		out[i] = s
	}
	return out
}
