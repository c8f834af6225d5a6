package app

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protojson"

	"noops/internal/errkind"
	"noops/internal/observe/logstore"
	"noops/internal/observe/tracestore"
)

// What the internal listener serves for the platform (any Host): events
// published by workloads, and OTLP over HTTP and gRPC.
type internalPlatform struct{ a *App }

func (p internalPlatform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case isOTLPGRPC(r):
		p.a.otlpGRPC.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, OTLPPrefix+"/"):
		http.StripPrefix(OTLPPrefix, p.a.otlp).ServeHTTP(w, r)
	default:
		p.a.functions.ServeHTTP(w, r)
	}
}

// otlpGRPCPrefix starts the paths of OTLP's gRPC services.
const otlpGRPCPrefix = "/opentelemetry.proto.collector."

// isOTLPGRPC reports whether r is an OTLP/gRPC call, which the gateway's
// internal listener hands to the platform whatever its Host.
func isOTLPGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.URL.Path, otlpGRPCPrefix) &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// newOTLPServer is the gRPC server of OTLP's three services, served
// through the internal listener's HTTP/2 (grpc.Server.ServeHTTP).
func newOTLPServer(rcv interface{ RegisterGRPC(*grpc.Server) }) *grpc.Server {
	s := grpc.NewServer(grpc.MaxRecvMsgSize(4<<20), grpc.MaxConcurrentStreams(64))
	rcv.RegisterGRPC(s)
	return s
}

// grpcCaller is access.Caller for gRPC: the workload whose SVID the
// internal listener verified.
func (a *App) grpcCaller(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errkind.Errorf(errkind.Unauthenticated, "the internal listener needs a workload certificate")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", errkind.Errorf(errkind.Unauthenticated, "the internal listener needs a workload certificate")
	}
	return a.access.Caller(&http.Request{TLS: &ti.State})
}

// receivedSpans stores an app's spans and forwards them.
func (a *App) receivedSpans(_ context.Context, app string, spans []tracestore.Span) error {
	if err := a.traces.Add(spans...); err != nil {
		return err
	}
	if a.batcher != nil {
		for _, s := range spans {
			a.batcher.span(s)
		}
	}
	return nil
}

// receivedLogs stores an app's OTLP log records in its logs (stream
// "otlp") and forwards the request as it came.
func (a *App) receivedLogs(_ context.Context, app string, req *collogspb.ExportLogsServiceRequest) error {
	var recs []logstore.Record
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				t := time.Unix(0, int64(lr.GetTimeUnixNano()))
				if lr.GetTimeUnixNano() == 0 {
					t = time.Unix(0, int64(lr.GetObservedTimeUnixNano()))
				}
				if t.Unix() <= 0 {
					t = time.Now()
				}
				sev := lr.GetSeverityText()
				if sev == "" && lr.GetSeverityNumber() != 0 {
					sev = strings.TrimPrefix(lr.GetSeverityNumber().String(), "SEVERITY_NUMBER_")
				}
				rec := logstore.Record{Time: t, App: app, Stream: "otlp", Severity: sev, Line: anyText(lr.GetBody())}
				if id := lr.GetTraceId(); len(id) == 16 {
					rec.TraceID = hex.EncodeToString(id)
				}
				if id := lr.GetSpanId(); len(id) == 8 {
					rec.SpanID = hex.EncodeToString(id)
				}
				recs = append(recs, rec)
			}
		}
	}
	if err := a.logs.Append(recs...); err != nil {
		return err
	}
	if a.export != nil {
		if err := a.export.Logs(req); err != nil {
			a.log.Warn("forwarding logs to the OTLP exporter", "app", app, "err", err)
		}
	}
	return nil
}

// receivedMetrics records an app's metrics in the history (labelled with
// the app, within its series limit) and forwards them.
func (a *App) receivedMetrics(_ context.Context, app string, req *colmetricspb.ExportMetricsServiceRequest) error {
	if _, rejected, err := a.history.AppendOTLP(app, req, time.Now()); err != nil {
		return err
	} else if rejected > 0 {
		a.log.Debug("metric points rejected", "app", app, "count", rejected)
	}
	if a.export != nil {
		if err := a.export.Metrics(req); err != nil {
			a.log.Warn("forwarding metrics to the OTLP exporter", "app", app, "err", err)
		}
	}
	return nil
}

// anyText renders an OTLP AnyValue as a log line.
func anyText(v *commonpb.AnyValue) string {
	if v == nil {
		return ""
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	}
	b, err := protojson.Marshal(v)
	if err != nil {
		return v.String()
	}
	return string(b)
}
