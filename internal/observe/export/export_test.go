package export

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// sendAll queues n requests of every signal and returns what a receiver
// should end up with, each signal's requests merged into one.
func sendAll(t *testing.T, e *Exporter, n int) (*coltracepb.ExportTraceServiceRequest, *colmetricspb.ExportMetricsServiceRequest, *collogspb.ExportLogsServiceRequest) {
	t.Helper()
	wantT := &coltracepb.ExportTraceServiceRequest{}
	wantM := &colmetricspb.ExportMetricsServiceRequest{}
	wantL := &collogspb.ExportLogsServiceRequest{}
	for i := range n {
		tr, m, l := traceReq(fmt.Sprintf("span-%03d", i)), metricReq(fmt.Sprintf("metric_%03d", i)), logReq(fmt.Sprintf("log %03d", i))
		for _, err := range []error{e.Traces(tr), e.Metrics(m), e.Logs(l)} {
			if err != nil {
				t.Fatalf("queueing batch %d: %v", i, err)
			}
		}
		wantT.ResourceSpans = append(wantT.ResourceSpans, tr.ResourceSpans...)
		wantM.ResourceMetrics = append(wantM.ResourceMetrics, m.ResourceMetrics...)
		wantL.ResourceLogs = append(wantL.ResourceLogs, l.ResourceLogs...)
	}
	return wantT, wantM, wantL
}

// checkReceived compares, signal by signal, everything rc decoded with
// what was sent.
func checkReceived(t *testing.T, rc *receiver, wantT *coltracepb.ExportTraceServiceRequest, wantM *colmetricspb.ExportMetricsServiceRequest, wantL *collogspb.ExportLogsServiceRequest) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	gotT := &coltracepb.ExportTraceServiceRequest{}
	for _, r := range rc.traces {
		gotT.ResourceSpans = append(gotT.ResourceSpans, r.ResourceSpans...)
	}
	gotM := &colmetricspb.ExportMetricsServiceRequest{}
	for _, r := range rc.metrics {
		gotM.ResourceMetrics = append(gotM.ResourceMetrics, r.ResourceMetrics...)
	}
	gotL := &collogspb.ExportLogsServiceRequest{}
	for _, r := range rc.logs {
		gotL.ResourceLogs = append(gotL.ResourceLogs, r.ResourceLogs...)
	}
	if !proto.Equal(gotT, wantT) {
		t.Errorf("traces received differ from those sent: got %d resource spans, want %d", len(gotT.ResourceSpans), len(wantT.ResourceSpans))
	}
	if !proto.Equal(gotM, wantM) {
		t.Errorf("metrics received differ from those sent: got %d resource metrics, want %d", len(gotM.ResourceMetrics), len(wantM.ResourceMetrics))
	}
	if !proto.Equal(gotL, wantL) {
		t.Errorf("logs received differ from those sent: got %d resource logs, want %d", len(gotL.ResourceLogs), len(wantL.ResourceLogs))
	}
}

func delivered(e *Exporter, n uint64) func() bool {
	return func() bool {
		st := e.Stats()
		return st.Traces.Sent >= n && st.Metrics.Sent >= n && st.Logs.Sent >= n
	}
}

// receiverFor starts a receiver for protocol and returns it with the
// endpoint to configure.
func receiverFor(t *testing.T, protocol string) (*receiver, string) {
	if protocol == ProtocolGRPC {
		rc, addr := newGRPCReceiver(t)
		return rc, "http://" + addr
	}
	rc, srv := newHTTPReceiver(t)
	return rc, srv.URL
}

func TestDeliverToRealReceivers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, protocol, compression string
	}{
		{"http gzip", ProtocolHTTP, "gzip"},
		{"http none", ProtocolHTTP, "none"},
		{"grpc gzip", ProtocolGRPC, "gzip"},
		{"grpc none", ProtocolGRPC, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc, endpoint := receiverFor(t, tc.protocol)
			cfg := testConfig(t, endpoint)
			cfg.Protocol = tc.protocol
			cfg.Compression = tc.compression
			cfg.MaxRequestBytes = 2000 // a few batches per request
			cfg.Headers = map[string]string{"X-Tenant": "acme"}
			e := newExporter(t, cfg)
			// Queued before Start: merged into fewer requests.
			wantT, wantM, wantL := sendAll(t, e, 30)
			start(t, e)
			waitFor(t, "delivery", delivered(e, 30))
			checkReceived(t, rc, wantT, wantM, wantL)
			if got, want := rc.spanNames(), names("span", 0, 30); !slices.Equal(got, want) {
				t.Errorf("spans arrived as %v, want %v", got, want)
			}
			st := e.Stats()
			if st.Traces.Requests >= 30 || st.Traces.Requests < 2 {
				t.Errorf("traces took %d requests for 30 batches, want them merged into a few", st.Traces.Requests)
			}
			for _, ss := range []SignalStats{st.Traces, st.Metrics, st.Logs} {
				if ss.QueuedBatches != 0 || ss.QueuedBytes != 0 || ss.Retries != 0 || len(ss.Dropped) != 0 || ss.LastSuccess.IsZero() {
					t.Errorf("stats after delivery = %+v", ss)
				}
			}
			rc.mu.Lock()
			for _, h := range rc.headers {
				if h.Get("X-Tenant") != "acme" {
					t.Errorf("request headers %v lack X-Tenant: acme", h)
				}
				if tc.protocol == ProtocolHTTP {
					if got, want := h.Get("Content-Encoding"), map[string]string{"gzip": "gzip", "none": ""}[tc.compression]; got != want {
						t.Errorf("Content-Encoding = %q, want %q", got, want)
					}
				}
			}
			rc.mu.Unlock()
		})
	}
}

// TestReceiverDownThenRecovers: connection refused, then 503 with
// Retry-After, then success: everything arrives, in order, once.
func TestReceiverDownThenRecovers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused

	cfg := testConfig(t, "http://"+addr)
	cfg.MaxRequestBytes = 1      // one batch per request
	cfg.MaxBackoff = time.Minute // asked for, not waited: w.sleep waits 1ms
	e := newExporter(t, cfg)
	w := &waits{}
	e.sleep = w.sleep
	for i := range 5 {
		if err := e.Traces(traceReq(fmt.Sprintf("span-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	start(t, e)
	waitFor(t, "retries while down", func() bool { return e.Stats().Traces.Retries >= 3 })
	if st := e.Stats().Traces; !strings.Contains(st.LastError, "refused") || st.QueuedBatches != 5 {
		t.Errorf("while down: LastError %q, queued %d; want connection refused, 5", st.LastError, st.QueuedBatches)
	}
	// More arrives while down.
	for i := 5; i < 10; i++ {
		if err := e.Traces(traceReq(fmt.Sprintf("span-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	rc := &receiver{respond: func(n int, _ string, _ []string) reply {
		if n <= 2 {
			return reply{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"7"}}, message: "warming up"}
		}
		return reply{}
	}}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	srv := &http.Server{Handler: rc}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	waitFor(t, "delivery after recovery", func() bool { return e.Stats().Traces.Sent == 10 })
	if got, want := rc.spanNames(), names("span", 0, 10); !slices.Equal(got, want) {
		t.Errorf("spans arrived as %v, want %v", got, want)
	}
	if got := w.list(); !slices.Contains(got, 7*time.Second) {
		t.Errorf("waits %v do not include the 7s of Retry-After", got)
	}
	st := e.Stats().Traces
	if st.QueuedBatches != 0 || st.Retries < 5 || len(st.Dropped) != 0 {
		t.Errorf("stats after recovery = %+v", st)
	}
}

// TestRetryAfterHonoured: the receiver's delay replaces the backoff, up to
// MaxBackoff.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter string
		maxBackoff time.Duration
		want       time.Duration
	}{
		{"seconds", "7", time.Minute, 7 * time.Second},
		{"capped", "3600", time.Minute, time.Minute},
		{"http date", t0.Add(90 * time.Second).Format(http.TimeFormat), 5 * time.Minute, 90 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc, srv := newHTTPReceiver(t)
			rc.respond = func(n int, _ string, _ []string) reply {
				if n == 1 {
					return reply{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {tc.retryAfter}}}
				}
				return reply{}
			}
			cfg := testConfig(t, srv.URL)
			cfg.MaxBackoff = tc.maxBackoff
			cfg.Now = func() time.Time { return t0 }
			e := newExporter(t, cfg)
			w := &waits{}
			e.sleep = w.sleep
			if err := e.Traces(traceReq("a")); err != nil {
				t.Fatal(err)
			}
			start(t, e)
			waitFor(t, "delivery", func() bool { return e.Stats().Traces.Sent == 1 })
			if got := w.list(); !slices.Equal(got, []time.Duration{tc.want}) {
				t.Errorf("waits = %v, want [%v]", got, tc.want)
			}
		})
	}
}

// TestRestartDeliversBacklog: a backlog left by Stop is delivered by the
// next Exporter on the same Dir, and what was delivered is not resent.
func TestRestartDeliversBacklog(t *testing.T) {
	t.Parallel()
	rc, srv := newHTTPReceiver(t)
	var down bool
	rc.respond = func(int, string, []string) reply {
		if down {
			return reply{status: http.StatusServiceUnavailable}
		}
		return reply{}
	}
	cfg := testConfig(t, srv.URL)
	cfg.MaxRequestBytes = 1
	e1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, e1)
	for i := range 5 {
		e1.Traces(traceReq(fmt.Sprintf("span-%03d", i)))
	}
	waitFor(t, "first half", func() bool { return e1.Stats().Traces.Sent == 5 })
	rc.mu.Lock()
	down = true
	rc.mu.Unlock()
	for i := 5; i < 10; i++ {
		e1.Traces(traceReq(fmt.Sprintf("span-%03d", i)))
	}
	waitFor(t, "a failure", func() bool { return e1.Stats().Traces.Retries > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e1.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := e1.Traces(traceReq("late")); err != ErrStopped {
		t.Errorf("Traces after Stop = %v, want ErrStopped", err)
	}

	rc.mu.Lock()
	down = false
	rc.mu.Unlock()
	e2 := newExporter(t, cfg)
	if st := e2.Stats().Traces; st.QueuedBatches != 5 {
		t.Fatalf("after restart %d batches queued, want 5", st.QueuedBatches)
	}
	start(t, e2)
	waitFor(t, "backlog", func() bool { return e2.Stats().Traces.Sent == 5 })
	if got, want := rc.spanNames(), names("span", 0, 10); !slices.Equal(got, want) {
		t.Errorf("spans arrived as %v, want %v", got, want)
	}
}

// TestStopFlushes: Stop sends what is queued before returning.
func TestStopFlushes(t *testing.T) {
	t.Parallel()
	rc, srv := newHTTPReceiver(t)
	cfg := testConfig(t, srv.URL)
	cfg.MaxRequestBytes = 1
	e := newExporter(t, cfg)
	start(t, e)
	for i := range 20 {
		e.Logs(logReq(fmt.Sprintf("log %d", i)))
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	got := len(rc.logs)
	rc.mu.Unlock()
	if got != 20 || e.Stats().Logs.QueuedBatches != 0 {
		t.Errorf("after Stop the receiver has %d of 20 batches, %d still queued", got, e.Stats().Logs.QueuedBatches)
	}
}

// TestTornTail: damage to the end of a segment (a crash mid-write) is cut
// with a warning; New does not fail, and the rest is delivered.
func TestTornTail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		damage    func(t *testing.T, path string, size int64)
		wantSpans []string
		corrupt   uint64
	}{
		{"cut mid-record", func(t *testing.T, path string, size int64) {
			must(os.Truncate(path, size-3))
		}, names("span", 0, 4), 1},
		{"cut mid-header", func(t *testing.T, path string, size int64) {
			rec := int64(len(encodeRecord(0, mustMarshal(traceReq("span-004")))))
			must(os.Truncate(path, size-rec+5))
		}, names("span", 0, 4), 1},
		{"flipped byte in record 3", func(t *testing.T, path string, size int64) {
			rec := int64(len(encodeRecord(0, mustMarshal(traceReq("span-000")))))
			flip(t, path, magicLen+2*rec+recordHeader+10)
		}, names("span", 0, 2), 1},
		{"garbage after the last record", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			must(err)
			f.Write([]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3})
			f.Close()
		}, names("span", 0, 5), 1},
		{"zero-filled tail", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			must(err)
			f.Write(make([]byte, 4096))
			f.Close()
		}, names("span", 0, 5), 1},
		{"bad magic", func(t *testing.T, path string, size int64) {
			flip(t, path, 0)
		}, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc, srv := newHTTPReceiver(t)
			cfg := testConfig(t, srv.URL)
			e1, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				e1.Traces(traceReq(fmt.Sprintf("span-%03d", i)))
			}
			must(e1.Stop(context.Background()))
			segs, _ := filepath.Glob(filepath.Join(cfg.Dir, "traces", "*.seg"))
			if len(segs) != 1 {
				t.Fatalf("segments %v, want one", segs)
			}
			fi, err := os.Stat(segs[0])
			must(err)
			tc.damage(t, segs[0], fi.Size())

			var logs logBuffer
			cfg.Logger = logs.logger()
			e2 := newExporter(t, cfg)
			if !strings.Contains(logs.String(), "damaged") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
			st := e2.Stats().Traces
			if st.Dropped[DropCorrupt] != tc.corrupt || st.QueuedBatches != int64(len(tc.wantSpans)) {
				t.Errorf("after New: dropped %v, queued %d; want corrupt %d, queued %d", st.Dropped, st.QueuedBatches, tc.corrupt, len(tc.wantSpans))
			}
			e2.Traces(traceReq("after"))
			start(t, e2)
			want := append(slices.Clone(tc.wantSpans), "after")
			waitFor(t, "delivery", func() bool { return len(rc.spanNames()) == len(want) })
			if got := rc.spanNames(); !slices.Equal(got, want) {
				t.Errorf("spans arrived as %v, want %v", got, want)
			}
		})
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	must(err)
	return b
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	must(err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	must(err)
}

// TestAckDamaged: a damaged ack file makes everything on disk go again
// (at least once), rather than failing the start.
func TestAckDamaged(t *testing.T) {
	t.Parallel()
	rc, srv := newHTTPReceiver(t)
	cfg := testConfig(t, srv.URL)
	cfg.Now = func() time.Time { return t0 }
	e1, err := New(cfg)
	must(err)
	for i := range 3 {
		e1.Traces(traceReq(fmt.Sprintf("span-%03d", i)))
	}
	must(e1.Stop(context.Background()))
	must(os.WriteFile(filepath.Join(cfg.Dir, "traces", "ack"), []byte("garbage"), 0o600))
	e2 := newExporter(t, cfg)
	start(t, e2)
	waitFor(t, "delivery", func() bool { return len(rc.spanNames()) == 3 })
}

// TestQueueFullDropsOldest: past MaxQueueBytes the oldest batches go, and
// are counted; what is left is the newest, delivered in order.
func TestQueueFullDropsOldest(t *testing.T) {
	t.Parallel()
	rc, srv := newHTTPReceiver(t)
	cfg := testConfig(t, srv.URL)
	cfg.MaxQueueBytes = 64 << 10
	var logs logBuffer
	cfg.Logger = logs.logger()
	e := newExporter(t, cfg)
	const n = 1000
	for i := range n {
		if err := e.Traces(traceReq(fmt.Sprintf("span-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	st := e.Stats().Traces
	dropped := st.Dropped[DropQueueFull]
	if dropped == 0 || st.QueuedBytes > cfg.MaxQueueBytes || uint64(st.QueuedBatches)+dropped != n {
		t.Fatalf("queued %d batches (%d bytes), dropped %d; want some dropped, at most %d bytes, %d in all",
			st.QueuedBatches, st.QueuedBytes, dropped, cfg.MaxQueueBytes, n)
	}
	if st.QueuedBytes < cfg.MaxQueueBytes/2 {
		t.Errorf("queued only %d bytes of %d: dropped too much", st.QueuedBytes, cfg.MaxQueueBytes)
	}
	if onDisk := dirSize(t, filepath.Join(cfg.Dir, "traces")); onDisk > cfg.MaxQueueBytes+segmentSize(cfg.MaxQueueBytes)+64 {
		t.Errorf("%d bytes on disk for a %d-byte queue", onDisk, cfg.MaxQueueBytes)
	}
	if !strings.Contains(logs.String(), "queue full") {
		t.Error("no warning logged")
	}
	start(t, e)
	waitFor(t, "delivery", func() bool { return e.Stats().Traces.Sent == uint64(st.QueuedBatches) })
	if got, want := rc.spanNames(), names("span", int(dropped), n); !slices.Equal(got, want) {
		t.Errorf("got %d spans from %v, want the newest %d", len(got), got[:1], len(want))
	}
}

func dirSize(t *testing.T, dir string) int64 {
	ents, err := os.ReadDir(dir)
	must(err)
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		must(err)
		n += fi.Size()
	}
	return n
}

func TestTooLargeRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "http://127.0.0.1:1")
	cfg.MaxQueueBytes = 64 << 10
	e := newExporter(t, cfg)
	big := traceReq(strings.Repeat("x", 20<<10))
	if err := e.Traces(big); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("Traces(20 KiB into a 64 KiB queue) = %v, want over the limit", err)
	}
	if st := e.Stats().Traces; st.Dropped[DropTooLarge] != 1 || st.QueuedBatches != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestConcurrentProducers: many goroutines queue while batches are sent;
// each batch arrives exactly once.
func TestConcurrentProducers(t *testing.T) {
	t.Parallel()
	rc, srv := newHTTPReceiver(t)
	e := newExporter(t, testConfig(t, srv.URL))
	start(t, e)
	const producers, each = 4, 100
	done := make(chan struct{})
	for p := range producers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				if err := e.Traces(traceReq(fmt.Sprintf("p%d-%03d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range producers {
		<-done
	}
	waitFor(t, "delivery", func() bool { return e.Stats().Traces.Sent == producers*each })
	seen := map[string]int{}
	last := map[byte]string{}
	for _, n := range rc.spanNames() {
		seen[n]++
		// Each producer's spans arrive in the order it queued them.
		if n <= last[n[1]] {
			t.Errorf("%s arrived after %s", n, last[n[1]])
		}
		last[n[1]] = n
	}
	if len(seen) != producers*each {
		t.Errorf("%d distinct spans arrived, want %d", len(seen), producers*each)
	}
}
