package app

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"noops/internal/gateway"
	"noops/internal/observe/logstore"
	"noops/internal/observe/metrics"
	"noops/internal/observe/trace"
	"noops/internal/observe/tracestore"
)

func TestRedactQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"/a", "/a"},
		{"/a?q=shoes&page=2", "/a?q=shoes&page=2"},
		{"/reset?token=s3cret&user=bob", "/reset?token=REDACTED&user=bob"},
		{"/cb?code=abc&state=x&api_key=k", "/cb?code=REDACTED&state=x&api_key=REDACTED"},
		{"/x?Password=p&flag", "/x?Password=REDACTED&flag"},
		{"/x?%74oken=t", "/x?%74oken=REDACTED"},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		if got := redactQuery(r.URL); got != tc.want {
			t.Errorf("redactQuery(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
	if got := redactReferer("https://a.example/p?session=1#x"); got != "https://a.example/p" {
		t.Errorf("redactReferer = %q", got)
	}
}

// BenchmarkObserved is what each request to an app costs the gateway for
// its telemetry: the RED sample, the access line and the gateway's span
// (the stores' writers run beside it).
func BenchmarkObserved(b *testing.B) {
	ls, err := logstore.Open(b.TempDir(), logstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ls.Close()
	ts, err := tracestore.Open(b.TempDir(), tracestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ts.Close()
	a := &App{logs: ls, traces: ts, metrics: metrics.New(), log: slog.New(slog.DiscardHandler)}
	r := httptest.NewRequest("GET", "https://shop.example.com/orders/42?page=2", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s := &gateway.Served{App: "shop", Start: time.Now(), Duration: 3 * time.Millisecond, Status: 200, BytesOut: 5120, Span: trace.New()}
		a.observed(r, s)
	}
}
