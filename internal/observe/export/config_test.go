package export

import (
	"strings"
	"testing"
)

func TestNewConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantErr  string // "" for success
		wantURL  string // http: the traces URL
		wantHost string // grpc: the dial target
		insecure bool
	}{
		{name: "https base", cfg: Config{Endpoint: "https://otel.example.com:4318"}, wantURL: "https://otel.example.com:4318/v1/traces"},
		{name: "base with path", cfg: Config{Endpoint: "https://otel.example.com/otlp/"}, wantURL: "https://otel.example.com/otlp/v1/traces"},
		{name: "query kept", cfg: Config{Endpoint: "https://otel.example.com?tenant=a"}, wantURL: "https://otel.example.com/v1/traces?tenant=a"},
		{name: "loopback http", cfg: Config{Endpoint: "http://127.0.0.1:4318"}, wantURL: "http://127.0.0.1:4318/v1/traces", insecure: true},
		{name: "localhost http", cfg: Config{Endpoint: "http://localhost:4318"}, wantURL: "http://localhost:4318/v1/traces", insecure: true},
		{name: "ipv6 loopback", cfg: Config{Endpoint: "http://[::1]:4318"}, wantURL: "http://[::1]:4318/v1/traces", insecure: true},
		{name: "remote http refused", cfg: Config{Endpoint: "http://otel.example.com:4318"}, wantErr: "not loopback"},
		{name: "remote http allowed", cfg: Config{Endpoint: "http://otel.example.com:4318", AllowInsecure: true}, wantURL: "http://otel.example.com:4318/v1/traces", insecure: true},
		{name: "credentials in URL", cfg: Config{Endpoint: "https://user:hunter2@otel.example.com"}, wantErr: "credentials"},
		{name: "not a URL", cfg: Config{Endpoint: "otel.example.com:4318"}, wantErr: "scheme"},
		{name: "ftp", cfg: Config{Endpoint: "ftp://otel.example.com"}, wantErr: "scheme"},
		{name: "empty", cfg: Config{}, wantErr: "no endpoint"},
		{name: "grpc host:port", cfg: Config{Endpoint: "otel.example.com:4317", Protocol: "grpc"}, wantHost: "otel.example.com:4317"},
		{name: "grpc default port", cfg: Config{Endpoint: "otel.example.com", Protocol: "grpc"}, wantHost: "otel.example.com:4317"},
		{name: "grpc plain loopback", cfg: Config{Endpoint: "http://127.0.0.1:4317", Protocol: "grpc"}, wantHost: "127.0.0.1:4317", insecure: true},
		{name: "grpc plain remote", cfg: Config{Endpoint: "http://otel.example.com:4317", Protocol: "grpc"}, wantErr: "not loopback"},
		{name: "grpc path", cfg: Config{Endpoint: "https://otel.example.com:4317/v1", Protocol: "grpc"}, wantErr: "path"},
		{name: "bad protocol", cfg: Config{Endpoint: "https://x", Protocol: "http/json"}, wantErr: "protocol"},
		{name: "bad compression", cfg: Config{Endpoint: "https://x", Compression: "zstd"}, wantErr: "compression"},
		{name: "tiny queue", cfg: Config{Endpoint: "https://x", MaxQueueBytes: 1000}, wantErr: "MaxQueueBytes"},
		{name: "bad header name", cfg: Config{Endpoint: "https://x", Headers: map[string]string{"Bad Name": "v"}}, wantErr: "not a token"},
		{name: "header injection", cfg: Config{Endpoint: "https://x", Headers: map[string]string{"Authorization": "Bearer t0k3nvalue\r\nX-Evil: 1"}}, wantErr: "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Dir = t.TempDir()
			e, err := New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New = %v, want an error containing %q", err, tc.wantErr)
				}
				for _, secret := range []string{"hunter2", "t0k3nvalue", "tenant="} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q quotes a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer e.closeQueues()
			if e.target.insecure != tc.insecure {
				t.Errorf("insecure = %v, want %v", e.target.insecure, tc.insecure)
			}
			switch c := e.client.(type) {
			case *httpClient:
				if c.urls[kindTraces] != tc.wantURL {
					t.Errorf("traces URL = %q, want %q", c.urls[kindTraces], tc.wantURL)
				}
				if strings.Contains(e.Stats().Endpoint, "tenant") {
					t.Errorf("Stats().Endpoint = %q shows the query", e.Stats().Endpoint)
				}
			case *grpcClient:
				c.close()
				if e.target.base.Host != tc.wantHost {
					t.Errorf("gRPC target = %q, want %q", e.target.base.Host, tc.wantHost)
				}
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	r := newRedactor(map[string]string{"Authorization": "Bearer abcdefgh12345", "X-Short": "ab"})
	for in, want := range map[string]string{
		"denied: Bearer abcdefgh12345":  "denied: [REDACTED]",
		"token abcdefgh12345 expired":   "token [REDACTED] expired",
		"ab is fine, too short to hide": "ab is fine, too short to hide",
	} {
		if got := r.apply(in); got != want {
			t.Errorf("apply(%q) = %q, want %q", in, got, want)
		}
	}
}
