package export

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// tenSpans is a typical batch from the gateway: ten spans of one service.
func tenSpans() *coltracepb.ExportTraceServiceRequest {
	req := traceReq("span-0")
	ss := req.ResourceSpans[0].ScopeSpans[0]
	for i := 1; i < 10; i++ {
		s := proto.Clone(ss.Spans[0]).(*tracepb.Span)
		s.Name = fmt.Sprintf("span-%d", i)
		ss.Spans = append(ss.Spans, s)
	}
	return req
}

// BenchmarkEnqueue is the cost Traces adds to the caller: serialize and
// append to the disk queue.
func BenchmarkEnqueue(b *testing.B) {
	cfg := Config{Endpoint: "http://127.0.0.1:1", Dir: b.TempDir(), MaxQueueBytes: 64 << 20}
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Stop(context.Background())
	req := tenSpans()
	b.SetBytes(int64(len(mustMarshal(req))))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.Traces(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeliverHTTP measures batches of ten spans delivered per second
// to an OTLP/HTTP receiver that decodes them with the collector's pdata.
func BenchmarkDeliverHTTP(b *testing.B) {
	rc := &receiver{}
	var spans int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.ServeHTTP(w, r)
		rc.mu.Lock()
		for _, t := range rc.traces {
			for _, rs := range t.ResourceSpans {
				spans += countSpans(rs)
			}
		}
		rc.traces = nil
		rc.headers = nil
		rc.mu.Unlock()
	}))
	defer srv.Close()
	cfg := Config{Endpoint: srv.URL, Dir: b.TempDir()}
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	req := tenSpans()
	b.SetBytes(int64(len(mustMarshal(req))))
	b.ResetTimer()
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		if err := e.Traces(req); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if st := e.Stats().Traces; st.Sent != uint64(b.N) {
		b.Fatalf("sent %d of %d", st.Sent, b.N)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if spans != 10*b.N {
		b.Fatalf("receiver got %d spans, want %d", spans, 10*b.N)
	}
}

func countSpans(rs *tracepb.ResourceSpans) int {
	n := 0
	for _, ss := range rs.ScopeSpans {
		n += len(ss.Spans)
	}
	return n
}
