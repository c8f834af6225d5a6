package export

import (
	"context"
	"fmt"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcClient speaks OTLP/gRPC over one connection.
type grpcClient struct {
	conn    *grpc.ClientConn
	display string
	md      metadata.MD
	opts    []grpc.CallOption
	traces  coltracepb.TraceServiceClient
	metrics colmetricspb.MetricsServiceClient
	logs    collogspb.LogsServiceClient
}

// newGRPCClient sets up the connection; it dials lazily, on the first
// export.
func newGRPCClient(t target, cfg *Config) (*grpcClient, error) {
	creds := credentials.NewTLS(tlsConfig(cfg.TLS))
	if t.insecure {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(t.base.Host,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("noops-otlp-exporter"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxReply)))
	if err != nil {
		return nil, fmt.Errorf("setting up gRPC to %s: %w", t.display, err)
	}
	c := &grpcClient{
		conn:    conn,
		display: t.display,
		md:      metadata.MD{},
		traces:  coltracepb.NewTraceServiceClient(conn),
		metrics: colmetricspb.NewMetricsServiceClient(conn),
		logs:    collogspb.NewLogsServiceClient(conn),
	}
	for k, v := range cfg.Headers {
		c.md.Set(strings.ToLower(k), v)
	}
	if cfg.Compression == "gzip" {
		c.opts = append(c.opts, grpc.UseCompressor(gzip.Name))
	}
	return c, nil
}

func (c *grpcClient) close() { c.conn.Close() }

func (c *grpcClient) export(ctx context.Context, k kind, payload []byte) (partial, error) {
	if len(c.md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, c.md)
	}
	var (
		p   partial
		err error
	)
	switch k {
	case kindTraces:
		req := &coltracepb.ExportTraceServiceRequest{}
		if err = proto.Unmarshal(payload, req); err == nil {
			var r *coltracepb.ExportTraceServiceResponse
			r, err = c.traces.Export(ctx, req, c.opts...)
			p = partial{r.GetPartialSuccess().GetRejectedSpans(), r.GetPartialSuccess().GetErrorMessage()}
		}
	case kindMetrics:
		req := &colmetricspb.ExportMetricsServiceRequest{}
		if err = proto.Unmarshal(payload, req); err == nil {
			var r *colmetricspb.ExportMetricsServiceResponse
			r, err = c.metrics.Export(ctx, req, c.opts...)
			p = partial{r.GetPartialSuccess().GetRejectedDataPoints(), r.GetPartialSuccess().GetErrorMessage()}
		}
	case kindLogs:
		req := &collogspb.ExportLogsServiceRequest{}
		if err = proto.Unmarshal(payload, req); err == nil {
			var r *collogspb.ExportLogsServiceResponse
			r, err = c.logs.Export(ctx, req, c.opts...)
			p = partial{r.GetPartialSuccess().GetRejectedLogRecords(), r.GetPartialSuccess().GetErrorMessage()}
		}
	}
	if err == nil {
		return p, nil
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC: the queued bytes did not decode.
		return partial{}, newExportError(permanent, 0, "decoding queued %s: %v", k, err)
	}
	return partial{}, grpcError(k, c.display, st)
}

// grpcError classifies a failed call as the OTLP specification says.
func grpcError(k kind, display string, st *status.Status) *exportError {
	var after time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().IsValid() {
			after = max(ri.GetRetryDelay().AsDuration(), 0)
		}
	}
	msg := fmt.Sprintf("exporting %s to %s: gRPC %s%s", k, display, st.Code(), quoteMsg(st.Message()))
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return &exportError{class: retryable, after: after, msg: msg}
	case codes.ResourceExhausted:
		// Retryable only when the receiver says when to retry.
		if after > 0 || hasRetryInfo(st) {
			return &exportError{class: retryable, after: after, msg: msg}
		}
		return &exportError{class: permanent, msg: msg}
	case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
		return &exportError{class: refused, msg: msg}
	default:
		return &exportError{class: permanent, msg: msg}
	}
}

func hasRetryInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}
