package otlp

import (
	"context"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters may compress with gzip
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ServerOptions are the options the gRPC server that serves the receiver
// must be created with: the message size bound (Config.MaxBody), which
// gRPC applies after decompression too.
func (r *Receiver) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(r.cfg.MaxBody)}
}

// RegisterGRPC registers the OTLP collector services on s: TraceService
// always, LogsService and MetricsService when their callbacks are set.
// Create s with ServerOptions to bound message sizes. Errors map to
// INVALID_ARGUMENT (bad data), UNAUTHENTICATED and PERMISSION_DENIED
// (the caller), RESOURCE_EXHAUSTED or UNAVAILABLE with RetryInfo (busy)
// and INTERNAL.
func (r *Receiver) RegisterGRPC(s *grpc.Server) {
	coltracepb.RegisterTraceServiceServer(s, traceService{r: r})
	if r.cfg.Logs != nil {
		collogspb.RegisterLogsServiceServer(s, logsService{r: r})
	}
	if r.cfg.Metrics != nil {
		colmetricspb.RegisterMetricsServiceServer(s, metricsService{r: r})
	}
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (t traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	app, err := t.r.grpcCaller(ctx)
	if err != nil {
		return nil, err
	}
	out, err := t.r.traces(ctx, app, req)
	if err != nil {
		return nil, t.r.grpcError("traces", app, err)
	}
	return out, nil
}

type logsService struct {
	collogspb.UnimplementedLogsServiceServer
	r *Receiver
}

func (l logsService) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	app, err := l.r.grpcCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.r.cfg.Logs(ctx, app, req); err != nil {
		return nil, l.r.grpcError("logs", app, err)
	}
	return &collogspb.ExportLogsServiceResponse{}, nil
}

type metricsService struct {
	colmetricspb.UnimplementedMetricsServiceServer
	r *Receiver
}

func (m metricsService) Export(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	app, err := m.r.grpcCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.r.cfg.Metrics(ctx, app, req); err != nil {
		return nil, m.r.grpcError("metrics", app, err)
	}
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

// grpcCaller identifies the caller, mapping a refusal to its status.
func (r *Receiver) grpcCaller(ctx context.Context) (string, error) {
	r.stats.requests.Add(1)
	app, err := r.cfg.CallerGRPC(ctx)
	if err == nil {
		return app, nil
	}
	herr := r.callerError(err)
	r.count(herr)
	return "", status.Error(httpCodes[herr.status], herr.msg)
}

// grpcError maps a callback's error to a status, with RetryInfo when the
// client should retry.
func (r *Receiver) grpcError(what, app string, err error) error {
	herr := r.callbackError(what, app, err)
	r.count(herr)
	code := httpCodes[herr.status]
	if !herr.retry {
		return status.Error(code, herr.msg)
	}
	st, derr := status.New(code, herr.msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.cfg.RetryAfter)})
	if derr != nil {
		return status.Error(code, herr.msg)
	}
	return st.Err()
}
