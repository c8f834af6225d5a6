package spec

import (
	"strings"
	"testing"
	"time"
)

func TestParseMonitorsAndAlerts(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(`
monitors:
  - { name: api, path: /api/ping, interval: 15s, timeout: 5s, status: [2xx, "304"], body: pong, max_latency: 300ms }
  - { name: db, tcp: "db.example.com:5432" }
  - { name: cert, tls: "shop.example.com:443", cert_min_days: 21 }
  - { name: backup, push: true, interval: 24h, grace: 1h }
alerts:
  - name: errors
    metric: 'sum(rate(http_server_request_duration_seconds_count{app="shop",http_response_status_code=~"5.."}[5m])) > 0.1'
    for: 5m
    severity: critical
  - { name: panics, log: "/panic: .*/", window: 10m }
  - { name: down, monitor: "*" }
  - { name: traffic, anomaly: rate }
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Monitors) != 4 || m.Monitors[0].Path != "/api/ping" || time.Duration(m.Monitors[0].MaxLatency) != 300*time.Millisecond || !m.Monitors[3].Push {
		t.Errorf("monitors = %+v", m.Monitors)
	}
	if len(m.Alerts) != 4 || time.Duration(m.Alerts[0].For) != 5*time.Minute || m.Alerts[3].Anomaly != "rate" {
		t.Errorf("alerts = %+v", m.Alerts)
	}
}

func TestBadMonitorsAndAlerts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, yaml, want string }{
		{"two kinds", "monitors: [{ name: a, tcp: 'h:1', tls: 'h:2' }]", "exactly one of http, path, tcp, tls and push"},
		{"no kind", "monitors: [{ name: a }]", "exactly one of"},
		{"bad url", "monitors: [{ name: a, http: 'ftp://x' }]", "http:// or https://"},
		{"bad port", "monitors: [{ name: a, tcp: 'h:99999' }]", "is not HOST:PORT"},
		{"duplicate", "monitors: [{ name: a, path: /a }, { name: a, path: /b }]", "used twice"},
		{"bad status", "monitors: [{ name: a, path: /, status: [OK] }]", "must be a code like 200"},
		{"timeout over interval", "monitors: [{ name: a, path: /, interval: 5s, timeout: 10s }]", "at most the interval"},
		{"bad regexp", "monitors: [{ name: a, path: /, body_regexp: '(' }]", "body_regexp"},
		{"bad promql", "alerts: [{ name: e, metric: 'rate(x[5m' }]", "not a PromQL expression"},
		{"unknown monitor", "alerts: [{ name: e, monitor: nope }]", "no monitor named nope"},
		{"bad anomaly", "alerts: [{ name: e, anomaly: cpu }]", "rate, errors or latency"},
		{"bad op", "alerts: [{ name: e, log: x, op: '=>' }]", "op must be"},
		{"two rules", "alerts: [{ name: e, log: x, anomaly: rate }]", "exactly one of metric"},
		{"bad severity", "alerts: [{ name: e, log: x, severity: page }]", "severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %v, want an error with %q", tc.yaml, err, tc.want)
			}
		})
	}
}
