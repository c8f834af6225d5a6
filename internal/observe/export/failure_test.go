package export

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestHTTPStatusClasses: what each reply does to the batch, per the OTLP
// specification (and the refusal rule of this package).
func TestHTTPStatusClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		want   class
	}{
		{400, permanent}, {413, permanent}, {422, permanent}, {500, permanent}, {501, permanent},
		{401, refused}, {403, refused}, {404, refused}, {301, refused}, {307, refused},
		{429, retryable}, {502, retryable}, {503, retryable}, {504, retryable},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			rc, srv := newHTTPReceiver(t)
			rc.respond = func(int, string, []string) reply {
				return reply{status: tc.status, header: http.Header{"Location": {"https://elsewhere.example/"}}}
			}
			c := newHTTPClient(mustTarget(t, srv.URL, ProtocolHTTP), &Config{Compression: "gzip", Now: time.Now})
			defer c.close()
			_, err := c.export(context.Background(), kindTraces, mustMarshal(traceReq("a")))
			var xe *exportError
			if !errors.As(err, &xe) || xe.class != tc.want {
				t.Fatalf("export with reply %d = %v, want class %d", tc.status, err, tc.want)
			}
			if !strings.Contains(xe.msg, fmt.Sprintf("HTTP %d", tc.status)) {
				t.Errorf("error %q does not give the status", xe.msg)
			}
		})
	}
}

func mustTarget(t *testing.T, endpoint, protocol string) target {
	t.Helper()
	tg, err := parseEndpoint(&Config{Endpoint: endpoint, Protocol: protocol})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestGRPCStatusClasses(t *testing.T) {
	t.Parallel()
	withRetry := func(c codes.Code, d time.Duration) *status.Status {
		st, err := status.New(c, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		must(err)
		return st
	}
	for _, tc := range []struct {
		name  string
		st    *status.Status
		want  class
		after time.Duration
	}{
		{"unavailable", status.New(codes.Unavailable, "down"), retryable, 0},
		{"unavailable with delay", withRetry(codes.Unavailable, 3*time.Second), retryable, 3 * time.Second},
		{"deadline", status.New(codes.DeadlineExceeded, ""), retryable, 0},
		{"aborted", status.New(codes.Aborted, ""), retryable, 0},
		{"exhausted with RetryInfo", withRetry(codes.ResourceExhausted, 2*time.Second), retryable, 2 * time.Second},
		{"exhausted without", status.New(codes.ResourceExhausted, "too big"), permanent, 0},
		{"invalid argument", status.New(codes.InvalidArgument, "bad span"), permanent, 0},
		{"internal", status.New(codes.Internal, ""), permanent, 0},
		{"unauthenticated", status.New(codes.Unauthenticated, ""), refused, 0},
		{"permission denied", status.New(codes.PermissionDenied, ""), refused, 0},
		{"unimplemented", status.New(codes.Unimplemented, ""), refused, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xe := grpcError(kindLogs, "https://x:4317", tc.st)
			if xe.class != tc.want || xe.after != tc.after {
				t.Errorf("grpcError(%v) = class %d after %v, want %d after %v", tc.st.Code(), xe.class, xe.after, tc.want, tc.after)
			}
		})
	}
}

// TestRejectedBatchDropped: a 400 drops that batch only, with the reason
// logged and counted; the batches around it are delivered.
func TestRejectedBatchDropped(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			rc, endpoint := receiverFor(t, protocol)
			rc.respond = func(_ int, _ string, names []string) reply {
				if slices.Contains(names, "bad") {
					return reply{status: http.StatusBadRequest, message: "span bad has no end time",
						grpcErr: status.Error(codes.InvalidArgument, "span bad has no end time")}
				}
				return reply{}
			}
			cfg := testConfig(t, endpoint)
			cfg.Protocol = protocol
			cfg.MaxRequestBytes = 1
			var logs logBuffer
			cfg.Logger = logs.logger()
			e := newExporter(t, cfg)
			for _, n := range []string{"good-1", "bad", "good-2"} {
				must(e.Traces(traceReq(n)))
			}
			start(t, e)
			waitFor(t, "delivery", func() bool { return e.Stats().Traces.QueuedBatches == 0 })
			if got, want := rc.spanNames(), []string{"good-1", "good-2"}; !slices.Equal(got, want) {
				t.Errorf("received %v, want %v", got, want)
			}
			st := e.Stats().Traces
			if st.Dropped[DropRejected] != 1 || st.Sent != 2 || st.Retries != 0 {
				t.Errorf("stats = %+v, want 1 rejected, 2 sent, no retries", st)
			}
			if !strings.Contains(st.LastError, "span bad has no end time") {
				t.Errorf("LastError %q lacks the receiver's reason", st.LastError)
			}
			if !strings.Contains(logs.String(), "span bad has no end time") {
				t.Errorf("reason not logged:\n%s", logs.String())
			}
		})
	}
}

// TestPartialSuccess: a partial success counts as delivered; the rejected
// items are counted and logged.
func TestPartialSuccess(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			rc, endpoint := receiverFor(t, protocol)
			rc.respond = func(int, string, []string) reply { return reply{rejected: 2} }
			cfg := testConfig(t, endpoint)
			cfg.Protocol = protocol
			var logs logBuffer
			cfg.Logger = logs.logger()
			e := newExporter(t, cfg)
			must(e.Traces(traceReq("a")))
			start(t, e)
			waitFor(t, "delivery", func() bool { return e.Stats().Traces.Sent == 1 })
			if st := e.Stats().Traces; st.RejectedItems != 2 || len(st.Dropped) != 0 {
				t.Errorf("stats = %+v, want 2 rejected items", st)
			}
			if !strings.Contains(logs.String(), "spans too old") {
				t.Errorf("partial success not logged:\n%s", logs.String())
			}
		})
	}
}

// TestGRPCRetryInfo: ResourceExhausted with RetryInfo is retried after the
// delay the receiver gave.
func TestGRPCRetryInfo(t *testing.T) {
	t.Parallel()
	rc, endpoint := receiverFor(t, ProtocolGRPC)
	st, err := status.New(codes.ResourceExhausted, "over quota").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(4 * time.Second)})
	must(err)
	rc.respond = func(n int, _ string, _ []string) reply {
		if n == 1 {
			return reply{grpcErr: st.Err()}
		}
		return reply{}
	}
	cfg := testConfig(t, endpoint)
	cfg.Protocol = ProtocolGRPC
	cfg.MaxBackoff = time.Minute
	e := newExporter(t, cfg)
	w := &waits{}
	e.sleep = w.sleep
	must(e.Traces(traceReq("a")))
	start(t, e)
	waitFor(t, "delivery", func() bool { return e.Stats().Traces.Sent == 1 })
	if got := w.list(); !slices.Equal(got, []time.Duration{4 * time.Second}) {
		t.Errorf("waits = %v, want [4s]", got)
	}
}

// TestHangBounded: a receiver that never answers costs Timeout per
// attempt, and does not hold up Stop.
func TestHangBounded(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			rc, endpoint := receiverFor(t, protocol)
			rc.respond = func(int, string, []string) reply { return reply{hang: true} }
			cfg := testConfig(t, endpoint)
			cfg.Protocol = protocol
			cfg.Timeout = 50 * time.Millisecond
			e := newExporter(t, cfg)
			must(e.Traces(traceReq("a")))
			start(t, e)
			begin := time.Now()
			waitFor(t, "timeouts", func() bool { return e.Stats().Traces.Retries >= 2 })
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("two attempts took %v with a 50ms timeout", d)
			}
			st := e.Stats().Traces
			if !strings.Contains(st.LastError, "timed out") && !strings.Contains(st.LastError, "DeadlineExceeded") {
				t.Errorf("LastError = %q, want a timeout", st.LastError)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			begin = time.Now()
			must(e.Stop(ctx))
			if d := time.Since(begin); d > 2*time.Second {
				t.Errorf("Stop took %v", d)
			}
			if n := e.Stats().Traces.QueuedBatches; n != 1 {
				t.Errorf("%d batches queued after Stop, want 1 kept", n)
			}
		})
	}
}

// TestHeadersSecret: the authorization header reaches the receiver but
// never a log, an error or Stats, even when the receiver echoes it; a
// refused token keeps the data until it is fixed.
func TestHeadersSecret(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-t0ken-0123456789"
	for _, protocol := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			rc, endpoint := receiverFor(t, protocol)
			rc.respond = func(n int, _ string, _ []string) reply {
				if n <= 3 {
					return reply{status: http.StatusUnauthorized, message: "token Bearer " + token + " is not valid (" + token + ")",
						grpcErr: status.Error(codes.Unauthenticated, "token "+token+" is not valid")}
				}
				return reply{}
			}
			cfg := testConfig(t, endpoint)
			cfg.Protocol = protocol
			cfg.Headers = map[string]string{"Authorization": "Bearer " + token}
			var logs logBuffer
			cfg.Logger = logs.logger()
			e := newExporter(t, cfg)
			must(e.Traces(traceReq("a")))
			start(t, e)
			waitFor(t, "refusals", func() bool { return e.Stats().Traces.Retries >= 2 })
			st := e.Stats().Traces
			if !st.Refused || !strings.Contains(st.LastError, "401") && !strings.Contains(st.LastError, "Unauthenticated") {
				t.Errorf("while refused: Refused %v, LastError %q", st.Refused, st.LastError)
			}
			waitFor(t, "delivery once accepted", func() bool { return e.Stats().Traces.Sent == 1 })
			must(e.Stop(context.Background()))
			if st := e.Stats().Traces; st.Refused || len(st.Dropped) != 0 {
				t.Errorf("after acceptance: %+v", st)
			}
			rc.mu.Lock()
			got := rc.headers[0].Get("Authorization")
			rc.mu.Unlock()
			if got != "Bearer "+token {
				t.Errorf("receiver got Authorization %q", got)
			}
			out := logs.String() + fmt.Sprintf("%+v", e.Stats())
			if strings.Contains(out, token) {
				t.Errorf("token leaked:\n%s", out)
			}
			if !strings.Contains(out, "[REDACTED]") {
				t.Errorf("the echoed token was not cut out:\n%s", out)
			}
		})
	}
}
