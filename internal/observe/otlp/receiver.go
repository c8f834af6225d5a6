package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"noops/internal/errkind"
	"noops/internal/observe/tracestore"
)

// ErrBusy is what a callback returns (wrapped or not) when it cannot take
// more data now: the client is told to retry later (HTTP 429 with
// Retry-After; gRPC RESOURCE_EXHAUSTED with RetryInfo). An error
// classified errkind.TooMany means the same; one classified
// errkind.Unavailable (as tracestore.ErrBusy is) gives HTTP 503 with
// Retry-After and gRPC UNAVAILABLE with RetryInfo.
var ErrBusy = errors.New("the receiver is busy: retry later")

// Config configures a Receiver.
type Config struct {
	// Caller identifies the app that sent an HTTP request (from the
	// workload certificate the client presented). An error classified
	// errkind.Unauthenticated refuses with 401, errkind.Permission with
	// 403; any other error with 500. Required.
	Caller func(ctx context.Context, r *http.Request) (app string, err error)
	// CallerGRPC is Caller for gRPC (the peer's TLS state is in ctx).
	// Required.
	CallerGRPC func(ctx context.Context) (app string, err error)
	// Spans takes the decoded, valid spans of a trace export, App set to
	// the caller's app. Required.
	Spans func(ctx context.Context, app string, spans []tracestore.Span) error
	// Logs and Metrics take decoded log and metric exports as they are;
	// when nil, those endpoints answer 404 (HTTP) or UNIMPLEMENTED (gRPC).
	Logs    func(ctx context.Context, app string, req *collogspb.ExportLogsServiceRequest) error
	Metrics func(ctx context.Context, app string, req *colmetricspb.ExportMetricsServiceRequest) error
	// MaxBody bounds a request's body, compressed and decompressed, and a
	// gRPC message (default 4 MiB).
	MaxBody int
	// RetryAfter is what a busy answer asks the client to wait (default 5 s).
	RetryAfter time.Duration
	// Logger gets failed callbacks (not refusals of bad input).
	Logger *slog.Logger
}

// Receiver serves the OTLP/HTTP and OTLP/gRPC collector endpoints.
type Receiver struct {
	cfg   Config
	stats stats
}

// Stats counts what a Receiver did.
type Stats struct {
	Requests  int64 // export requests, both transports
	Spans     int64 // spans handed to Config.Spans
	Rejected  int64 // spans refused as invalid (partial success)
	Malformed int64 // requests refused as malformed, too large or of an unsupported type
	Refused   int64 // requests whose caller was not identified or not allowed
	Busy      int64 // requests answered retry-later
	Failed    int64 // requests whose callback failed otherwise
}

type stats struct {
	requests, spans, rejected, malformed, refused, busy, failed atomic.Int64
}

// New checks cfg and returns a Receiver.
func New(cfg Config) (*Receiver, error) {
	if cfg.Caller == nil || cfg.CallerGRPC == nil || cfg.Spans == nil {
		return nil, errors.New("creating the OTLP receiver: Caller, CallerGRPC and Spans are required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 20
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{cfg: cfg}, nil
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() Stats {
	s := &r.stats
	return Stats{Requests: s.requests.Load(), Spans: s.spans.Load(), Rejected: s.rejected.Load(), Malformed: s.malformed.Load(),
		Refused: s.refused.Load(), Busy: s.busy.Load(), Failed: s.failed.Load()}
}

// httpError is a refusal: its status, its gRPC-style code for the
// google.rpc.Status body, and a message for the client.
type httpError struct {
	status int
	msg    string
	retry  bool // add Retry-After
}

func badRequest(format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

var httpCodes = map[int]codes.Code{
	http.StatusBadRequest:            codes.InvalidArgument,
	http.StatusUnauthorized:          codes.Unauthenticated,
	http.StatusForbidden:             codes.PermissionDenied,
	http.StatusNotFound:              codes.NotFound,
	http.StatusMethodNotAllowed:      codes.Unimplemented,
	http.StatusRequestEntityTooLarge: codes.InvalidArgument,
	http.StatusUnsupportedMediaType:  codes.InvalidArgument,
	http.StatusTooManyRequests:       codes.ResourceExhausted,
	http.StatusServiceUnavailable:    codes.Unavailable,
	http.StatusInternalServerError:   codes.Internal,
}

// signal is one of the three OTLP signals.
type signal int

const (
	sigTraces signal = iota
	sigLogs
	sigMetrics
)

func signalOf(path string) (signal, bool) {
	switch {
	case strings.HasSuffix(path, "/v1/traces"):
		return sigTraces, true
	case strings.HasSuffix(path, "/v1/logs"):
		return sigLogs, true
	case strings.HasSuffix(path, "/v1/metrics"):
		return sigMetrics, true
	}
	return 0, false
}

// ServeHTTP serves OTLP/HTTP: POST of an Export*ServiceRequest to a path
// ending in /v1/traces, /v1/logs or /v1/metrics, as application/x-protobuf
// or application/json (IDs in hex), optionally gzip-compressed. The answer
// is an Export*ServiceResponse in the request's encoding, with
// partial_success when spans were rejected; a refusal is a
// google.rpc.Status in that encoding (400 malformed, 401/403 caller, 404,
// 405, 413 too large, 415 unsupported type or encoding, 429/503 with
// Retry-After when busy, 500).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	enc, encOK := requestEncoding(req.Header.Get("Content-Type"))
	if herr := r.serve(w, req, enc, encOK); herr != nil {
		r.count(herr)
		r.writeError(w, enc, herr)
	}
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request, enc encoding, encOK bool) *httpError {
	sig, ok := signalOf(req.URL.Path)
	if !ok || sig == sigLogs && r.cfg.Logs == nil || sig == sigMetrics && r.cfg.Metrics == nil {
		return &httpError{status: http.StatusNotFound, msg: "no OTLP endpoint at " + req.URL.Path}
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return &httpError{status: http.StatusMethodNotAllowed, msg: "OTLP exports are POSTed"}
	}
	r.stats.requests.Add(1)
	ctx := req.Context()
	app, err := r.cfg.Caller(ctx, req)
	if err != nil {
		return r.callerError(err)
	}
	if !encOK {
		return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %.60q is not supported: use application/x-protobuf or application/json", req.Header.Get("Content-Type"))}
	}
	body := getBuf()
	defer putBuf(body)
	if herr := readBody(req, r.cfg.MaxBody, body); herr != nil {
		return herr
	}
	var resp proto.Message
	switch sig {
	case sigTraces:
		m := &coltracepb.ExportTraceServiceRequest{}
		if err := unmarshal(enc, body.Bytes(), m); err != nil {
			return badRequest("decoding the trace export: %v", err)
		}
		out, err := r.traces(ctx, app, m)
		if err != nil {
			return r.callbackError("traces", app, err)
		}
		resp = out
	case sigLogs:
		m := &collogspb.ExportLogsServiceRequest{}
		if err := unmarshal(enc, body.Bytes(), m); err != nil {
			return badRequest("decoding the log export: %v", err)
		}
		if err := r.cfg.Logs(ctx, app, m); err != nil {
			return r.callbackError("logs", app, err)
		}
		resp = &collogspb.ExportLogsServiceResponse{}
	case sigMetrics:
		m := &colmetricspb.ExportMetricsServiceRequest{}
		if err := unmarshal(enc, body.Bytes(), m); err != nil {
			return badRequest("decoding the metric export: %v", err)
		}
		if err := r.cfg.Metrics(ctx, app, m); err != nil {
			return r.callbackError("metrics", app, err)
		}
		resp = &colmetricspb.ExportMetricsServiceResponse{}
	}
	b, err := marshal(enc, resp)
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, msg: "encoding the response"}
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// traces converts and hands over the spans of a trace export, both
// transports.
func (r *Receiver) traces(ctx context.Context, app string, m *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	spans, rejected, reason := Convert(app, m)
	if len(spans) > 0 {
		if err := r.cfg.Spans(ctx, app, spans); err != nil {
			return nil, err
		}
	}
	r.stats.spans.Add(int64(len(spans)))
	r.stats.rejected.Add(rejected)
	out := &coltracepb.ExportTraceServiceResponse{}
	if rejected > 0 {
		out.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: rejected, ErrorMessage: reason}
	}
	return out, nil
}

func marshal(enc encoding, m proto.Message) ([]byte, error) {
	if enc == encJSON {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

// callerError maps a refusal by Config.Caller.
func (r *Receiver) callerError(err error) *httpError {
	switch errkind.Of(err) {
	case errkind.Unauthenticated:
		return &httpError{status: http.StatusUnauthorized, msg: err.Error()}
	case errkind.Permission:
		return &httpError{status: http.StatusForbidden, msg: err.Error()}
	}
	r.cfg.Logger.Error("otlp: identifying the caller", "err", err)
	return &httpError{status: http.StatusInternalServerError, msg: "identifying the caller failed"}
}

// callbackError maps a callback's error.
func (r *Receiver) callbackError(what, app string, err error) *httpError {
	switch {
	case errors.Is(err, ErrBusy) || errkind.Is(err, errkind.TooMany):
		return &httpError{status: http.StatusTooManyRequests, msg: err.Error(), retry: true}
	case errkind.Is(err, errkind.Unavailable):
		return &httpError{status: http.StatusServiceUnavailable, msg: err.Error(), retry: true}
	case errkind.Is(err, errkind.Invalid):
		return badRequest("%v", err)
	case errkind.Is(err, errkind.Permission):
		return &httpError{status: http.StatusForbidden, msg: err.Error()}
	}
	r.cfg.Logger.Error("otlp: storing an export", "signal", what, "app", app, "err", err)
	return &httpError{status: http.StatusInternalServerError, msg: "storing the " + what + " failed"}
}

func (r *Receiver) count(e *httpError) {
	switch {
	case e.retry:
		r.stats.busy.Add(1)
	case e.status == http.StatusUnauthorized || e.status == http.StatusForbidden:
		r.stats.refused.Add(1)
	case e.status == http.StatusInternalServerError:
		r.stats.failed.Add(1)
	case e.status == http.StatusBadRequest || e.status == http.StatusRequestEntityTooLarge || e.status == http.StatusUnsupportedMediaType:
		r.stats.malformed.Add(1)
	}
}

// writeError answers with a google.rpc.Status in the request's encoding
// (protobuf when the request's type was not understood).
func (r *Receiver) writeError(w http.ResponseWriter, enc encoding, e *httpError) {
	if e.retry {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(r.cfg.RetryAfter.Round(time.Second)/time.Second))))
	}
	code, ok := httpCodes[e.status]
	if !ok {
		code = codes.Unknown
	}
	b, err := marshal(enc, &statuspb.Status{Code: int32(code), Message: e.msg})
	if err != nil {
		http.Error(w, e.msg, e.status)
		return
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}
