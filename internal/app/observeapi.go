package app

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/observe/logstore"
	"noops/internal/observe/monitor"
	"noops/internal/observe/tracestore"
)

// observeAPI serves the telemetry to the API: logs, the metric history,
// traces, monitors and alerts.
type observeAPI struct{ a *App }

func (o observeAPI) Logs(ctx context.Context, app string, q apitype.LogQuery, emit func(apitype.LogLine) error) error {
	lq := logstore.Query{App: app, Streams: q.Streams, From: q.From, To: q.To, Grep: q.Grep, Fields: q.Fields, TraceID: q.TraceID}
	if q.Regexp != "" {
		re, err := regexp.Compile(q.Regexp)
		if err != nil {
			return errkind.Errorf(errkind.Invalid, "regexp: %v", err)
		}
		lq.Regexp = re
	}
	if q.Lines >= 0 {
		lq.Limit, lq.Tail = q.Lines, true
		if q.Lines == 0 {
			lq.From = time.Now() // none of what is stored: -n 0 -f
			if !q.Follow {
				return nil
			}
		}
	}
	// Lines appended a moment ago are in the store's buffer: make them
	// visible, as a user who just made a request expects.
	if err := o.a.logs.Flush(); err != nil {
		return err
	}
	f := func(r logstore.Record) error { return emit(logLine(r)) }
	if q.Follow {
		return o.a.logs.Follow(ctx, lq, f)
	}
	return o.a.logs.Query(ctx, lq, f)
}

func logLine(r logstore.Record) apitype.LogLine {
	l := apitype.LogLine{Time: r.Time, App: r.App, Stream: r.Stream, Sandbox: r.Sandbox, TraceID: r.TraceID, SpanID: r.SpanID,
		Severity: r.Severity, Line: r.Line}
	if a := r.Access; a != nil {
		l.Access = &apitype.AccessLog{Method: a.Method, Host: a.Host, Path: a.Path, Proto: a.Proto, Status: a.Status,
			DurationMs: float64(a.Duration.Microseconds()) / 1000, BytesIn: a.BytesIn, BytesOut: a.BytesOut, Client: a.Client,
			User: a.User, UserAgent: a.UserAgent, Referer: a.Referer}
	}
	return l
}

func (o observeAPI) Metrics(ctx context.Context, app string, window, step time.Duration) (apitype.MetricsSummary, error) {
	now := time.Now()
	s, err := o.a.history.Summary(ctx, app, window, now)
	if err != nil {
		return apitype.MetricsSummary{}, err
	}
	msf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out := apitype.MetricsSummary{App: app, Window: window.String(), Requests: s.Requests, Rate: s.Rate, Errors: s.Errors,
		ErrorRatio: s.ErrorRatio, P50Ms: msf(s.P50), P95Ms: msf(s.P95), P99Ms: msf(s.P99), CPU: s.CPU, Memory: s.Memory, Pids: s.Pids,
		Exemplar: s.Exemplar}
	if step > 0 {
		pts, err := o.a.history.Points(ctx, app, window, step, now)
		if err != nil {
			return apitype.MetricsSummary{}, err
		}
		for _, p := range pts {
			out.Points = append(out.Points, apitype.MetricsPoint{Time: p.Time, Rate: p.Rate, ErrorRatio: p.ErrorRatio, P95Ms: msf(p.P95)})
		}
	}
	return out, nil
}

func (o observeAPI) Trace(ctx context.Context, id string) (apitype.Trace, error) {
	if err := o.a.traces.Flush(); err != nil {
		return apitype.Trace{}, err
	}
	spans, err := o.a.traces.Trace(ctx, id)
	if err != nil {
		return apitype.Trace{}, err
	}
	out := apitype.Trace{TraceID: id, Spans: make([]apitype.Span, len(spans))}
	for i, s := range spans {
		out.Spans[i] = apiSpan(s)
	}
	return out, nil
}

func apiSpan(s tracestore.Span) apitype.Span {
	return apitype.Span{TraceID: s.TraceID, SpanID: s.SpanID, ParentID: s.ParentID, Name: s.Name, Kind: s.Kind, Service: s.Service,
		App: s.App, Start: s.Start, End: s.End, Status: s.StatusCode, StatusMessage: s.StatusMessage, Attributes: s.Attributes}
}

func (o observeAPI) Traces(ctx context.Context, q apitype.TraceQuery) ([]apitype.TraceSummary, error) {
	if err := o.a.traces.Flush(); err != nil {
		return nil, err
	}
	sums, err := o.a.traces.Search(ctx, tracestore.Query{App: q.App, From: q.From, To: q.To, MinDuration: q.MinDuration,
		ErrorsOnly: q.ErrorsOnly, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]apitype.TraceSummary, len(sums))
	for i, s := range sums {
		out[i] = apitype.TraceSummary{TraceID: s.TraceID, Root: s.Root, Service: s.Service, App: s.App, Start: s.Start,
			DurationMs: float64(s.Duration.Microseconds()) / 1000, Spans: s.Spans, Errors: s.Errors}
	}
	return out, nil
}

func (o observeAPI) Monitors(context.Context) []apitype.Monitor {
	runner := o.a.watch.runnerOf()
	if runner == nil {
		return nil
	}
	sts := runner.List()
	out := make([]apitype.Monitor, 0, len(sts))
	for _, st := range sts {
		m := apitype.Monitor{Name: st.Spec.Name, App: st.Spec.App, Kind: string(st.Spec.Kind), Target: st.Spec.Target, State: string(st.State),
			Since: st.Since, LastCheck: st.LastCheck, LatencyMs: float64(st.Last.Latency.Microseconds()) / 1000, Error: st.Last.Error,
			Detail: st.Last.Detail, Uptime: st.Uptime, Interval: st.Spec.Interval.String()}
		if st.Spec.Kind == monitor.HTTP && st.Spec.Host != "" {
			m.Target = st.Spec.Host + pathOf(st.Spec.Target)
		}
		for _, r := range st.Recent {
			m.Recent = append(m.Recent, r.OK)
		}
		out = append(out, m)
	}
	return out
}

// pathOf is the path of a URL "https://host/path".
func pathOf(u string) string {
	const scheme = "https://"
	if len(u) > len(scheme) {
		for i := len(scheme); i < len(u); i++ {
			if u[i] == '/' {
				return u[i:]
			}
		}
	}
	return ""
}

// Push finds the push monitor whose token this is.
func (o observeAPI) Push(_ context.Context, token string, ok bool, msg string) error {
	runner := o.a.watch.runnerOf()
	if runner == nil {
		return errkind.Errorf(errkind.Unavailable, "the monitors are not running")
	}
	for _, st := range runner.List() {
		if st.Spec.Kind == monitor.Push {
			if err := runner.Push(st.Spec.Name, token, ok, msg); err == nil {
				return nil
			}
		}
	}
	return errkind.Errorf(errkind.Permission, "no push monitor has this token")
}

func (o observeAPI) Alerts(context.Context) []apitype.Alert {
	e := o.a.watch.engineOf()
	if e == nil {
		return nil
	}
	as := e.Alerts()
	out := make([]apitype.Alert, 0, len(as))
	for _, a := range as {
		x := apitype.Alert{Rule: a.Rule, App: a.App, State: a.State, Severity: a.Severity, Summary: a.Summary, Value: a.Value,
			Labels: a.Labels, ActiveAt: a.ActiveAt, FiredAt: a.FiredAt, ResolvedAt: a.ResolvedAt}
		for _, c := range a.Changes {
			x.Changes = append(x.Changes, fmt.Sprintf("%s %s at %s (%s before)", c.Kind, c.Detail, c.Time.UTC().Format("15:04 UTC"),
				a.ActiveAt.Sub(c.Time).Round(time.Second)))
		}
		out = append(out, x)
	}
	return out
}
