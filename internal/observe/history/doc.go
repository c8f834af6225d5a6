// Package history keeps the history of metrics in an embedded Prometheus
// TSDB (github.com/prometheus/prometheus/tsdb) and answers PromQL over
// it: the platform's own metrics, scraped from its registry, and the
// metrics apps send over OTLP. `noops metrics APP` prints Summary; the
// console draws Points; Query, QueryRange and Exemplars serve the API.
//
// # Storage
//
// Open opens the TSDB in a directory with Prometheus' defaults and
// Options: retention by time (15 days) and by size (1 GiB, write-ahead
// log included), 2-hour head blocks compacted up to a tenth of the
// retention, a snappy-compressed write-ahead log and the in-memory
// exemplar ring. Samples go to the head
// and its write-ahead log; the TSDB's own goroutine writes blocks,
// compacts them and deletes those beyond retention. Stop closes the TSDB;
// the next Open replays the log, exemplars included, so no committed
// sample is lost across a restart.
//
// # The platform's metrics
//
// Start scrapes the platform's prometheus.Gatherer every Interval (and
// Scrape does one scrape at a given time, which tests drive with a
// synthetic clock). A scrape appends what Prometheus' scraper would: the
// label job="noops" (PlatformJob) on every series, a registry's own job
// label renamed exported_job, counters, gauges and untyped metrics as
// they are, summaries as {quantile} series plus _sum and _count, classic
// histograms as _bucket{le} series (le formatted as Prometheus 3 does:
// "1.0", "+Inf"), _sum and _count, and the exemplars of counters and
// buckets. An exemplar is appended once, when it changes, at its own
// timestamp if that falls after the previous scrape, else at the scrape's
// time. Staleness markers are not written: a series that disappears
// fades after PromQL's lookback (5 minutes, or 3 intervals if longer).
// The platform's series are not limited.
//
// # Apps' metrics over OTLP
//
// AppendOTLP stores one decoded OTLP export request of an app, as
// Prometheus' OTLP endpoint would with its default translation
// (github.com/prometheus/otlptranslator, UnderscoreEscapingWithSuffixes):
// http.server.request.duration in seconds becomes
// http_server_request_duration_seconds; the unit is appended as a word
// (By → _bytes, 1 on a gauge → _ratio, {request} dropped); a monotonic sum
// gets _total; attribute keys have invalid characters replaced by
// underscores. Gauges and sums are one series; explicit-bucket histograms
// are _bucket{le} (cumulative, with +Inf), _sum (when given) and _count
// series; summaries are {quantile}, _sum and _count. Exemplars with a
// trace ID go on sums and on the bucket their value falls in, labelled
// trace_id and span_id. Exponential histograms are refused (the OTel SDKs
// send explicit buckets unless told otherwise).
//
// Labels: the resource's service.namespace/service.name is job and its
// service.instance.id instance; other resource attributes are not kept.
// The app label is always the caller's app, and attributes named app, job,
// instance or starting with "__" are dropped, so an app writes only
// series labelled with its own name. It cannot write the platform's: its
// job is never "noops" (a service named so, or unnamed, becomes
// "unknown_service") and metric names starting with noops_ are refused.
//
// Delta temporality: a delta sum or histogram is added to a running total
// per series, kept in memory, and stored as the cumulative series
// Prometheus expects, so that rate() and increase() read it as they read
// cumulative data. The totals start from zero after a restart of the
// platform, which PromQL's counter-reset handling absorbs for counters
// and histograms; a delta up-down counter (rare: SDKs report those
// cumulatively) restarts from its next delta.
//
// # Bad input
//
// Every data point is checked on its own and refused, counted, without
// stopping the others: a name that translates to nothing or is over 256
// bytes, more than 32 labels, an attribute key over 128 bytes or value
// over 1 KiB (as text: arrays and maps as JSON, nested at most 8 deep) or
// not UTF-8, no value, a time more than 5 minutes ahead of now or older
// than half a block, an unspecified temporality, a non-finite delta,
// histogram bounds that are not finite and increasing or counts that do
// not add up, more than 256 buckets or 64 quantiles, and what the TSDB
// refuses (out of order). A point flagged as having no recorded value
// writes a staleness marker on the series it already has.
//
// The per-app series limit (Options.SeriesPerApp, default 10,000) bounds
// what an app can put in memory: a point that would create new series
// beyond the limit is refused whole (a histogram's buckets are never half
// stored) and its new series are counted in Stats; points of existing
// series keep updating. The limit counts the app's OTLP series in the
// TSDB's head: the set is read back from the head index at the app's
// first append after Open and after every head truncation, so series the
// head dropped stop counting and a restart does not reset the limit.
//
// # Queries
//
// A promql.Engine evaluates queries over the TSDB, each bounded by
// Options.QueryTimeout (30 s) and MaxSamples (5 million); a range query
// has at most 11,000 steps, as Prometheus' API allows. Summary and Points
// are PromQL over the gateway's request histogram and the sandboxes'
// cgroup metrics, restricted to job="noops" so that an app's own
// http.server.request.duration never mixes with the gateway's: increase()
// of _count for requests and of _count{status 5xx or 0} for errors,
// histogram_quantile over sum by (le) of the rate of _bucket for the
// percentiles, the rate of CPU seconds and the sum of the memory and pids
// gauges. Their rates are computed over at least two scrape intervals.
package history
