package gateway

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestHostRouting(t *testing.T) {
	tg := startGateway(t, false)
	tg.SetBackends("hello", []Backend{newUpstream(t, "hello-1").backend()}, "")
	tg.SetBackends("shop", []Backend{newUpstream(t, "shop-1").backend()}, "")
	tests := []struct {
		name       string
		host       string
		accept     string
		wantStatus int
		wantBody   string // substring
		wantType   string // Content-Type prefix
	}{
		{"app", "hello.localhost", "", 200, "hello-1", "text/plain"},
		{"other app", "shop.localhost", "", 200, "shop-1", "text/plain"},
		{"upper case host", "HELLO.LocalHost", "", 200, "hello-1", "text/plain"},
		{"trailing dot", "hello.localhost.", "", 200, "hello-1", "text/plain"},
		{"unknown app", "nope.localhost", "", 404, "No app is deployed at nope.localhost", "text/plain"},
		{"unknown app html", "nope.localhost", "text/html,*/*", 404, "No app is deployed at nope.localhost", "text/html"},
		{"bare domain", "localhost", "", 404, "No app is deployed at localhost", "text/plain"},
		{"nested label", "a.hello.localhost", "", 404, "No app is deployed", "text/plain"},
		{"other domain", "hello.example.com", "", 404, "No app is deployed", "text/plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.accept != "" {
				h.Set("Accept", tc.accept)
			}
			res := tg.get(t, tg.url(tc.host, "/"), h)
			if res.status != tc.wantStatus || !strings.Contains(res.body, tc.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tc.host, res.status, res.body, tc.wantStatus, tc.wantBody)
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("GET %s Content-Type = %q, want %s", tc.host, ct, tc.wantType)
			}
			if res.header.Get("X-Request-Id") == "" || res.header.Get("Strict-Transport-Security") != hstsValue {
				t.Errorf("GET %s headers %v lack X-Request-Id or HSTS", tc.host, res.header)
			}
			if res.status != 200 && !strings.Contains(res.body, res.header.Get("X-Request-Id")) {
				t.Errorf("error page %q does not show the request ID %s", res.body, res.header.Get("X-Request-Id"))
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	tg := startGateway(t, false)
	tests := []struct {
		name, reason, want string
	}{
		{"with reason", "release 3 is starting (health check pending)", "release 3 is starting (health check pending)"},
		{"without reason", "", "no instance of the app is ready"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.SetBackends("hello", nil, tc.reason)
			for _, accept := range []string{"", "text/html"} {
				res := tg.get(t, tg.url("hello.localhost", "/"), http.Header{"Accept": {accept}})
				if res.status != http.StatusServiceUnavailable || !strings.Contains(res.body, tc.want) {
					t.Errorf("GET (Accept %q) = %d %q, want 503 containing %q", accept, res.status, res.body, tc.want)
				}
				if got := res.header.Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After = %q, want 1", got)
				}
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	tg := startGateway(t, false)
	tg.SetBackends("hello", []Backend{newUpstream(t, "a").backend(), newUpstream(t, "b").backend()}, "")
	counts := map[string]int{}
	for range 10 {
		res := tg.get(t, tg.url("hello.localhost", "/"), nil)
		if res.status != 200 {
			t.Fatalf("GET = %d %q, want 200", res.status, res.body)
		}
		counts[res.body]++
	}
	if counts["a"] != 5 || counts["b"] != 5 {
		t.Errorf("10 requests went %v, want 5 to each backend", counts)
	}
}

func TestHasHost(t *testing.T) {
	g := New(Config{Domain: "Apps.Example.COM."})
	g.SetBackends("hello", []Backend{{ID: "h1", Addr: "127.0.0.1:1"}}, "")
	g.SetBackends("idle", nil, "scaled to zero")
	g.SetBackends("gone", []Backend{{ID: "g1", Addr: "127.0.0.1:2"}}, "")
	g.RemoveApp("gone")
	tests := []struct {
		host string
		want bool
	}{
		{"hello.apps.example.com", true},
		{"HELLO.apps.example.com", true},
		{"hello.apps.example.com:443", true},
		{"idle.apps.example.com", true},
		{"gone.apps.example.com", false},
		{"nope.apps.example.com", false},
		{"apps.example.com", false},
		{".apps.example.com", false},
		{"x.hello.apps.example.com", false},
		{"hello.example.com", false},
		{"helloapps.example.com", false},
		{"", false},
		{"[::1]:443", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			if got := g.HasHost(tc.host); got != tc.want {
				t.Errorf("HasHost(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}

func TestAppOf(t *testing.T) {
	g := New(Config{Domain: "localhost"})
	tests := []struct {
		host, app string
		ok        bool
	}{
		{"hello.localhost", "hello", true},
		{"hello.localhost:8443", "hello", true},
		{"Hello.LOCALHOST", "hello", true},
		{"hello.localhost.:443", "hello", true},
		{"my-app.localhost", "my-app", true},
		{"café.localhost", "", false},
		{"a_b.localhost", "", false},
		{strings.Repeat("a", 64) + ".localhost", "", false},
		{"localhost", "", false},
		{"xlocalhost", "", false},
		{"a.b.localhost", "", false},
		{"hello.localhost.evil", "", false},
		{"[::1]:443", "", false},
		{"::1", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			app, ok := g.appOf(tc.host)
			if app != tc.app || ok != tc.ok {
				t.Errorf("appOf(%q) = %q, %v, want %q, %v", tc.host, app, ok, tc.app, tc.ok)
			}
		})
	}
}

func FuzzAppOf(f *testing.F) {
	for _, s := range []string{"hello.localhost", "HELLO.localhost:1", "[::1]:2", "a.b.localhost.", ":"} {
		f.Add(s)
	}
	g := New(Config{Domain: "localhost"})
	f.Fuzz(func(t *testing.T, host string) {
		app, ok := g.appOf(host)
		if !ok {
			return
		}
		if app == "" || strings.Trim(app, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			t.Errorf("appOf(%q) = %q, not a lower-case DNS label", host, app)
		}
		if !strings.Contains(strings.ToLower(host), app+".localhost") {
			t.Errorf("appOf(%q) = %q, not found in the host", host, app)
		}
	})
}

func TestRemoveApp(t *testing.T) {
	tg := startGateway(t, false)
	tg.SetBackends("hello", []Backend{newUpstream(t, "a").backend()}, "")
	if res := tg.get(t, tg.url("hello.localhost", "/"), nil); res.status != 200 {
		t.Fatalf("GET before RemoveApp = %d, want 200", res.status)
	}
	tg.RemoveApp("hello")
	if res := tg.get(t, tg.url("hello.localhost", "/"), nil); res.status != 404 {
		t.Errorf("GET after RemoveApp = %d, want 404", res.status)
	}
	tg.RemoveApp("hello") // removing twice is harmless
}

// TestSetBackendsConcurrent changes the table while requests flow; under
// -race it checks the lock-free read path. Every answer must be a backend's
// or the 503 page of an empty set, never a 502 or a 404.
func TestSetBackendsConcurrent(t *testing.T) {
	tg := startGateway(t, false)
	a, b := newUpstream(t, "a").backend(), newUpstream(t, "b").backend()
	sets := [][]Backend{{a}, {b}, {a, b}, nil, {b, a}}
	tg.SetBackends("hello", sets[0], "")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			tg.SetBackends("hello", sets[i%len(sets)], "switching")
			tg.SetBackends("other", sets[(i+1)%len(sets)], "")
		}
	})
	var mu sync.Mutex
	counts := map[int]int{}
	var clients sync.WaitGroup
	for range 4 {
		clients.Go(func() {
			for range 50 {
				res := tg.get(t, tg.url("hello.localhost", "/"), nil)
				mu.Lock()
				counts[res.status]++
				mu.Unlock()
				if res.status != 200 && res.status != 503 {
					t.Errorf("GET during SetBackends = %d %q, want 200 or 503", res.status, res.body)
				}
			}
		})
	}
	clients.Wait()
	stop.Store(true)
	wg.Wait()
	if counts[200] == 0 {
		t.Errorf("no request succeeded while the table changed: %v", counts)
	}
}
