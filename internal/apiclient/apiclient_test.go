package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/api"
	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/store/sqlite"
)

// serve runs h on DIR/api.sock, as a server with data folder DIR would,
// and returns DIR.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	srv := &http.Server{Handler: h, ConnContext: api.ConnContext}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return dir
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKindAndHint(t *testing.T) {
	t.Parallel()
	server := &Error{Status: 409, Body: apitype.Error{Kind: "conflict", Message: "busy", Hint: "wait"}}
	tests := []struct {
		name     string
		err      error
		wantKind errkind.Kind
		wantHint string
	}{
		{"server error", server, errkind.Conflict, "wait"},
		{"wrapped server error", fmt.Errorf("scaling: %w", server), errkind.Conflict, "wait"},
		{"server error of an unknown kind", &Error{Body: apitype.Error{Kind: "odd", Message: "x"}}, errkind.Internal, ""},
		{"client-side classified error", errkind.WithHint(errkind.Unavailable, errors.New("no server"), "start one"), errkind.Unavailable, "start one"},
		{"plain error", errors.New("boom"), errkind.Internal, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Kind(tc.err); got != tc.wantKind {
				t.Errorf("Kind(%v) = %v, want %v", tc.err, got, tc.wantKind)
			}
			if got := Hint(tc.err); got != tc.wantHint {
				t.Errorf("Hint(%v) = %q, want %q", tc.err, got, tc.wantHint)
			}
		})
	}
	if got := server.Error(); got != "busy" {
		t.Errorf("(*Error).Error() = %q, want the server's message %q", got, "busy")
	}
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	stale := t.TempDir()
	ln, err := net.Listen("unix", SocketPath(stale))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	tests := []struct{ name, dir string }{
		{"empty data folder", t.TempDir()},
		{"missing data folder", filepath.Join(t.TempDir(), "missing")},
		{"stale socket", stale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.dir).Apps(testCtx(t))
			if k := Kind(err); k != errkind.Unavailable {
				t.Errorf("Apps() with no server at %s: %v (kind %v), want %v", tc.dir, err, k, errkind.Unavailable)
			}
			if err != nil && !strings.Contains(err.Error(), SocketPath(tc.dir)) {
				t.Errorf("Apps() with no server: %q, want it to name the socket %s", err, SocketPath(tc.dir))
			}
			if h := Hint(err); !strings.Contains(h, "noops server") {
				t.Errorf("Hint(Apps() with no server) = %q, want it to name `noops server`", h)
			}
		})
	}
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	dir := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/apps/proxy":
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case "/v1/apps/busy":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"kind":"conflict","message":"a deploy of busy is in progress","hint":"wait"}`)
		case "/v1/apps/empty":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{}`)
		case "/v1/apps/garbled":
			io.WriteString(w, `{"name":`)
		}
	}))
	c := New(dir)
	tests := []struct {
		app      string
		status   int
		wantBody apitype.Error
	}{
		{"proxy", 502, apitype.Error{Kind: "internal", Message: "server answered 502 Bad Gateway"}},
		{"busy", 409, apitype.Error{Kind: "conflict", Message: "a deploy of busy is in progress", Hint: "wait"}},
		{"empty", 500, apitype.Error{Kind: "internal", Message: "server answered 500 Internal Server Error"}},
	}
	for _, tc := range tests {
		t.Run(tc.app, func(t *testing.T) {
			t.Parallel()
			_, err := c.App(testCtx(t), tc.app)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("App(%q) error = %v, want an *Error", tc.app, err)
			}
			if e.Status != tc.status || e.Body != tc.wantBody {
				t.Errorf("App(%q) error = %d %+v, want %d %+v", tc.app, e.Status, e.Body, tc.status, tc.wantBody)
			}
		})
	}
	_, err := c.App(testCtx(t), "garbled")
	if err == nil || !strings.Contains(err.Error(), "decoding answer to /v1/apps/garbled") {
		t.Errorf("App(garbled) error = %v, want a decoding error naming the path", err)
	}
}

func TestPathsEscaped(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	dir := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		mu.Unlock()
		io.WriteString(w, `{}`)
	}))
	c := New(dir)
	ctx := testCtx(t)
	c.App(ctx, "a/b")
	c.Releases(ctx, "../x")
	c.Audit(ctx, 7, 20)
	c.Logs(ctx, "web", apitype.LogQuery{Lines: 5, Follow: true, Grep: "a b", Fields: map[string]string{"status": "502"}}, func(apitype.LogLine) error { return nil })
	want := []string{
		"GET /v1/apps/a%2Fb?",
		"GET /v1/apps/..%2Fx/releases?",
		"GET /v1/audit?limit=20&since=7",
		"GET /v1/apps/web/logs?field=status%3D502&follow=1&grep=a+b&lines=5",
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

// deployServer answers deploys with the NDJSON lines in stream (or status
// and body when status is set) and records what it received.
type deployServer struct {
	mu       sync.Mutex
	header   http.Header
	length   int64
	received string
}

func (d *deployServer) handler(status int, stream ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.header, d.length, d.received = r.Header.Clone(), r.ContentLength, string(b)
		d.mu.Unlock()
		if status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
		}
		for _, l := range stream {
			io.WriteString(w, l+"\n")
		}
	})
}

func TestDeploy(t *testing.T) {
	t.Parallel()
	const (
		stage  = `{"type":"stage","stage":"building"}`
		logLn  = `{"type":"log","line":"go build ./..."}`
		result = `{"type":"result","release":{"app":"web","number":4,"image":"sha256:ab","created":"2025-03-14T15:09:26Z","status":"live"},"url":"https://web.noops.test/"}`
	)
	tests := []struct {
		name       string
		status     int
		stream     []string
		wantEvents []apitype.DeployEvent
		wantResult bool
		wantKind   errkind.Kind // when !wantResult
		wantMsg    string
	}{
		{
			name:       "success",
			stream:     []string{stage, logLn, result},
			wantEvents: []apitype.DeployEvent{{Type: "stage", Stage: "building"}, {Type: "log", Line: "go build ./..."}},
			wantResult: true,
		},
		{
			name:       "error event",
			stream:     []string{stage, `{"type":"error","error":{"kind":"invalid","message":"release 4 failed","hint":"see logs"}}`, result},
			wantEvents: []apitype.DeployEvent{{Type: "stage", Stage: "building"}},
			wantKind:   errkind.Invalid,
			wantMsg:    "release 4 failed",
		},
		{
			name:       "error event without a body",
			stream:     []string{`{"type":"error"}`},
			wantKind:   errkind.Internal,
			wantMsg:    "without saying what",
			wantEvents: nil,
		},
		{
			name:       "stream ends without a result",
			stream:     []string{stage, logLn},
			wantEvents: []apitype.DeployEvent{{Type: "stage", Stage: "building"}, {Type: "log", Line: "go build ./..."}},
			wantKind:   errkind.Unavailable,
			wantMsg:    "`noops releases web`",
		},
		{
			name:     "refused before streaming",
			status:   400,
			stream:   []string{`{"kind":"invalid","message":"a deploy takes an application/gzip body"}`},
			wantKind: errkind.Invalid,
			wantMsg:  "application/gzip",
		},
		{
			name:     "garbled stream",
			stream:   []string{stage, `{"type":`},
			wantKind: errkind.Internal,
			wantMsg:  "decoding the server's stream",
			// the stage before the garbled line is still reported
			wantEvents: []apitype.DeployEvent{{Type: "stage", Stage: "building"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds := &deployServer{}
			dir := serve(t, ds.handler(tc.status, tc.stream...))
			body := "pretend gzip"
			var events []apitype.DeployEvent
			ev, err := New(dir).Deploy(testCtx(t), "web", strings.NewReader(body), int64(len(body)), "abc123", func(e apitype.DeployEvent) {
				events = append(events, e)
			})
			if !reflect.DeepEqual(events, tc.wantEvents) {
				t.Errorf("Deploy events = %+v, want %+v", events, tc.wantEvents)
			}
			ds.mu.Lock()
			if ds.received != body || ds.length != int64(len(body)) || ds.header.Get("Content-Type") != "application/gzip" || ds.header.Get("X-Noops-Sha256") != "abc123" {
				t.Errorf("server got body %q (length %d), headers %v; want %q with its length, application/gzip and the digest", ds.received, ds.length, ds.header, body)
			}
			ds.mu.Unlock()
			if tc.wantResult {
				if err != nil || ev.Type != "result" || ev.Release == nil || ev.Release.Number != 4 || ev.URL != "https://web.noops.test/" {
					t.Errorf("Deploy() = %+v, %v, want the result of release 4", ev, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Deploy() = %+v, nil, want an error", ev)
			}
			if k := Kind(err); k != tc.wantKind || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Deploy() error = %q (kind %v), want kind %v saying %q", err, k, tc.wantKind, tc.wantMsg)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	dir := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/apps/ghost/logs" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"kind":"not_found","message":"no app ghost"}`)
			return
		}
		io.WriteString(w, "{\"line\":\"a\"}\n{\"line\":\"b\"}\n{\"line\":\"c\"}\n")
	}))
	c := New(dir)
	var got []string
	q := apitype.LogQuery{Lines: 3}
	if err := c.Logs(testCtx(t), "web", q, func(l apitype.LogLine) error { got = append(got, l.Line); return nil }); err != nil {
		t.Fatalf("Logs() = %v", err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Logs() lines = %q, want %q", got, want)
	}

	stop := errors.New("enough")
	n := 0
	err := c.Logs(testCtx(t), "web", q, func(apitype.LogLine) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Logs() with a failing callback = %v after %d lines, want %v after 1", err, n, stop)
	}

	err = c.Logs(testCtx(t), "ghost", q, func(apitype.LogLine) error { return nil })
	if Kind(err) != errkind.NotFound {
		t.Errorf("Logs(ghost) = %v, want a not-found error", err)
	}
}

// TestActorIsTheSocketPeer: over the Unix socket, the audit log names the
// calling process.
func TestActorIsTheSocketPeer(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := serve(t, api.Handler(api.Config{Audit: db}))
	c := New(dir)
	ctx := testCtx(t)
	err = c.sendJSON(ctx, http.MethodPost, "/v1/nowhere", nil, nil)
	if Kind(err) != errkind.NotFound {
		t.Fatalf("POST /v1/nowhere = %v, want not found", err)
	}
	rows, err := c.Audit(ctx, 0, 10)
	if err != nil {
		t.Fatalf("Audit() = %v", err)
	}
	want := fmt.Sprintf("uid:%d pid:%d", os.Getuid(), os.Getpid())
	if len(rows) != 1 || rows[0].Actor != want || rows[0].Action != "POST /v1/nowhere" || rows[0].Status != 404 {
		t.Errorf("Audit() = %+v, want one record of POST /v1/nowhere by %q with status 404", rows, want)
	}
}
