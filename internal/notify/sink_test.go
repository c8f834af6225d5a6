package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sinkKinds are the HTTP sinks; each runs the conformance suite.
var sinkKinds = []struct {
	name string
	new  func(url string) Sink
}{
	{"webhook", func(url string) Sink { return Webhook(url, nil) }},
	{"slack", Slack},
}

// TestSinkConformance holds every HTTP sink to the same reply rules.
func TestSinkConformance(t *testing.T) {
	for _, k := range sinkKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			testSinkConformance(t, k.new)
		})
	}
}

func testSinkConformance(t *testing.T, newSink func(string) Sink) {
	statuses := []struct {
		code      int
		delivered bool
		permanent bool
	}{
		{200, true, false}, {201, true, false}, {204, true, false},
		{301, false, false}, {408, false, false}, {429, false, false},
		{500, false, false}, {502, false, false}, {503, false, false},
		{400, false, true}, {401, false, true}, {403, false, true},
		{404, false, true}, {410, false, true}, {422, false, true},
	}
	for _, tc := range statuses {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got %s with Content-Type %q, want POST application/json", r.Method, r.Header.Get("Content-Type"))
				}
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tc.code)
				w.Write([]byte("reply body"))
			}))
			defer srv.Close()
			err := newSink(srv.URL+"/hook").Send(context.Background(), ev("k"))
			if (err == nil) != tc.delivered || IsPermanent(err) != tc.permanent {
				t.Errorf("Send with reply %d = %v (permanent %v), want delivered %v permanent %v", tc.code, err, IsPermanent(err), tc.delivered, tc.permanent)
			}
		})
	}
	t.Run("hanging receiver", func(t *testing.T) {
		t.Parallel()
		srv := hangingServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := newSink(srv.URL).Send(ctx, ev("k"))
		if err == nil || IsPermanent(err) || time.Since(start) > 5*time.Second {
			t.Errorf("Send to a hanging receiver = %v after %v, want a retryable error at the deadline", err, time.Since(start))
		}
	})
	t.Run("endless reply body", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		begin := time.Now()
		if err := newSink(srv.URL).Send(ctx, ev("k")); err != nil || time.Since(begin) > 2*time.Second {
			t.Errorf("Send with an endless 200 reply = %v after %v, want nil at once (the body read is bounded)", err, time.Since(begin))
		}
	})
	t.Run("no secret in name or errors", func(t *testing.T) {
		t.Parallel()
		const secret = "T0000/B0000/XXXXsecretXXXX"
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close() // connection refused
		for _, base := range []string{srv.URL, down.URL, "http://user:pwsecret@" + strings.TrimPrefix(srv.URL, "http://")} {
			s := newSink(base + "/services/" + secret + "?token=" + secret)
			err := s.Send(context.Background(), ev("k"))
			if err == nil || strings.Contains(err.Error(), "secret") || strings.Contains(s.Name(), "secret") {
				t.Errorf("sink %q: Send = %v; want an error, and no secret in either", s.Name(), err)
			}
		}
	})
}

func TestSinkNames(t *testing.T) {
	tests := []struct {
		name string
		sink Sink
		want string
	}{
		{"webhook", Webhook("https://alerts.example.com:8443/hook/abc?t=1", nil), "webhook https://alerts.example.com:8443"},
		{"slack", Slack("https://hooks.slack.com/services/T0/B0/secret"), "slack hooks.slack.com"},
		{"webhook without userinfo", Webhook("http://u:p@example.com/x", nil), "webhook http://example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sink.Name(); got != tc.want {
				t.Errorf("Name() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadSinks(t *testing.T) {
	good := Webhook("http://example.com/a", nil)
	tests := []struct {
		name  string
		sinks []Sink
	}{
		{"not absolute", []Sink{Webhook("/relative/secret", nil)}},
		{"not http", []Sink{Slack("ftp://hooks.example.com/secret")}},
		{"does not parse", []Sink{Slack("http://[::1/secret")}},
		{"no host", []Sink{Webhook("http:///secret", nil)}},
		{"nil", []Sink{nil}},
		{"twice", []Sink{good, Webhook("http://example.com/a", nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Sinks: tc.sinks})
			if err == nil || strings.Contains(err.Error(), "secret") {
				t.Errorf("New = %v, want an error without the URL", err)
			}
		})
	}
	if _, err := New(Config{Sinks: []Sink{good, Webhook("http://example.com/b", nil)}}); err != nil {
		t.Errorf("New with two webhooks on one host = %v, want nil", err)
	}
}

// TestBodies checks the exact JSON each sink posts, through a Notifier.
func TestBodies(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	e := Event{
		Kind:     "ban",
		Key:      "203.0.113.0/24",
		Time:     at,
		Title:    "203.0.113.7 banned for 10m: flood",
		Severity: "Critical",
		App:      "shop",
		Fields:   map[string]string{"until": "2025-01-02T02:14:05Z", "trigger": "flood <!channel> & co"},
	}
	tests := []struct {
		name string
		sink func(url string) Sink
		e    Event
		want string
	}{
		{"webhook", func(u string) Sink { return Webhook(u, http.Header{"Authorization": {"Bearer tok"}}) }, e,
			`{"kind":"ban","key":"203.0.113.0/24","time":"2025-01-02T02:04:05Z","title":"203.0.113.7 banned for 10m: flood","severity":"critical","app":"shop","fields":{"trigger":"flood \u003c!channel\u003e \u0026 co","until":"2025-01-02T02:14:05Z"}}`},
		{"webhook defaults", func(u string) Sink { return Webhook(u, http.Header{"Authorization": {"Bearer tok"}}) }, Event{Kind: "unban", Key: "p", Time: at, Title: "p unbanned", Severity: "loud"},
			`{"kind":"unban","key":"p","time":"2025-01-02T02:04:05Z","title":"p unbanned","severity":"warning","app":"","fields":{}}`},
		{"slack", Slack, e,
			`{"text":"*critical* 203.0.113.7 banned for 10m: flood\ntrigger: flood \u0026lt;!channel\u0026gt; \u0026amp; co\nuntil: 2025-01-02T02:14:05Z"}`},
		{"slack one line per field", Slack, Event{Kind: "waf_block", Title: "blocked\nfake: line", Fields: map[string]string{"path": "/x\r\nrule: none"}},
			`{"text":"*warning* blocked fake: line\npath: /x rule: none"}`},
		{"slack without fields", Slack, Event{Kind: "waf_block", Severity: "info", Title: "blocked <b>"},
			`{"text":"*info* blocked \u0026lt;b\u0026gt;"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, nil)
			n := start(t, Config{Sinks: []Sink{tc.sink(r.URL + "/hook")}})
			if !n.Notify(tc.e) {
				t.Fatalf("Notify(%+v) = false, want true", tc.e)
			}
			waitFor(t, "delivery", func() bool { return sinkStats(n, 0).Delivered == 1 })
			r.mu.Lock()
			defer r.mu.Unlock()
			if got := string(r.bodies[0]); got != tc.want {
				t.Errorf("body =\n%s\nwant\n%s", got, tc.want)
			}
			if got := r.headers[0].Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if tc.name == "webhook" && r.headers[0].Get("Authorization") != "Bearer tok" {
				t.Errorf("Authorization = %q, want the configured header", r.headers[0].Get("Authorization"))
			}
		})
	}
}

func TestPermanentFromCustomSink(t *testing.T) {
	base := errors.New("no such channel")
	err := Permanent(base)
	if !IsPermanent(err) || !errors.Is(err, base) || IsPermanent(base) || Permanent(nil) != nil {
		t.Errorf("Permanent/IsPermanent do not round-trip: %v", err)
	}
}
