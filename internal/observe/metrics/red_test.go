package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func scrape(t *testing.T, m *Metrics, accept string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, req)
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

func TestRequestMetrics(t *testing.T) {
	m := New()
	const tp = "4bf92f3577b34da6a3ce929d0e0e4736"
	m.Request("shop", "GET", "/orders/42", 200, 30*time.Millisecond, tp)
	m.Request("shop", "BREW", "/", 501, time.Millisecond, "")
	m.ColdStart("shop", 3*time.Millisecond)

	text := scrape(t, m, "")
	for _, want := range []string{
		`http_server_request_duration_seconds_bucket{app="shop",http_request_method="GET",http_response_status_code="200",http_route="/orders/{id}",le="0.05"} 1`,
		`http_server_request_duration_seconds_count{app="shop",http_request_method="_OTHER",http_response_status_code="501",http_route="/"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	lint(t, m)

	om := scrape(t, m, "application/openmetrics-text; version=1.0.0")
	if !strings.Contains(om, `# {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.03`) {
		t.Errorf("no exemplar with the trace ID in the OpenMetrics scrape:\n%s", grep(om, "http_server_request_duration_seconds_bucket"))
	}

	m.Forget("shop")
	if strings.Contains(scrape(t, m, ""), `app="shop"`) {
		t.Error("a deleted app's series stay")
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestEventMetrics(t *testing.T) {
	m := New()
	m.Delivery("billing", "retried", 20*time.Millisecond)
	m.Delivery("billing", "delivered", 3*time.Millisecond)
	m.Published()
	m.Backlog(func(context.Context) map[string]uint64 { return map[string]uint64{"billing": 7} })
	text := scrape(t, m, "")
	for _, want := range []string{
		`noops_event_delivery_duration_seconds_count{app="billing",outcome="retried"} 1`,
		`noops_event_delivery_duration_seconds_count{app="billing",outcome="delivered"} 1`,
		`noops_events_published_total 1`,
		`noops_event_backlog{app="billing"} 7`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	problems, _ := promlint.New(strings.NewReader(text)).Lint()
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "noops_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestSandboxMetrics(t *testing.T) {
	m := New()
	m.Sandboxes(func(context.Context) []SandboxUsage {
		return []SandboxUsage{{App: "shop", Sandbox: "shop-1-abc", CPU: 1500 * time.Millisecond, Memory: 12 << 20, Pids: 7}}
	})
	text := scrape(t, m, "")
	for _, want := range []string{
		`noops_sandbox_cpu_seconds_total{app="shop",sandbox="shop-1-abc"} 1.5`,
		`noops_sandbox_memory_bytes{app="shop",sandbox="shop-1-abc"} 1.2582912e+07`,
		`noops_sandbox_pids{app="shop",sandbox="shop-1-abc"} 7`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, text)
		}
	}
	lint(t, m)
}

// lint fails t with what `promtool check metrics` would say of m's scrape.
func lint(t *testing.T, m *Metrics) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(scrape(t, m, ""))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "go_") || strings.HasPrefix(p.Metric, "process_") {
			continue // client_golang's own collectors
		}
		t.Errorf("promtool check metrics would say: %s: %s", p.Metric, p.Text)
	}
}
