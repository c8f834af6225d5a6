package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestColdStarts(t *testing.T) {
	m := New()
	if st := m.ColdStarts("app"); st.Count != 0 || st.P50 != 0 {
		t.Errorf("no cold starts: %+v, want zero", st)
	}
	for i := 1; i <= 100; i++ {
		m.ColdStart("app", time.Duration(i)*time.Millisecond)
	}
	m.ColdStart("other", time.Second)
	st := m.ColdStarts("app")
	if st.Count != 100 || st.P50 != 50*time.Millisecond || st.P99 != 99*time.Millisecond || st.Max != 100*time.Millisecond {
		t.Errorf("ColdStarts = %+v, want 100, p50 50ms, p99 99ms, max 100ms", st)
	}
	// Past the ring's size the summary covers the latest ones, the count all.
	for range recentSize {
		m.ColdStart("app", 5*time.Millisecond)
	}
	if st := m.ColdStarts("app"); st.Count != 100+recentSize || st.Max != 5*time.Millisecond {
		t.Errorf("after %d more: %+v, want count %d and only the latest", recentSize, st, 100+recentSize)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`noops_cold_start_seconds_count{app="app"} 1124`,
		`noops_cold_start_seconds_bucket{app="other",le="1"} 1`,
		`noops_cold_start_seconds_bucket{app="other",le="0.5"} 0`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	m.Forget("other")
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ = io.ReadAll(rec.Body)
	if strings.Contains(string(body), `app="other"`) || m.ColdStarts("other").Count != 0 {
		t.Errorf("a forgotten app's cold starts are still there")
	}
}

func TestQuantile(t *testing.T) {
	xs := []time.Duration{1, 2, 3, 4}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 2}, {0.75, 3}, {0.99, 4}, {1, 4}} {
		if got := Quantile(xs, tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if Quantile(nil, 0.5) != 0 {
		t.Errorf("Quantile of nothing is not 0")
	}
}
