package apitype

import "time"

// LogQuery selects an app's log lines: GET /v1/apps/{app}/logs with the
// parameters lines (a count or "all"; default 100, or all with from),
// from, to, grep, regexp, field (repeated, NAME=VALUE), stream
// (repeated), trace and follow. The answer is JSON lines, one
// LogLine each, oldest first.
type LogQuery struct {
	Lines   int               // the last Lines matches; -1: all of them (lines=all)
	From    time.Time         // zero: no lower bound
	To      time.Time         // zero: no upper bound
	Grep    string            // text the line contains
	Regexp  string            // RE2 expression the line matches
	Fields  map[string]string // parsed JSON fields (and access-log fields) equal to these
	Streams []string          // stdout, stderr, access, platform, otlp; none: all
	TraceID string
	Follow  bool // keep sending new lines
}

// LogLine is one line of an app's logs. Access lines carry the request
// in Access; the others their text in Line.
type LogLine struct {
	Time     time.Time  `json:"time"`
	App      string     `json:"app,omitempty"`
	Stream   string     `json:"stream"`
	Sandbox  string     `json:"sandbox,omitempty"`
	TraceID  string     `json:"trace_id,omitempty"`
	SpanID   string     `json:"span_id,omitempty"`
	Severity string     `json:"severity,omitempty"`
	Line     string     `json:"line,omitempty"`
	Access   *AccessLog `json:"access,omitempty"`
}

// AccessLog is one request the gateway answered.
type AccessLog struct {
	Method     string  `json:"method"`
	Host       string  `json:"host"`
	Path       string  `json:"path"`
	Proto      string  `json:"proto,omitempty"`
	Status     int     `json:"status"`
	DurationMs float64 `json:"duration_ms"`
	BytesIn    int64   `json:"bytes_in"`
	BytesOut   int64   `json:"bytes_out"`
	Client     string  `json:"client,omitempty"`
	User       string  `json:"user,omitempty"`
	UserAgent  string  `json:"user_agent,omitempty"`
	Referer    string  `json:"referer,omitempty"`
}

// MetricsSummary is an app's requests over a window, from the metric
// history: GET /v1/apps/{app}/metrics?window=1h&step=1m.
type MetricsSummary struct {
	App        string         `json:"app"`
	Window     string         `json:"window"`
	Requests   float64        `json:"requests"`
	Rate       float64        `json:"rate"` // requests per second
	Errors     float64        `json:"errors"`
	ErrorRatio float64        `json:"error_ratio"` // 5xx and unanswered over all
	P50Ms      float64        `json:"p50_ms"`
	P95Ms      float64        `json:"p95_ms"`
	P99Ms      float64        `json:"p99_ms"`
	CPU        float64        `json:"cpu_cores"`
	Memory     float64        `json:"memory_bytes"`
	Pids       float64        `json:"pids"`
	Exemplar   string         `json:"exemplar_trace_id,omitempty"` // a slow request's trace
	Points     []MetricsPoint `json:"points,omitempty"`
}

// MetricsPoint is one step of a MetricsSummary's series.
type MetricsPoint struct {
	Time       time.Time `json:"time"`
	Rate       float64   `json:"rate"`
	ErrorRatio float64   `json:"error_ratio"`
	P95Ms      float64   `json:"p95_ms"`
}

// Span is one span of a trace: GET /v1/traces/{id} answers a Trace.
type Span struct {
	TraceID       string            `json:"trace_id"`
	SpanID        string            `json:"span_id"`
	ParentID      string            `json:"parent_id,omitempty"`
	Name          string            `json:"name"`
	Kind          string            `json:"kind,omitempty"`
	Service       string            `json:"service,omitempty"`
	App           string            `json:"app,omitempty"`
	Start         time.Time         `json:"start"`
	End           time.Time         `json:"end"`
	Status        string            `json:"status,omitempty"`
	StatusMessage string            `json:"status_message,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
}

// Trace is the spans of one trace, by start time.
type Trace struct {
	TraceID string `json:"trace_id"`
	Spans   []Span `json:"spans"`
}

// TraceSummary is one trace in a search: GET /v1/traces?app=&from=&min=&errors=1&limit=.
type TraceSummary struct {
	TraceID    string    `json:"trace_id"`
	Root       string    `json:"root"`
	Service    string    `json:"service,omitempty"`
	App        string    `json:"app,omitempty"`
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"duration_ms"`
	Spans      int       `json:"spans"`
	Errors     int       `json:"errors"`
}

// Monitor is an uptime monitor's state: GET /v1/monitors.
type Monitor struct {
	Name      string             `json:"name"`
	App       string             `json:"app,omitempty"`
	Kind      string             `json:"kind"`
	Target    string             `json:"target,omitempty"`
	State     string             `json:"state"` // pending, up, down, flapping
	Since     time.Time          `json:"since"`
	LastCheck time.Time          `json:"last_check,omitempty"`
	LatencyMs float64            `json:"latency_ms"`
	Error     string             `json:"error,omitempty"`
	Detail    string             `json:"detail,omitempty"`
	Uptime    map[string]float64 `json:"uptime,omitempty"` // "24h", "7d"
	Interval  string             `json:"interval"`
	Recent    []bool             `json:"recent,omitempty"` // the last checks, oldest first
}

// Alert is an active or recently resolved alert: GET /v1/alerts.
type Alert struct {
	Rule       string            `json:"rule"`
	App        string            `json:"app,omitempty"`
	State      string            `json:"state"` // pending, firing, resolved
	Severity   string            `json:"severity,omitempty"`
	Summary    string            `json:"summary,omitempty"`
	Value      float64           `json:"value"`
	Labels     map[string]string `json:"labels,omitempty"`
	ActiveAt   time.Time         `json:"active_at"`
	FiredAt    time.Time         `json:"fired_at,omitempty"`
	ResolvedAt time.Time         `json:"resolved_at,omitempty"`
	Changes    []string          `json:"changes,omitempty"` // deploy markers before it: "deploy release 12 at 14:02"
}

// TraceQuery selects recent traces.
type TraceQuery struct {
	App         string
	From, To    time.Time
	MinDuration time.Duration
	ErrorsOnly  bool
	Limit       int
}
