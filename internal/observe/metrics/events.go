package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The event bus's metrics: deliveries to functions by outcome and how
// long the apps took, events published, and each function's backlog,
// read from JetStream at scrape time.
type eventMetrics struct {
	deliveries *prometheus.HistogramVec
	published  prometheus.Counter
}

func newEventMetrics() eventMetrics {
	return eventMetrics{
		deliveries: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "noops",
			Name:      "event_delivery_duration_seconds",
			Help:      "Attempts to deliver an event (or an asynchronous invocation) to an app, by outcome: delivered, retried, dead_lettered, duplicate, cancelled.",
			Buckets:   durationBuckets,
		}, []string{"app", "outcome"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "noops",
			Name:      "events_published_total",
			Help:      "Events stored on a topic.",
		}),
	}
}

// Delivery records one delivery attempt (events.Config.OnDelivery).
func (m *Metrics) Delivery(app, outcome string, d time.Duration) {
	m.events.deliveries.WithLabelValues(app, outcome).Observe(d.Seconds())
}

// Published counts one published event (events.Config.OnPublish).
func (m *Metrics) Published() { m.events.published.Inc() }

// Backlog registers the gauge of each function's waiting events, read
// at scrape time from backlog (the bus's Backlog).
func (m *Metrics) Backlog(backlog func(context.Context) map[string]uint64) {
	m.reg.MustRegister(backlogCollector{backlog})
}

var backlogDesc = prometheus.NewDesc("noops_event_backlog", "Events waiting for an app's function: not yet delivered, or being delivered or retried.", []string{"app"}, nil)

type backlogCollector struct {
	f func(context.Context) map[string]uint64
}

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc }

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for app, n := range c.f(ctx) {
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n), app)
	}
}
