package history

import (
	"context"
	"fmt"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

// appSeries are one app's OTLP series in the TSDB's head, by label hash,
// to hold the app to Options.SeriesPerApp. The set is read back from the
// head after every head truncation (and at the app's first append after
// Open), so that series the head dropped stop counting and series
// replayed from the write-ahead log count again.
type appSeries struct {
	mu      sync.Mutex // held for a whole AppendOTLP of the app
	synced  bool
	headMin int64              // the head's MinTime when the set was read from it
	series  map[uint64]float64 // label hash → last value appended (a delta series' running total)

	rejectedSeries, rejectedPoints uint64
}

func (db *DB) appSeriesFor(app string) *appSeries {
	db.appsMu.Lock()
	defer db.appsMu.Unlock()
	a := db.apps[app]
	if a == nil {
		a = &appSeries{series: map[uint64]float64{}}
		db.apps[app] = a
	}
	return a
}

// Forget drops what the history keeps in memory about app (it was
// deleted). Its series stay until retention removes them.
func (db *DB) Forget(app string) {
	db.appsMu.Lock()
	defer db.appsMu.Unlock()
	delete(db.apps, app)
}

// sync reads the app's series from the head if it was truncated since the
// last read. The caller holds a.mu.
func (a *appSeries) sync(ctx context.Context, t *tsdb.DB, app string) error {
	h := t.Head()
	headMin := h.MinTime()
	if a.synced && headMin == a.headMin {
		return nil
	}
	ix, err := h.Index()
	if err != nil {
		return fmt.Errorf("reading the series of app %q: %w", app, err)
	}
	defer ix.Close()
	p, err := tsdb.PostingsForMatchers(ctx, ix,
		labels.MustNewMatcher(labels.MatchEqual, "app", app),
		labels.MustNewMatcher(labels.MatchNotEqual, "job", PlatformJob))
	if err != nil {
		return fmt.Errorf("reading the series of app %q: %w", app, err)
	}
	next := make(map[uint64]float64, len(a.series))
	var b labels.ScratchBuilder
	for p.Next() {
		if err := ix.Series(p.At(), &b, nil); err != nil {
			continue // garbage-collected meanwhile
		}
		hash := b.Labels().Hash()
		next[hash] = a.series[hash]
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("reading the series of app %q: %w", app, err)
	}
	a.series, a.headMin, a.synced = next, headMin, true
	return nil
}

func (db *DB) appStats() map[string]AppStats {
	db.appsMu.Lock()
	apps := make(map[string]*appSeries, len(db.apps))
	for k, v := range db.apps {
		apps[k] = v
	}
	db.appsMu.Unlock()
	out := make(map[string]AppStats, len(apps))
	for name, a := range apps {
		a.mu.Lock()
		out[name] = AppStats{Series: len(a.series), RejectedSeries: a.rejectedSeries, RejectedPoints: a.rejectedPoints}
		a.mu.Unlock()
	}
	return out
}
