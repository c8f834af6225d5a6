package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestServesWithoutEndpoint: outside noops (no OTLP endpoint) tracing is
// off, the app serves as before, and the request log still carries the
// caller's trace ID.
func TestServesWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := newTracing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tr.sdk != nil {
		t.Fatal("newTracing without an endpoint set up an exporter")
	}
	var logs bytes.Buffer
	prev := log.Writer()
	log.SetOutput(&logs)
	t.Cleanup(func() { log.SetOutput(prev) })

	srv := httptest.NewServer(newHandler("7", "box", tr.tracer()))
	defer srv.Close()
	cases := []struct {
		path, traceparent string
		wantStatus        int
		wantBody          []string
		wantRelease       string
	}{
		{"/", traceparent, 200, []string{"Hello from noops", "Release <b>7</b>", "sandbox <code>box</code>"}, "7"},
		{"/", "", 200, []string{"Hello from noops"}, "7"},
		{"/healthz", "", 200, []string{"ok\n"}, ""},
		{"/nope", "", 404, nil, ""},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.traceparent != "" {
			req.Header.Set("traceparent", tc.traceparent)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || resp.Header.Get("X-Release") != tc.wantRelease {
			t.Errorf("GET %s = %d X-Release %q, want %d %q", tc.path, resp.StatusCode, resp.Header.Get("X-Release"), tc.wantStatus, tc.wantRelease)
		}
		for _, want := range tc.wantBody {
			if !strings.Contains(string(body), want) {
				t.Errorf("GET %s body = %q, want it to contain %q", tc.path, body, want)
			}
		}
	}
	if err := tr.shutdown(context.Background()); err != nil {
		t.Errorf("shutdown with tracing off = %v", err)
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("request log = %q, want 3 lines (health checks are not logged)", lines)
	}
	if !strings.Contains(lines[0], `GET "/" 200`) || !strings.HasSuffix(lines[0], "trace_id="+callerTrace) {
		t.Errorf("log line %q, want GET / 200 with the caller's trace_id=%s", lines[0], callerTrace)
	}
	if strings.Contains(lines[1], "trace_id=") {
		t.Errorf("log line %q has a trace ID though tracing is off and no traceparent came", lines[1])
	}
	if !strings.Contains(lines[2], `GET "/nope" 404`) {
		t.Errorf("log line %q, want GET /nope 404", lines[2])
	}
}
