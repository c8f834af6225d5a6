package api

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"noops/internal/apitype"
	"noops/internal/errkind"
)

// Logs queries the log store.
type Logs interface {
	Logs(ctx context.Context, app string, q apitype.LogQuery, emit func(apitype.LogLine) error) error
}

// Observe serves the rest of the telemetry: the metric history, traces,
// uptime monitors and alerts.
type Observe interface {
	Metrics(ctx context.Context, app string, window, step time.Duration) (apitype.MetricsSummary, error)
	Trace(ctx context.Context, id string) (apitype.Trace, error)
	Traces(ctx context.Context, q apitype.TraceQuery) ([]apitype.TraceSummary, error)
	Monitors(ctx context.Context) []apitype.Monitor
	// Push records a push monitor's check in: ok false reports a failure.
	Push(ctx context.Context, token string, ok bool, msg string) error
	Alerts(ctx context.Context) []apitype.Alert
}

// pushPattern is public: a push monitor's token is its credential, and a
// cron job calling it has no device certificate.
const pushPattern = "GET /v1/push/{token}"

func (s *server) observeRoutes(handle func(string, func(http.ResponseWriter, *http.Request) error)) {
	handle("GET /v1/apps/{app}/metrics", s.appMetrics)
	handle("GET /v1/traces", s.traces)
	handle("GET /v1/traces/{id}", s.trace)
	handle("GET /v1/monitors", s.monitors)
	handle(pushPattern, s.push)
	handle("GET /v1/alerts", s.alerts)
}

// logQuery reads GET /v1/apps/{app}/logs's parameters.
func logQuery(r *http.Request) (apitype.LogQuery, error) {
	v := r.URL.Query()
	var q apitype.LogQuery
	var err error
	if q.From, err = timeParam(r, "from"); err != nil {
		return q, err
	}
	def := 100
	if !q.From.IsZero() {
		def = -1
	}
	if v.Get("lines") == "all" {
		q.Lines = -1
	} else if q.Lines, err = intParam(r, "lines", def); err != nil {
		return q, err
	}
	if q.To, err = timeParam(r, "to"); err != nil {
		return q, err
	}
	q.Grep, q.Regexp, q.TraceID = v.Get("grep"), v.Get("regexp"), v.Get("trace")
	if q.Regexp != "" {
		if _, err := regexp.Compile(q.Regexp); err != nil {
			return q, errkind.Errorf(errkind.Invalid, "query parameter regexp: %v", err)
		}
	}
	q.Streams = v["stream"]
	for _, f := range v["field"] {
		k, val, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return q, errkind.Errorf(errkind.Invalid, "query parameter field=%q is not NAME=VALUE", f)
		}
		if q.Fields == nil {
			q.Fields = map[string]string{}
		}
		q.Fields[k] = val
	}
	q.Follow = v.Get("follow") == "1"
	return q, nil
}

func (s *server) logs(w http.ResponseWriter, r *http.Request) error {
	q, err := logQuery(r)
	if err != nil {
		return err
	}
	app := r.PathValue("app")
	if _, err := s.cfg.Plane.App(r.Context(), app); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	started := false
	return s.cfg.Logs.Logs(r.Context(), app, q, func(l apitype.LogLine) error {
		if !started {
			w.WriteHeader(http.StatusOK)
			started = true
		}
		b, err := jsonLine(l)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if q.Follow {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		return nil
	})
}

func (s *server) appMetrics(w http.ResponseWriter, r *http.Request) error {
	window, err := durationParam(r, "window", time.Hour)
	if err != nil {
		return err
	}
	step, err := durationParam(r, "step", 0)
	if err != nil {
		return err
	}
	app := r.PathValue("app")
	if _, err := s.cfg.Plane.App(r.Context(), app); err != nil {
		return err
	}
	sum, err := s.cfg.Observe.Metrics(r.Context(), app, window, step)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

func (s *server) trace(w http.ResponseWriter, r *http.Request) error {
	id := strings.ToLower(r.PathValue("id"))
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return errkind.Errorf(errkind.Invalid, "%q is not a trace ID: 32 hexadecimal digits", r.PathValue("id"))
	}
	t, err := s.cfg.Observe.Trace(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *server) traces(w http.ResponseWriter, r *http.Request) error {
	q := apitype.TraceQuery{App: r.URL.Query().Get("app"), ErrorsOnly: r.URL.Query().Get("errors") == "1"}
	var err error
	if q.From, err = timeParam(r, "from"); err != nil {
		return err
	}
	if q.To, err = timeParam(r, "to"); err != nil {
		return err
	}
	if q.MinDuration, err = durationParam(r, "min", 0); err != nil {
		return err
	}
	if q.Limit, err = intParam(r, "limit", 20); err != nil {
		return err
	}
	out, err := s.cfg.Observe.Traces(r.Context(), q)
	if err != nil {
		return err
	}
	if out == nil {
		out = []apitype.TraceSummary{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) monitors(w http.ResponseWriter, r *http.Request) error {
	out := s.cfg.Observe.Monitors(r.Context())
	if app := r.URL.Query().Get("app"); app != "" {
		kept := out[:0]
		for _, m := range out {
			if m.App == app {
				kept = append(kept, m)
			}
		}
		out = kept
	}
	if out == nil {
		out = []apitype.Monitor{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) push(w http.ResponseWriter, r *http.Request) error {
	ok := true
	switch st := r.URL.Query().Get("status"); st {
	case "", "up":
	case "down":
		ok = false
	default:
		return errkind.Errorf(errkind.Invalid, "status=%q: give up or down", st)
	}
	msg := r.URL.Query().Get("msg")
	if len(msg) > 512 {
		msg = msg[:512]
	}
	if err := s.cfg.Observe.Push(r.Context(), r.PathValue("token"), ok, msg); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (s *server) alerts(w http.ResponseWriter, r *http.Request) error {
	out := s.cfg.Observe.Alerts(r.Context())
	if out == nil {
		out = []apitype.Alert{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// timeParam reads an RFC 3339 time; "" is the zero time.
func timeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errkind.Errorf(errkind.Invalid, "query parameter %s=%q is not an RFC 3339 time", name, v)
	}
	return t, nil
}

// durationParam reads a positive Go duration ("90s", "1h").
func durationParam(r *http.Request, name string, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > 90*24*time.Hour {
		return 0, errkind.Errorf(errkind.Invalid, "query parameter %s=%q is not a duration between 0 and 90 days (like 90s or 1h)", name, v)
	}
	return d, nil
}

// jsonLine is v as one line of JSON.
func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Capture limits.
const (
	maxCapture      = 10 * time.Minute
	maxCaptureBytes = 4 << 30
)

// capture streams a sandbox's traffic as pcapng. It is a POST, so it is
// audited: a capture holds whatever the app exchanged.
func (s *server) capture(w http.ResponseWriter, r *http.Request) error {
	d, err := durationParam(r, "duration", 30*time.Second)
	if err != nil {
		return err
	}
	if d <= 0 || d > maxCapture {
		return errkind.Errorf(errkind.Invalid, "duration %s: a capture lasts between 1s and %s", d, maxCapture)
	}
	maxBytes := int64(256 << 20)
	if v := r.URL.Query().Get("max_bytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n > maxCaptureBytes {
			return errkind.Errorf(errkind.Invalid, "max_bytes=%q: give a number of bytes up to %d", v, int64(maxCaptureBytes))
		}
		maxBytes = n
	}
	app := r.PathValue("app")
	if _, err := s.cfg.Plane.App(r.Context(), app); err != nil {
		return err
	}
	setDetail(r, "capture of "+d.String())
	w.Header().Set("Content-Type", "application/x-pcapng")
	return s.cfg.Capture(r.Context(), app, r.URL.Query().Get("sandbox"), d, maxBytes, w)
}
