package spec

import (
	"encoding/json"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; "" means success
		check   func(*Manifest) bool
	}{
		{name: "empty gets defaults", yaml: "", check: func(m *Manifest) bool {
			return m.Run.Port == 8080 && m.Run.Replicas == 1 && m.Run.Memory == 256<<20 && m.Run.Health == "/"
		}},
		{name: "full", yaml: "name: hello\nbuild: { env: { CGO_ENABLED: \"0\" } }\nrun:\n  port: 9000\n  replicas: 2\n  memory: 128Mi\n  health: /healthz\n",
			check: func(m *Manifest) bool {
				return m.Name == "hello" && m.Run.Port == 9000 && m.Run.Replicas == 2 && m.Run.Memory == 128<<20 &&
					m.Run.Health == "/healthz" && m.Build.Env["CGO_ENABLED"] == "0"
			}},
		{name: "typo has line number", yaml: "name: hello\nrun:\n  prot: 8080\n", wantErr: "line 3: field prot not found in section run"},
		{name: "top-level typo", yaml: "nmae: x\n", wantErr: "line 1: field nmae not found"},
		{name: "wrong type", yaml: "run:\n  port: eighty\n", wantErr: "line 2"},
		{name: "bad memory", yaml: "run:\n  memory: lots\n", wantErr: "line 2: \"lots\" is not a size"},
		{name: "port range", yaml: "run: { port: 70000 }\n", wantErr: "run.port: 70000 is not a TCP port"},
		{name: "bad name", yaml: "name: Hello_World\n", wantErr: "app name \"Hello_World\" is not valid"},
		{name: "bad health", yaml: "run: { health: healthz }\n", wantErr: "run.health"},
		{name: "bad env name", yaml: "run: { env: { 1X: y } }\n", wantErr: "run.env: environment variable name \"1X\""},
		{name: "two documents", yaml: "name: a\n---\nname: b\n", wantErr: "only one YAML document"},
		{name: "duplicate key", yaml: "name: a\nname: b\n", wantErr: "already defined"},
		{name: "tiny memory", yaml: "run: { memory: 1Mi }\n", wantErr: "below the minimum"},
		{name: "workers unset stays unset", yaml: "run: { port: 8080 }\n", check: func(m *Manifest) bool { return m.Run.Workers == nil }},
		{name: "workers zero is kept", yaml: "run: { workers: 0 }\n", check: func(m *Manifest) bool {
			return m.Run.Workers != nil && *m.Run.Workers == 0
		}},
		{name: "workers set", yaml: "run:\n  workers: 3\n", check: func(m *Manifest) bool {
			return m.Run.Workers != nil && *m.Run.Workers == 3
		}},
		{name: "workers at the maximum", yaml: "run: { workers: 100 }\n", check: func(m *Manifest) bool {
			return m.Run.Workers != nil && *m.Run.Workers == 100
		}},
		{name: "workers above the maximum", yaml: "run: { workers: 101 }\n", wantErr: "run.workers: 101 is out of range (0-100)"},
		{name: "negative workers", yaml: "run: { workers: -1 }\n", wantErr: "run.workers: -1 is out of range"},
		{name: "workers not a number", yaml: "run:\n  workers: many\n", wantErr: "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tc.yaml, err, tc.wantErr)
				}
				if !errkind.Is(err, errkind.Invalid) {
					t.Errorf("Parse(%q) error kind = %v, want invalid", tc.yaml, errkind.Of(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tc.yaml, err)
			}
			if !tc.check(m) {
				t.Errorf("Parse(%q) = %+v, not as expected", tc.yaml, m)
			}
		})
	}
}

func TestQuantity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Quantity
		ok   bool
	}{
		{"128Mi", 128 << 20, true}, {"1Gi", 1 << 30, true}, {"512M", 512e6, true},
		{"4096", 4096, true}, {"-1", 0, false}, {"Mi", 0, false}, {"99999999999Ti", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseQuantity(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseQuantity(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok {
			back, err := ParseQuantity(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %q via %q = %v, %v", tc.in, got.String(), back, err)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name: hello\nrun: { port: 8080, memory: 128Mi }\n"))
	f.Add([]byte("run:\n  replicas: 3\n  health: /healthz\n"))
	f.Add([]byte("build: { env: { A: b } }"))
	f.Add([]byte("run: { workers: 0, replicas: 2 }"))
	f.Add([]byte("run: { scale: { min: 0, max: 3, concurrency: 10, idle: 30s, window: 6s } }"))
	f.Add([]byte("monitors: [{ name: a, path: /x }]\nalerts: [{ name: e, metric: up, for: 1m }]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errkind.Is(err, errkind.Invalid) {
				t.Fatalf("Parse error not classified invalid: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse accepted a manifest that does not validate: %v", err)
		}
	})
}

// TestWorkersJSON checks that run.workers survives the JSON a release keeps
// its run config in, unset and zero staying apart.
func TestWorkersJSON(t *testing.T) {
	t.Parallel()
	for _, yaml := range []string{"", "run: { workers: 0 }\n", "run: { workers: 2 }\n"} {
		m, err := Parse([]byte(yaml))
		if err != nil {
			t.Fatalf("Parse(%q) = %v", yaml, err)
		}
		b, err := json.Marshal(m.Run)
		if err != nil {
			t.Fatal(err)
		}
		var back Run
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if (back.Workers == nil) != (m.Run.Workers == nil) || back.Workers != nil && *back.Workers != *m.Run.Workers {
			t.Errorf("run.workers of %q through JSON %s = %v, want %v", yaml, b, back.Workers, m.Run.Workers)
		}
	}
}

func TestValidAppName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"hello", true}, {"hello-node", true}, {"a1", true},
		{"", false}, {"Hello", false}, {"1app", false}, {"app-", false}, {"a_b", false},
		{"a234567890123456789012345678901", false}, // 31 characters
		{"registry", false},                        // the registry endpoint's host
	} {
		if err := ValidAppName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidAppName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
