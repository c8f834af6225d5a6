package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"noops/internal/apitype"
	"noops/internal/app"
	"noops/internal/observe/export"
	"noops/internal/observe/trace"
)

// alertReceiver is an Alertmanager-style webhook receiver: it keeps the
// payloads it gets.
type alertReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []alertPayload
	down bool // answer 503 (a sink that is down)
}

type alertPayload struct {
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		EndsAt      time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	r := &alertReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p alertPayload
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("the alert webhook got %q: %v", b, err)
		}
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.Close)
	return r
}

// find returns the first payload about rule with the given status.
func (r *alertReceiver) find(rule, status string) (alertPayload, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.got {
		if p.GroupLabels["alertname"] == rule && p.Status == status {
			return p, true
		}
	}
	return alertPayload{}, false
}

// count is how many payloads about rule the receiver got.
func (r *alertReceiver) count(rule string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.got {
		if p.GroupLabels["alertname"] == rule {
			n++
		}
	}
	return n
}

// otlpReceiver is an OTLP/HTTP receiver decoding traces with the
// OpenTelemetry Collector's own pdata code.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans map[string][]string // trace ID → "service/name"
	other map[string]int      // requests to /v1/logs and /v1/metrics
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{spans: map[string][]string{}, other: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.URL.Path != "/v1/traces" {
			r.other[req.URL.Path]++
			w.Header().Set("Content-Type", "application/x-protobuf")
			return
		}
		er := ptraceotlp.NewExportRequest()
		if err := er.UnmarshalProto(b); err != nil {
			t.Errorf("the OTLP receiver could not decode traces: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rss := er.Traces().ResourceSpans()
		for i := range rss.Len() {
			rs := rss.At(i)
			svc, _ := rs.Resource().Attributes().Get("service.name")
			sss := rs.ScopeSpans()
			for j := range sss.Len() {
				ss := sss.At(j).Spans()
				for k := range ss.Len() {
					s := ss.At(k)
					id := s.TraceID()
					r.spans[hexOf(id[:])] = append(r.spans[hexOf(id[:])], svc.Str()+"/"+s.Name())
				}
			}
		}
		resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	t.Cleanup(r.Close)
	return r
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func (r *otlpReceiver) services(traceID string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.spans[traceID], ",")
}

// TestObservability deploys the instrumented examples/hello-go on the
// real platform: one request yields an access log line, a metric sample
// (its exemplar) and the gateway's span with one trace ID, and the app's
// own spans (sent over OTLP from its sandbox) join that trace; the
// OTLP exporter delivers the trace to a real OTLP receiver; the health
// monitor sees the app go down within its interval, and a webhook
// receiver gets the alert, with the change that came before it, then the
// resolve.
func TestObservability(t *testing.T) {
	am := newAlertReceiver(t)
	otel := newOTLPReceiver(t)
	const monitorEvery = 2 * time.Second
	e := Start(t, Options{StartTimeout: 30 * time.Second, Configure: func(c *app.Config) {
		c.Protection.Alertmanager = []string{am.URL}
		c.Observe.MetricInterval = time.Second
		c.Observe.MonitorInterval = monitorEvery
		c.Observe.AlertInterval = 500 * time.Millisecond
		c.Observe.AlertGroupWait = -1
		c.Observe.Export = export.Config{Endpoint: otel.URL, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	}})
	ctx := context.Background()
	deployOK(t, e, Example(t, "hello-go"), "hello")

	// HEAD: the health monitor GETs, so this request has a series (and an
	// exemplar) of its own.
	tp := trace.New()
	tid := tp.TraceIDString()
	resp, _ := e.do(t, http.MethodHead, "hello", "/", "", http.Header{"Traceparent": {tp.String()}})
	gw, ok := trace.Parse(resp.Header.Get("Traceresponse"))
	if resp.StatusCode != http.StatusOK || !ok || gw.TraceIDString() != tid {
		t.Fatalf("HEAD / = %d, traceresponse %q: want 200 and the gateway's span in trace %s", resp.StatusCode, resp.Header.Get("Traceresponse"), tid)
	}
	gwSpan := hexOf(gw.SpanID[:])

	t.Run("one request: an access log line, a metric sample and spans of one trace", func(t *testing.T) {
		var lines []apitype.LogLine
		waitFor(t, "the access log line", 20*time.Second, func() bool {
			lines = nil
			err := e.Client.Logs(ctx, "hello", apitype.LogQuery{Lines: -1, TraceID: tid, Streams: []string{"access"}}, func(l apitype.LogLine) error {
				lines = append(lines, l)
				return nil
			})
			return err == nil && len(lines) > 0
		})
		if a := lines[0].Access; len(lines) != 1 || a == nil || a.Method != "HEAD" || a.Path != "/" || a.Status != 200 || lines[0].SpanID != gwSpan {
			t.Errorf("access log lines of the trace: %+v (access %+v), want one HEAD / 200 with span %s", lines, lines[0].Access, gwSpan)
		}

		om, err := e.Client.Metrics(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if !hasExemplar(string(om), `http_request_method="HEAD"`, tid) {
			t.Errorf("no http_server_request_duration_seconds sample of the HEAD with exemplar trace_id %s:\n%s", tid, grepLines(string(om), "HEAD"))
		}

		var tr apitype.Trace
		waitFor(t, "the app's spans to join the gateway's", 40*time.Second, func() bool {
			tr, err = e.Client.Trace(ctx, tid)
			return err == nil && len(tr.Spans) >= 3
		})
		byID := map[string]apitype.Span{}
		for _, s := range tr.Spans {
			byID[s.SpanID] = s
		}
		g, ok := byID[gwSpan]
		if !ok || g.Service != app.GatewayService || g.ParentID != hexOf(tp.SpanID[:]) || g.App != "hello" {
			t.Fatalf("the gateway's span %s: %+v, want service %s, parent %x (all: %+v)", gwSpan, g, app.GatewayService, tp.SpanID, tr.Spans)
		}
		var appSpan, child apitype.Span
		for _, s := range tr.Spans {
			switch {
			case s.ParentID == gwSpan && s.Service == "hello":
				appSpan = s
			case s.Name == "render page":
				child = s
			}
		}
		if appSpan.SpanID == "" || appSpan.App != "hello" || child.ParentID != appSpan.SpanID {
			t.Errorf("spans of the trace %+v: want hello's server span under the gateway's and \"render page\" under it", tr.Spans)
		}
	})

	t.Run("the OTLP exporter delivers the trace to a real receiver", func(t *testing.T) {
		waitFor(t, "the exported spans", 30*time.Second, func() bool {
			s := otel.services(tid)
			return strings.Contains(s, app.GatewayService+"/HEAD /") && strings.Contains(s, "hello/")
		})
		waitFor(t, "exported logs and metrics", 30*time.Second, func() bool {
			otel.mu.Lock()
			defer otel.mu.Unlock()
			return otel.other["/v1/logs"] > 0 && otel.other["/v1/metrics"] > 0
		})
	})

	t.Run("noops metrics: rate, errors, percentiles", func(t *testing.T) {
		waitFor(t, "the request in the metric history", 20*time.Second, func() bool {
			m, err := e.Client.AppMetrics(ctx, "hello", 5*time.Minute, time.Minute)
			return err == nil && m.Requests >= 1 && m.P50Ms > 0 && m.Memory > 0
		})
	})

	t.Run("the monitor sees the app down, the webhook gets the alert, then the resolve", func(t *testing.T) {
		waitFor(t, "the health monitor to see hello up", 30*time.Second, func() bool {
			ms, err := e.Client.Monitors(ctx, "hello")
			return err == nil && len(ms) == 1 && ms[0].State == "up"
		})
		if n := am.count("hello:down"); n != 0 {
			t.Errorf("%d notifications about hello:down before anything failed: a new app's monitor must not fire while it starts", n)
		}
		if _, err := e.Client.Scale(ctx, "hello", 0); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		var down apitype.Monitor
		waitFor(t, "the monitor to see hello down", 30*time.Second, func() bool {
			ms, err := e.Client.Monitors(ctx, "hello")
			if err == nil && len(ms) == 1 && ms[0].State == "down" {
				down = ms[0]
				return true
			}
			return false
		})
		// Two failed checks (fail_after 2), the second after a shorter
		// retry: within about two intervals, plus a scheduling margin.
		if took := time.Since(stopped); took > 2*monitorEvery+3*time.Second {
			t.Errorf("the monitor saw hello down after %s, want within ~%s", took, 2*monitorEvery)
		}
		if down.Error == "" && down.Detail == "" {
			t.Errorf("a down monitor says nothing of why: %+v", down)
		}
		var fired alertPayload
		waitFor(t, "the alert at the webhook", 30*time.Second, func() bool {
			var ok bool
			fired, ok = am.find("hello:down", "firing")
			return ok
		})
		if a := fired.Alerts; len(a) != 1 || a[0].Labels["app"] != "hello" || !strings.Contains(a[0].Annotations["changed_since"], "scale") {
			t.Errorf("firing alert %+v: want app hello and the scale to 0 as what changed before it", fired)
		}
		if _, err := e.Client.Scale(ctx, "hello", 1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the resolve at the webhook", 60*time.Second, func() bool {
			_, ok := am.find("hello:down", "resolved")
			return ok
		})
		as, err := e.Client.Alerts(ctx)
		if err != nil || len(as) == 0 || as[0].State != "resolved" {
			t.Errorf("noops alerts = %+v, %v: want the resolved alert", as, err)
		}
	})

	t.Run("noops logs -f follows new lines", func(t *testing.T) {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		want := trace.New()
		seen := make(chan struct{})
		go func() {
			_ = e.Client.Logs(fctx, "hello", apitype.LogQuery{Lines: 0, Follow: true, Streams: []string{"access"}}, func(l apitype.LogLine) error {
				if l.TraceID == want.TraceIDString() {
					close(seen)
					return context.Canceled
				}
				return nil
			})
		}()
		time.Sleep(500 * time.Millisecond) // the follower is listening
		e.do(t, http.MethodGet, "hello", "/?from=follow", "", http.Header{"Traceparent": {want.String()}})
		select {
		case <-seen:
		case <-fctx.Done():
			t.Fatal("logs -f did not show the new request's access line")
		}
	})

	t.Run("noops logs greps the app's own output", func(t *testing.T) {
		var n int
		err := e.Client.Logs(ctx, "hello", apitype.LogQuery{Lines: -1, Grep: "listening", Streams: []string{"stderr", "stdout"}}, func(apitype.LogLine) error {
			n++
			return nil
		})
		if err != nil || n == 0 {
			t.Errorf("logs --grep listening: %d lines, %v; want hello's start-up line", n, err)
		}
		var platform []string
		err = e.Client.Logs(ctx, "hello", apitype.LogQuery{Lines: -1, Streams: []string{"platform"}}, func(l apitype.LogLine) error {
			platform = append(platform, l.Line)
			return nil
		})
		if all := strings.Join(platform, "\n"); err != nil || !strings.Contains(all, "deploy: release 1 is live") || !strings.Contains(all, "monitor app:hello is down") {
			t.Errorf("platform lines of hello: %q, %v; want the deploy and the monitor's change", platform, err)
		}
	})
}

// hasExemplar reports whether an OpenMetrics scrape has a bucket of
// http_server_request_duration_seconds with label whose exemplar is traceID.
func hasExemplar(om, label, traceID string) bool {
	for _, l := range strings.Split(om, "\n") {
		if strings.HasPrefix(l, "http_server_request_duration_seconds_bucket{") && strings.Contains(l, label) &&
			strings.Contains(l, `# {trace_id="`+traceID+`"}`) {
			return true
		}
	}
	return false
}

func grepLines(s, sub string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
