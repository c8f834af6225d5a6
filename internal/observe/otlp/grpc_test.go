package otlp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"noops/internal/errkind"
)

// serveGRPC serves r on a loopback port with a real gRPC server and
// returns a connected client.
func serveGRPC(t *testing.T, r *Receiver) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(r.ServerOptions()...)
	r.RegisterGRPC(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func as(t *testing.T, app string) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	if app == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "x-test-app", app)
}

func TestGRPCExport(t *testing.T) {
	t.Parallel()
	sk := &sink{}
	r := newTestReceiver(t, Config{MaxBody: 256 << 10, RetryAfter: 2 * time.Second}, sk)
	client := coltracepb.NewTraceServiceClient(serveGRPC(t, r))

	for _, opts := range [][]grpc.CallOption{nil, {grpc.UseCompressor(gzip.Name)}} {
		resp, err := client.Export(as(t, "shop"), sampleRequest(), opts...)
		if err != nil {
			t.Fatalf("Export = %v", err)
		}
		if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() != 2 || !strings.Contains(ps.GetErrorMessage(), "span 2: trace_id has 3 bytes") {
			t.Errorf("partial success %v", ps)
		}
	}
	_, app, spans := sk.got()
	if app != "shop" || len(spans) != 4 {
		t.Fatalf("app %q, %d spans", app, len(spans))
	}
	checkSample(t, "shop", spans[2:])

	huge := func(n int) *coltracepb.ExportTraceServiceRequest {
		req := sampleRequest()
		req.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes = append(req.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes, str("big", strings.Repeat("a", n)))
		return req
	}
	refusals := []struct {
		name string
		app  string
		err  error
		req  *coltracepb.ExportTraceServiceRequest
		opts []grpc.CallOption
		want codes.Code
	}{
		{"no certificate", "", nil, sampleRequest(), nil, codes.Unauthenticated},
		{"forbidden", "intruder", nil, sampleRequest(), nil, codes.PermissionDenied},
		{"busy", "shop", ErrBusy, sampleRequest(), nil, codes.ResourceExhausted},
		{"unavailable", "shop", errkind.Errorf(errkind.Unavailable, "store behind"), sampleRequest(), nil, codes.Unavailable},
		{"invalid", "shop", errkind.Errorf(errkind.Invalid, "no"), sampleRequest(), nil, codes.InvalidArgument},
		{"internal", "shop", errBoom, sampleRequest(), nil, codes.Internal},
		{"over the size bound", "shop", nil, huge(300 << 10), nil, codes.ResourceExhausted},
		{"gzip bomb", "shop", nil, huge(2 << 20), []grpc.CallOption{grpc.UseCompressor(gzip.Name)}, codes.ResourceExhausted},
	}
	for _, tc := range refusals {
		sk.mu.Lock()
		sk.err, sk.calls = tc.err, 0
		sk.mu.Unlock()
		_, err := client.Export(as(t, tc.app), tc.req, tc.opts...)
		st := status.Convert(err)
		if st.Code() != tc.want {
			t.Errorf("%s: Export = %v, want %v", tc.name, err, tc.want)
			continue
		}
		retry := false
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() == 2*time.Second {
				retry = true
			}
		}
		wantRetry := tc.name == "busy" || tc.name == "unavailable"
		if retry != wantRetry {
			t.Errorf("%s: RetryInfo %v, want %v (%v)", tc.name, retry, wantRetry, st.Details())
		}
		if tc.name == "internal" && strings.Contains(st.Message(), "fire") {
			t.Errorf("internal cause leaked: %q", st.Message())
		}
		if calls, _, _ := sk.got(); tc.err == nil && calls != 0 {
			t.Errorf("%s: the callback ran", tc.name)
		}
	}
}

func TestGRPCLogsAndMetrics(t *testing.T) {
	t.Parallel()
	// Without callbacks the services are not there.
	conn := serveGRPC(t, newTestReceiver(t, Config{}, &sink{}))
	if _, err := collogspb.NewLogsServiceClient(conn).Export(as(t, "shop"), &collogspb.ExportLogsServiceRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("logs without a callback: %v", err)
	}

	got := make(chan string, 2)
	r := newTestReceiver(t, Config{
		Logs: func(ctx context.Context, app string, req *collogspb.ExportLogsServiceRequest) error {
			got <- fmt.Sprintf("logs %s %d", app, len(req.GetResourceLogs()))
			return nil
		},
		Metrics: func(ctx context.Context, app string, req *colmetricspb.ExportMetricsServiceRequest) error {
			got <- "metrics " + app
			return ErrBusy
		},
	}, &sink{})
	conn = serveGRPC(t, r)
	logsReq := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{}}}
	if _, err := collogspb.NewLogsServiceClient(conn).Export(as(t, "shop"), logsReq); err != nil {
		t.Fatal(err)
	}
	if _, err := colmetricspb.NewMetricsServiceClient(conn).Export(as(t, "shop"), &colmetricspb.ExportMetricsServiceRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("busy metrics: %v", err)
	}
	if _, err := colmetricspb.NewMetricsServiceClient(conn).Export(as(t, ""), &colmetricspb.ExportMetricsServiceRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous metrics: %v", err)
	}
	if a, b := <-got, <-got; a != "logs shop 1" || b != "metrics shop" {
		t.Errorf("callbacks saw %q, %q", a, b)
	}
	if st := r.Stats(); st.Requests != 3 || st.Busy != 1 || st.Refused != 1 {
		t.Errorf("stats %+v", st)
	}
}
