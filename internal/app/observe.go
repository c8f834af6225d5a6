package app

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"noops/internal/access"
	"noops/internal/gateway"
	"noops/internal/identity/workload"
	"noops/internal/observe/export"
	"noops/internal/observe/history"
	"noops/internal/observe/logstore"
	"noops/internal/observe/metrics"
	"noops/internal/observe/otlp"
	"noops/internal/observe/tracestore"
	"noops/internal/runtime"
	"noops/internal/store"
	"noops/internal/supervisor"
)

// Observe configures the telemetry stores and their export.
type Observe struct {
	// Retention by age and by size of the log, trace and metric stores
	// (0: their defaults: logs 7 days and 1 GiB, traces 7 days and
	// 512 MiB, metrics 15 days and 1 GiB).
	LogRetention, TraceRetention, MetricRetention time.Duration
	LogMaxBytes, TraceMaxBytes, MetricMaxBytes    int64
	// MetricInterval is how often the metric history records the
	// platform's metrics (0: 15s); MonitorInterval how often each app's
	// health monitor checks it (0: 30s); AlertInterval how often the
	// alert rules are evaluated (0: 30s) and AlertGroupWait how long a
	// new alert group waits for more alerts before it is sent (0: 10s,
	// negative: not at all). Tests make them short.
	MetricInterval, MonitorInterval time.Duration
	AlertInterval, AlertGroupWait   time.Duration
	// Export, when Endpoint is set, sends traces, metrics and logs to an
	// OTLP backend as well.
	Export export.Config
}

// OTLPPrefix is where workloads send OTLP/HTTP on the internal listener
// (OTEL_EXPORTER_OTLP_ENDPOINT ends with it; the SDKs add /v1/traces…).
const OTLPPrefix = "/.noops/otlp"

// startTelemetry opens the log, trace and metric stores, the collector
// of the sandboxes' log files, the OTLP receiver and the exporter. The
// gateway, which starts later, reports every request to observed.
func (a *App) startTelemetry(ctx context.Context) error {
	oc := a.cfg.Observe
	ls, err := logstore.Open(a.path("telemetry", "logs"), logstore.Options{MaxAge: oc.LogRetention, MaxBytes: oc.LogMaxBytes, Logger: a.log})
	if err != nil {
		return fmt.Errorf("opening the log store: %w", err)
	}
	a.logs = ls
	a.started1("log store", func(context.Context) error { return ls.Close() })

	coll := logstore.NewCollector(a.path("logs"), ls, a.path("telemetry", "collector.json"), a.log)
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := coll.Run(cctx); err != nil && cctx.Err() == nil {
			a.log.Error("log collector stopped", "err", err)
		}
	}()
	a.started1("log collector", func(context.Context) error { cancel(); <-done; return nil })

	ts, err := tracestore.Open(a.path("telemetry", "traces"), tracestore.Options{MaxAge: oc.TraceRetention, MaxBytes: oc.TraceMaxBytes, Logger: a.log})
	if err != nil {
		return fmt.Errorf("opening the trace store: %w", err)
	}
	a.traces = ts
	a.started1("trace store", func(context.Context) error { return ts.Close() })

	a.metrics.Sandboxes(a.sandboxUsage)
	h, err := history.Open(a.path("telemetry", "metrics"), a.metrics.Registry(), history.Options{Retention: oc.MetricRetention,
		MaxBytes: oc.MetricMaxBytes, Interval: oc.MetricInterval, Logger: a.log})
	if err != nil {
		return fmt.Errorf("opening the metric history: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	a.history = h
	a.started1("metric history", h.Stop)

	if oc.Export.Endpoint != "" {
		ec := oc.Export
		if ec.Dir == "" {
			ec.Dir = a.path("telemetry", "export")
		}
		ec.Logger = a.log
		ex, err := export.New(ec)
		if err != nil {
			return err
		}
		if err := ex.Start(ctx); err != nil {
			return err
		}
		a.export = ex
		a.started1("OTLP exporter", ex.Stop)
		every := oc.MetricInterval
		if every <= 0 {
			every = time.Minute
		}
		a.batcher = newBatcher(ex, a.log, a.metrics.Registry(), every)
		a.started1("OTLP batcher", a.batcher.stop)
	}

	rcv, err := otlp.New(otlp.Config{Caller: func(_ context.Context, r *http.Request) (string, error) { return a.access.Caller(r) },
		CallerGRPC: a.grpcCaller, Spans: a.receivedSpans, Logs: a.receivedLogs, Metrics: a.receivedMetrics, Logger: a.log})
	if err != nil {
		return err
	}
	a.otlp = rcv
	a.otlpGRPC = newOTLPServer(rcv)
	a.started1("OTLP receiver", func(context.Context) error { a.otlpGRPC.Stop(); return nil })
	return nil
}

// sandboxUsage reads every running sandbox's cgroup for /metrics.
func (a *App) sandboxUsage(ctx context.Context) []metrics.SandboxUsage {
	if a.super == nil || a.driver == nil {
		return nil
	}
	sts, err := a.driver.List(ctx)
	if err != nil {
		a.log.Warn("listing sandboxes for their metrics", "err", err)
		return nil
	}
	var out []metrics.SandboxUsage
	for _, st := range sts {
		if st.Status != runtime.Running || st.Labels["app"] == "" {
			continue
		}
		u, err := a.driver.Usage(ctx, st.ID)
		if err != nil {
			continue // stopped since List
		}
		out = append(out, metrics.SandboxUsage{App: st.Labels["app"], Sandbox: st.ID, CPU: u.CPU, Memory: u.Memory, Pids: u.Pids})
	}
	return out
}

// observed is the gateway's report of one request to an app: a RED
// sample, an access log line and the gateway's span, all with the
// request's trace ID.
func (a *App) observed(r *http.Request, s *gateway.Served) {
	tid := hex.EncodeToString(s.Span.TraceID[:])
	sid := hex.EncodeToString(s.Span.SpanID[:])
	a.metrics.Request(s.App, r.Method, r.URL.Path, s.Status, s.Duration, tid)
	user := firstHeader(r.Header, access.HeaderUser)
	if user == "" {
		if w := firstHeader(r.Header, access.HeaderWorkload); w != "" {
			user = "app:" + w
		}
	}
	client := clientIP(r.RemoteAddr)
	path := redactQuery(r.URL)
	rec := logstore.Record{Time: s.Start, App: s.App, Stream: "access", TraceID: tid, SpanID: sid,
		Access: &logstore.Access{Method: r.Method, Host: r.Host, Path: path, Proto: r.Proto, Status: s.Status, Duration: s.Duration,
			BytesIn: max(r.ContentLength, 0), BytesOut: s.BytesOut, Client: client, User: user,
			UserAgent: firstHeader(r.Header, "User-Agent"), Referer: redactReferer(firstHeader(r.Header, "Referer"))}}
	if err := a.logs.Append(rec); err != nil {
		a.log.Debug("access log line dropped", "err", err)
	}
	span := tracestore.Span{TraceID: tid, SpanID: sid, Name: r.Method + " " + r.URL.Path, Kind: "server", Service: GatewayService,
		App: s.App, Start: s.Start, End: s.Start.Add(s.Duration), StatusCode: "unset",
		Attributes: map[string]string{"http.request.method": r.Method, "url.path": r.URL.Path, "server.address": r.Host,
			"http.response.status_code": strconv.Itoa(s.Status), "client.address": client, "network.protocol.version": protoVersion(r.Proto)}}
	if s.HasParent {
		span.ParentID = hex.EncodeToString(s.Parent[:])
	}
	if s.Status >= 500 || s.Status == 0 {
		span.StatusCode = "error"
		if s.Status == 0 {
			span.StatusMessage = "the client went away before an answer"
		}
	}
	if s.Backend != "" {
		span.Attributes["noops.backend"] = s.Backend
	}
	if user != "" {
		span.Attributes["enduser.id"] = user
	}
	if err := a.traces.Add(span); err != nil {
		a.log.Debug("gateway span dropped", "err", err)
	}
	if a.batcher != nil {
		a.batcher.span(span)
		a.batcher.log(rec)
	}
}

// GatewayService is the service name of the gateway's spans.
const GatewayService = "noops-gateway"

func firstHeader(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func clientIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

func protoVersion(p string) string {
	_, v, _ := strings.Cut(p, "/")
	return v
}

// secretParams are query parameter names whose values the access log
// does not keep: a token in a URL is still a token.
var secretParams = []string{"token", "key", "secret", "password", "passwd", "pass", "auth", "code", "sig", "signature", "session", "credential", "jwt"}

// redactQuery is u's path and query with the values of parameters that
// look secret replaced by REDACTED.
func redactQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name := strings.ToLower(k)
		if un, err := url.QueryUnescape(k); err == nil {
			name = strings.ToLower(un)
		}
		for _, s := range secretParams {
			if strings.Contains(name, s) {
				parts[i] = k + "=REDACTED"
				break
			}
		}
	}
	return u.Path + "?" + strings.Join(parts, "&")
}

// redactReferer drops a Referer's query, which may hold another site's
// secrets.
func redactReferer(ref string) string {
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		return ref[:i]
	}
	return ref
}

// otelEnv is what tells an OpenTelemetry SDK in a sandbox to send OTLP to
// the platform: the internal listener's endpoint and the sandbox's SVID
// files for mutual TLS (SDKs read them once: an app that runs for longer
// than an SVID lives reloads them itself, as examples/hello-go does).
func otelEnv(endpoint string) []string {
	dir := supervisor.IdentityMount
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_CERTIFICATE=" + dir + "/" + workload.FileBundle,
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=" + dir + "/" + workload.FileCert,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY=" + dir + "/" + workload.FileKey,
	}
}

// eventLog is the store, with every platform event (crash loops, OOM
// kills, scaling, deploy markers, bans, monitor changes) also written to
// the log store as a "platform" line of its app, so that `noops logs APP`
// tells the whole story in order.
type eventLog struct {
	store.Store
	a *App
}

func (s eventLog) AppendEvent(ctx context.Context, e store.Event) (store.Event, error) {
	out, err := s.Store.AppendEvent(ctx, e)
	if err == nil && s.a.logs != nil {
		if lerr := s.a.logs.Append(logstore.Record{Time: out.Time, App: out.App, Stream: logstore.StreamPlatform,
			Line: out.Kind + ": " + out.Message}); lerr != nil {
			s.a.log.Debug("platform event not logged", "kind", out.Kind, "err", lerr)
		}
	}
	return out, err
}
