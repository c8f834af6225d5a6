package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestForwardedHeaders(t *testing.T) {
	tg := startGateway(t, false)
	up := newUpstream(t, "a")
	tg.SetBackends("hello", []Backend{up.backend()}, "")
	res := tg.http1().get(t, tg.url("hello.localhost", "/p?q=1"), http.Header{
		"X-Forwarded-For":   {"6.6.6.6"}, // a client cannot forge its address
		"X-Forwarded-Proto": {"http"},
		"Connection":        {"X-Secret"},
		"X-Secret":          {"hop-by-hop"},
	})
	if res.status != 200 {
		t.Fatalf("GET = %d %q", res.status, res.body)
	}
	got, host := up.lastRequest()
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "hello.localhost:" + tg.port,
		"X-Request-Id":      res.header.Get("X-Request-Id"),
		"X-Secret":          "",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("upstream %s = %q, want %q", k, got.Get(k), v)
		}
	}
	if host != "hello.localhost:"+tg.port {
		t.Errorf("upstream Host = %q, want the client's", host)
	}
	if len(res.header.Get("X-Request-Id")) != 32 {
		t.Errorf("response X-Request-Id = %q, want a generated 32-digit ID", res.header.Get("X-Request-Id"))
	}
}

func TestRequestIDPropagation(t *testing.T) {
	tg := startGateway(t, false)
	up := newUpstream(t, "a")
	tg.SetBackends("hello", []Backend{up.backend()}, "")
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"valid kept", "abc-123_XYZ", true},
		{"128 chars kept", strings.Repeat("r", 128), true},
		{"129 chars replaced", strings.Repeat("r", 129), false},
		{"space replaced", "a b", false},
		{"none generated", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.sent != "" {
				h.Set("X-Request-Id", tc.sent)
			}
			res := tg.get(t, tg.url("hello.localhost", "/"), h)
			gotRes := res.header.Values("X-Request-Id")
			upHeader, _ := up.lastRequest()
			gotUp := upHeader.Values("X-Request-Id")
			if len(gotRes) != 1 || len(gotUp) != 1 || gotRes[0] != gotUp[0] {
				t.Fatalf("X-Request-Id response %q, upstream %q: want one and the same", gotRes, gotUp)
			}
			if kept := gotRes[0] == tc.sent; kept != tc.kept {
				t.Errorf("sent %q, got %q: kept = %v, want %v", tc.sent, gotRes[0], kept, tc.kept)
			}
			if !validRequestID(gotRes[0]) {
				t.Errorf("request ID %q is not valid", gotRes[0])
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		keep bool
	}{
		{"absent", nil, false},
		{"valid", []string{"req-1"}, true},
		{"first of two", []string{"req-1", "req-2"}, true},
		{"empty", []string{""}, false},
		{"control char", []string{"a\x01"}, false},
		{"non ascii", []string{"é"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.in != nil {
				h["X-Request-Id"] = tc.in
			}
			id := requestID(h)
			if got := h["X-Request-Id"]; len(got) != 1 || got[0] != id {
				t.Errorf("requestID left header %q, want [%q]", got, id)
			}
			if kept := tc.in != nil && id == tc.in[0]; kept != tc.keep {
				t.Errorf("requestID(%q) = %q, kept %v, want %v", tc.in, id, kept, tc.keep)
			}
		})
	}
	if a, b := newRequestID(), newRequestID(); a == b || len(a) != 32 {
		t.Errorf("newRequestID twice = %q, %q: want two distinct 32-digit IDs", a, b)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRetryOnDeadBackend(t *testing.T) {
	tg := startGateway(t, false)
	dead := Backend{ID: "dead", Addr: deadAddr(t)}
	tg.SetBackends("hello", []Backend{dead, newUpstream(t, "live").backend()}, "")
	for i := range 6 { // round robin hits the dead one every other time
		res := tg.get(t, tg.url("hello.localhost", "/"), nil)
		if res.status != 200 || res.body != "live" {
			t.Fatalf("request %d = %d %q, want 200 from the live backend", i, res.status, res.body)
		}
	}
	// A request with a body is not replayed: it may be sent only once.
	var saw502 bool
	for range 2 {
		res, err := tg.client.Post(tg.url("hello.localhost", "/"), "text/plain", io.NopCloser(strings.NewReader("data")))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusBadGateway {
			saw502 = true
		}
	}
	if !saw502 {
		t.Errorf("streamed POST bodies were retried on another backend; want a 502 from the dead one")
	}
}

func TestBadGateway(t *testing.T) {
	tg := startGateway(t, false)
	dead := deadAddr(t)
	tg.SetBackends("hello", []Backend{{ID: "d1", Addr: dead}, {ID: "d2", Addr: deadAddr(t)}}, "")
	for _, accept := range []string{"text/html", ""} {
		res := tg.get(t, tg.url("hello.localhost", "/"), http.Header{"Accept": {accept}})
		if res.status != http.StatusBadGateway || !strings.Contains(res.body, "The app hello did not answer") {
			t.Errorf("GET (Accept %q) = %d %q, want 502 saying the app did not answer", accept, res.status, res.body)
		}
		if strings.Contains(res.body, "127.0.0.1") {
			t.Errorf("502 page leaks a backend address: %q", res.body)
		}
	}
}

func TestStreamingFlushes(t *testing.T) {
	tg := startGateway(t, false)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: last\n\n")
	}))
	defer up.Close()
	defer close(release)
	tg.SetBackends("hello", []Backend{{ID: "sse", Addr: up.Listener.Addr().String()}}, "")
	res, err := tg.client.Get(tg.url("hello.localhost", "/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(res.Body).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "data: first\n" {
			t.Errorf("first line = %q, want the first event", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the stream stayed open")
	}
}

func TestPostBody(t *testing.T) {
	tg := startGateway(t, false)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	defer up.Close()
	tg.SetBackends("echo", []Backend{{ID: "e", Addr: up.Listener.Addr().String()}}, "")
	body := strings.Repeat("0123456789", 100_000)
	res, err := tg.client.Post(tg.url("echo.localhost", "/"), "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil || string(got) != body {
		t.Errorf("echo of %d bytes = %d bytes, err %v", len(body), len(got), err)
	}
}
