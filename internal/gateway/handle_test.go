package gateway

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recordingHandler answers "handled <method> <path> <body>" and remembers
// the requests it saw.
type recordingHandler struct {
	mu    sync.Mutex
	hosts []string
	ids   []string
}

func (h *recordingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.hosts = append(h.hosts, r.Host)
	h.ids = append(h.ids, r.Header.Get("X-Request-Id"))
	h.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "handled "+r.Method+" "+r.URL.Path+" "+string(body))
}

func (h *recordingHandler) seen() ([]string, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{}, h.hosts...), append([]string{}, h.ids...)
}

func TestHandledHost(t *testing.T) {
	tg := startGateway(t, false)
	// An app named like the handled host must not get its requests.
	app := newUpstream(t, "registry-app")
	tg.SetBackends("registry", []Backend{app.backend()}, "")
	tg.SetBackends("hello", []Backend{newUpstream(t, "hello-1").backend()}, "")
	h := &recordingHandler{}
	tg.Handle("Registry.LocalHost.", h)

	tests := []struct {
		name, host, path, want string
	}{
		{"handled host", "registry.localhost", "/v2/", "handled GET /v2/ "},
		{"upper case", "REGISTRY.localhost", "/v2/x/tags/list", "handled GET /v2/x/tags/list "},
		{"trailing dot", "registry.localhost.", "/", "handled GET / "},
		{"apps still proxied", "hello.localhost", "/", "hello-1"},
		{"unknown app still 404", "nope.localhost", "/", "No app is deployed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := tg.get(t, tg.url(tc.host, tc.path), nil)
			if !strings.Contains(res.body, tc.want) {
				t.Errorf("GET %s%s = %d %q, want %q", tc.host, tc.path, res.status, res.body, tc.want)
			}
			if res.header.Get("Strict-Transport-Security") != hstsValue {
				t.Errorf("GET %s: Strict-Transport-Security = %q, want %q", tc.host, res.header.Get("Strict-Transport-Security"), hstsValue)
			}
			if res.header.Get("X-Request-Id") == "" {
				t.Errorf("GET %s: no X-Request-Id", tc.host)
			}
		})
	}
	if hdr, _ := app.lastRequest(); hdr != nil {
		t.Errorf("the app named registry got a request for the handled host: %v", hdr)
	}

	// A request with a body reaches the handler whole, and the handler sees
	// the request ID the client sent back in the response.
	req, err := http.NewRequest(http.MethodPut, tg.url("registry.localhost", "/v2/x/manifests/v1"), strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "client-id-1")
	res, err := tg.client.Do(req)
	if err != nil {
		t.Fatalf("PUT: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "handled PUT /v2/x/manifests/v1 payload" || res.Header.Get("X-Request-Id") != "client-id-1" {
		t.Errorf("PUT = %q X-Request-Id %q, want the body echoed and client-id-1", body, res.Header.Get("X-Request-Id"))
	}
	hosts, ids := h.seen()
	if len(hosts) != 4 || ids[len(ids)-1] != "client-id-1" {
		t.Errorf("handler saw hosts %q ids %q, want 4 requests, the last with client-id-1", hosts, ids)
	}

	// Without the handler the host is the app's again.
	tg.Handle("registry.localhost", nil)
	if res := tg.get(t, tg.url("registry.localhost", "/"), nil); res.body != "registry-app" {
		t.Errorf("after Handle(nil): GET registry.localhost = %d %q, want the app's answer", res.status, res.body)
	}
}

func TestHandledHostWithHTTP1(t *testing.T) {
	tg := startGateway(t, false).http1()
	tg.Handle("registry.localhost", &recordingHandler{})
	res := tg.get(t, tg.url("registry.localhost", "/v2/"), nil)
	if res.body != "handled GET /v2/ " || res.proto != "HTTP/1.1" || res.header.Get("Strict-Transport-Security") != hstsValue {
		t.Errorf("GET over HTTP/1.1 = %q %s HSTS %q, want handled with HSTS", res.body, res.proto, res.header.Get("Strict-Transport-Security"))
	}
}

func TestHasHostHandled(t *testing.T) {
	g := New(Config{Domain: "apps.example.com"})
	g.Handle("registry.apps.example.com", &recordingHandler{})
	g.Handle("other.example.org", &recordingHandler{})
	tests := []struct {
		host string
		want bool
	}{
		{"registry.apps.example.com", true},
		{"REGISTRY.apps.example.com.", true},
		{"registry.apps.example.com:443", true},
		{"other.example.org", true}, // any name, not only one label under the domain
		{"x.registry.apps.example.com", false},
		{"nope.apps.example.com", false},
	}
	for _, tc := range tests {
		if got := g.HasHost(tc.host); got != tc.want {
			t.Errorf("HasHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	g.Handle("registry.apps.example.com", nil)
	if g.HasHost("registry.apps.example.com") {
		t.Errorf("HasHost after Handle(nil) = true, want false")
	}
}

func TestHandleRefusesNonNames(t *testing.T) {
	g := New(Config{})
	for _, host := range []string{"", "[::1]:443", "::1"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%q) did not panic", host)
				}
			}()
			g.Handle(host, &recordingHandler{})
		}()
	}
}
