package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"noops/internal/observe/otlp"
	"noops/internal/observe/tracestore"
)

// TestInternalPlatformServesOTLP: the internal listener's platform
// handler takes OTLP over gRPC (HTTP/2, any path of OTLP's services) and
// over HTTP under /.noops/otlp, both reaching the receiver.
func TestInternalPlatformServesOTLP(t *testing.T) {
	var mu sync.Mutex
	var got []tracestore.Span
	rcv, err := otlp.New(otlp.Config{
		Caller:     func(context.Context, *http.Request) (string, error) { return "shop", nil },
		CallerGRPC: func(context.Context) (string, error) { return "shop", nil },
		Spans: func(_ context.Context, app string, spans []tracestore.Span) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, spans...)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{otlp: rcv, otlpGRPC: newOTLPServer(rcv)}
	defer a.otlpGRPC.Stop()
	srv := httptest.NewUnstartedServer(internalPlatform{a})
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	span := func(name string, id byte) *coltracepb.ExportTraceServiceRequest {
		return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: bytes.Repeat([]byte{id}, 16), SpanId: bytes.Repeat([]byte{id}, 8), Name: name,
			StartTimeUnixNano: uint64(time.Now().UnixNano()), EndTimeUnixNano: uint64(time.Now().UnixNano()),
		}}}}}}}
	}

	conn, err := grpc.NewClient(srv.Listener.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := coltracepb.NewTraceServiceClient(conn).Export(ctx, span("over grpc", 1)); err != nil {
		t.Fatalf("OTLP/gRPC through the internal listener: %v", err)
	}

	body, _ := proto.Marshal(span("over http", 2))
	req, _ := http.NewRequest(http.MethodPost, srv.URL+OTLPPrefix+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP/HTTP through the internal listener: %s", resp.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Name != "over grpc" || got[1].Name != "over http" || got[0].App != "shop" {
		t.Errorf("the receiver got %+v, want the two spans of app shop", got)
	}
}
