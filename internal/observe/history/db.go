package history

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"

	"noops/internal/errkind"
)

// PlatformJob is the job label of every series scraped from the
// platform's registry. Series sent by apps over OTLP never carry it.
const PlatformJob = "noops"

// Defaults of Options.
const (
	DefaultRetention     = 15 * 24 * time.Hour
	DefaultMaxBytes      = 1 << 30
	DefaultInterval      = 15 * time.Second
	DefaultSeriesPerApp  = 10_000
	DefaultBlockDuration = 2 * time.Hour
	DefaultMaxExemplars  = 100_000
	DefaultQueryTimeout  = 30 * time.Second
	DefaultMaxSamples    = 5_000_000
)

// Options configure a DB. The zero value of each field means its default.
type Options struct {
	Retention    time.Duration // data older than this (by block) is deleted; default 15 days
	MaxBytes     int64         // the oldest blocks are deleted beyond this size (write-ahead log included); default 1 GiB
	Interval     time.Duration // scrape interval of the platform registry; default 15s
	SeriesPerApp int           // series in memory per app from AppendOTLP; default 10,000

	// BlockDuration is the span of the head block before it is written to
	// disk (the TSDB's MinBlockDuration); default 2h. Larger blocks are
	// compacted from it up to a tenth of Retention (at most 31 days).
	BlockDuration time.Duration
	MaxExemplars  int           // exemplars kept in memory (a ring); default 100,000
	QueryTimeout  time.Duration // per query; default 30s
	MaxSamples    int           // samples one query may hold in memory; default 5,000,000

	Now    func() time.Time
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Retention < 0 || o.MaxBytes < 0 || o.Interval < 0 || o.SeriesPerApp < 0 || o.BlockDuration < 0 ||
		o.MaxExemplars < 0 || o.QueryTimeout < 0 || o.MaxSamples < 0 {
		return o, errkind.Errorf(errkind.Invalid, "opening metric history: negative option")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Retention, DefaultRetention)
	def(&o.Interval, DefaultInterval)
	def(&o.BlockDuration, DefaultBlockDuration)
	def(&o.QueryTimeout, DefaultQueryTimeout)
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SeriesPerApp == 0 {
		o.SeriesPerApp = DefaultSeriesPerApp
	}
	if o.MaxExemplars == 0 {
		o.MaxExemplars = DefaultMaxExemplars
	}
	if o.MaxSamples == 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BlockDuration < time.Millisecond || o.Interval < time.Millisecond {
		return o, errkind.Errorf(errkind.Invalid, "opening metric history: block duration and interval must be at least 1ms")
	}
	return o, nil
}

// maxBlockDuration is what Prometheus derives from the retention: a tenth
// of it, at most 31 days, at least one block.
func (o Options) maxBlockDuration() time.Duration {
	d := min(o.Retention/10, 31*24*time.Hour)
	return max(d, o.BlockDuration)
}

// DB is the metric history: a Prometheus TSDB on disk, filled by scraping
// the platform's registry and by apps' OTLP metrics, read with PromQL. It
// is safe for concurrent use.
type DB struct {
	dir   string
	opt   Options
	g     prometheus.Gatherer
	reg   *prometheus.Registry // the TSDB's own metrics, read by Stats
	query querier              // query.go

	// stopping ends with Stop, cutting short the queries in flight.
	stopping    context.Context
	stopQueries context.CancelFunc

	mu      sync.RWMutex // held for reading while the TSDB is used, for writing to close it
	tsdb    *tsdb.DB
	closed  bool
	started bool
	cancel  context.CancelFunc
	done    chan struct{}

	scrape scrapeState // scrape.go

	appsMu sync.Mutex
	apps   map[string]*appSeries // limit.go
}

// errClosed is returned by every method after Stop.
var errClosed = errkind.Errorf(errkind.Unavailable, "metric history is closed")

// Open opens (or creates) the history in dir, replaying its write-ahead
// log, and returns it ready for AppendOTLP, Scrape and queries; Start
// begins scraping g every Interval.
func Open(dir string, g prometheus.Gatherer, opt Options) (*DB, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating metric history directory: %w", err)
	}
	to := tsdb.DefaultOptions()
	to.RetentionDuration = opt.Retention.Milliseconds()
	to.MaxBytes = opt.MaxBytes
	to.MinBlockDuration = opt.BlockDuration.Milliseconds()
	to.MaxBlockDuration = opt.maxBlockDuration().Milliseconds()
	to.EnableExemplarStorage = true
	to.MaxExemplars = int64(opt.MaxExemplars)
	to.WALCompression = compression.Snappy
	reg := prometheus.NewRegistry()
	t, err := tsdb.Open(dir, opt.Logger.With("component", "tsdb"), reg, to, nil)
	if err != nil {
		return nil, fmt.Errorf("opening metric history in %s: %w", dir, err)
	}
	db := &DB{
		dir:  dir,
		opt:  opt,
		g:    g,
		reg:  reg,
		tsdb: t,
		apps: map[string]*appSeries{},
	}
	db.query = newQuerier(opt)
	db.stopping, db.stopQueries = context.WithCancel(context.Background())
	return db, nil
}

// Start begins scraping the platform registry every Interval (at once,
// then on a ticker) and returns at once. Scraping runs until Stop, not
// until ctx ends. A failed scrape is logged and the next one tried.
func (db *DB) Start(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return errClosed
	}
	if db.started {
		return errors.New("starting metric history: already started")
	}
	if db.g == nil {
		return errors.New("starting metric history: no registry to scrape")
	}
	db.started = true
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	db.cancel = cancel
	db.done = make(chan struct{})
	go db.loop(run)
	return nil
}

func (db *DB) loop(ctx context.Context) {
	defer close(db.done)
	tick := time.NewTicker(db.opt.Interval)
	defer tick.Stop()
	for {
		if err := db.Scrape(ctx, db.opt.Now()); err != nil && ctx.Err() == nil {
			db.opt.Logger.Warn("scraping platform metrics into history", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Stop ends the scrape loop, cuts short the queries in flight and closes
// the TSDB (the head stays in the write-ahead log, replayed by the next
// Open). Every method but Stats and Forget fails after it. When ctx ends
// before the loop's scrape in flight returns, Stop returns ctx's error
// after closing anyway.
func (db *DB) Stop(ctx context.Context) error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	started, cancel, done := db.started, db.cancel, db.done
	db.mu.Unlock()
	db.stopQueries()
	var errs []error
	if started {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("waiting for the metric scrape to stop: %w", ctx.Err()))
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return errors.Join(errs...)
	}
	db.closed = true
	db.query.close()
	if err := db.tsdb.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing metric history: %w", err))
	}
	return errors.Join(errs...)
}

// use runs f with the TSDB held open, or returns errClosed.
func (db *DB) use(f func(*tsdb.DB) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return errClosed
	}
	return f(db.tsdb)
}

// Stats describe the history's size.
type Stats struct {
	Series     uint64 // series in the head (in memory)
	HeadChunks int64  // chunks of those series
	Exemplars  int64  // exemplars in memory
	Blocks     int    // persisted blocks
	DiskBytes  int64  // blocks, write-ahead log and memory-mapped head chunks
	// MinTime and MaxTime bound the samples held; zero when there are none.
	MinTime, MaxTime time.Time
	// Apps are the apps that sent metrics over OTLP, by name.
	Apps map[string]AppStats
}

// AppStats describe one app's OTLP metrics.
type AppStats struct {
	Series         int    // series counted against Options.SeriesPerApp
	RejectedSeries uint64 // new series refused by the limit, since Open
	RejectedPoints uint64 // data points refused for any reason, since Open
}

// Stats returns the history's size; after Stop only DiskBytes and Apps
// are filled.
func (db *DB) Stats() Stats {
	var st Stats
	_ = db.use(func(t *tsdb.DB) error {
		h := t.Head()
		st.Series = h.NumSeries()
		st.Blocks = len(t.Blocks())
		mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
		if bs := t.Blocks(); len(bs) > 0 {
			mint, maxt = bs[0].Meta().MinTime, bs[len(bs)-1].Meta().MaxTime-1
		}
		if h.MaxTime() != math.MinInt64 {
			mint, maxt = min(mint, h.MinTime()), max(maxt, h.MaxTime())
		}
		if mint <= maxt {
			st.MinTime, st.MaxTime = time.UnixMilli(mint), time.UnixMilli(maxt)
		}
		st.HeadChunks = int64(gaugeValue(db.reg, "prometheus_tsdb_head_chunks"))
		st.Exemplars = int64(gaugeValue(db.reg, "prometheus_tsdb_exemplar_exemplars_in_storage"))
		return nil
	})
	_ = filepath.WalkDir(db.dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				st.DiskBytes += fi.Size()
			}
		}
		return nil
	})
	st.Apps = db.appStats()
	return st
}

// gaugeValue reads the first sample of a gauge from g, or 0.
func gaugeValue(g prometheus.Gatherer, name string) float64 {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
