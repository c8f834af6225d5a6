// Package metrics holds the platform's own metrics in a Prometheus
// registry, served in the Prometheus text format (Handler), and keeps the
// recent samples that `noops ps` summarises: cold starts per app, and the
// gateway's requests per app (red.go).
package metrics

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// recentSize is how many of an app's latest cold starts ColdStarts
// summarises.
const recentSize = 1024

// Metrics is the registry. It is safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	coldStarts *prometheus.HistogramVec
	requests   *prometheus.HistogramVec // red.go
	routes     routes                   // route.go
	events     eventMetrics             // events.go

	mu     sync.Mutex
	recent map[string]*ring
	counts map[string]uint64
}

// New returns a registry with the cold-start histogram and the Go
// runtime's and the process's own collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		coldStarts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "noops",
			Name:      "cold_start_seconds",
			Help:      "Time from the arrival of a request held for an app at zero replicas to the first byte of its response.",
			Buckets:   []float64{.001, .0025, .005, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"app"}),
		requests: newRequestDuration(),
		routes:   routes{app: map[string]map[string]struct{}{}},
		events:   newEventMetrics(),
		recent:   map[string]*ring{},
		counts:   map[string]uint64{},
	}
	m.reg.MustRegister(m.coldStarts, m.requests, m.events.deliveries, m.events.published, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ColdStart records one cold start of app: d from the request's arrival
// to its response's first byte.
func (m *Metrics) ColdStart(app string, d time.Duration) {
	m.coldStarts.WithLabelValues(app).Observe(d.Seconds())
	m.mu.Lock()
	r := m.recent[app]
	if r == nil {
		r = &ring{}
		m.recent[app] = r
	}
	r.add(d)
	m.counts[app]++
	m.mu.Unlock()
}

// ColdStartStats summarises an app's cold starts.
type ColdStartStats struct {
	Count         uint64        // since the server started
	P50, P99, Max time.Duration // of the latest (up to 1024)
}

// ColdStarts returns the summary of app's cold starts.
func (m *Metrics) ColdStarts(app string) ColdStartStats {
	m.mu.Lock()
	r := m.recent[app]
	n := m.counts[app]
	var xs []time.Duration
	if r != nil {
		xs = r.values()
	}
	m.mu.Unlock()
	st := ColdStartStats{Count: n}
	if len(xs) == 0 {
		return st
	}
	slices.Sort(xs)
	st.P50, st.P99, st.Max = Quantile(xs, 0.5), Quantile(xs, 0.99), xs[len(xs)-1]
	return st
}

// Forget drops an app's cold starts (it was deleted).
func (m *Metrics) Forget(app string) {
	m.coldStarts.DeleteLabelValues(app)
	m.requests.DeletePartialMatch(prometheus.Labels{"app": app})
	m.routes.forget(app)
	m.events.deliveries.DeletePartialMatch(prometheus.Labels{"app": app})
	m.mu.Lock()
	delete(m.recent, app)
	delete(m.counts, app)
	m.mu.Unlock()
}

// Registry is the registry itself, for the metric history's scrapes.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format, or in
// OpenMetrics (with the exemplars) to a scraper that asks for it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Quantile returns the q-quantile (0..1) of sorted xs, nearest rank.
func Quantile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// ring keeps the latest recentSize durations.
type ring struct {
	buf  [recentSize]time.Duration
	n    int // how many were added, all time
	next int
}

func (r *ring) add(d time.Duration) {
	r.buf[r.next] = d
	r.next = (r.next + 1) % recentSize
	r.n++
}

func (r *ring) values() []time.Duration {
	return append([]time.Duration(nil), r.buf[:min(r.n, recentSize)]...)
}
