package supervisor

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"noops/internal/spec"
	"noops/internal/store"
)

// The OpenTelemetry variables sandboxEnv adds for app web, release 3.
const (
	otelName  = "OTEL_SERVICE_NAME=web"
	otelAttrs = "OTEL_RESOURCE_ATTRIBUTES=noops.app=web,noops.release=3"
)

func TestSandboxEnv(t *testing.T) {
	t.Parallel()
	rel := store.Release{App: "web", Number: 3}
	tests := []struct {
		name   string
		image  []string
		runEnv map[string]string
		relEnv map[string]string
		want   []string
	}{
		{
			name: "platform vars only",
			want: []string{"PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
		{
			name:  "image env first, in image order",
			image: []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"},
			want:  []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
		{
			name:   "run.env overrides image env in place",
			image:  []string{"PATH=/bin", "MODE=image"},
			runEnv: map[string]string{"MODE": "run", "A": "1"},
			want:   []string{"PATH=/bin", "MODE=run", "A=1", "PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
		{
			name:   "release env overrides run.env and image env",
			image:  []string{"MODE=image"},
			runEnv: map[string]string{"MODE": "run", "B": "run"},
			relEnv: map[string]string{"MODE": "release", "C": "release"},
			want:   []string{"MODE=release", "B=run", "C=release", "PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
		{
			name:   "platform vars win over everything",
			image:  []string{"PORT=1", "NOOPS_APP=image"},
			runEnv: map[string]string{"PORT": "2", "NOOPS_RELEASE": "run"},
			relEnv: map[string]string{"PORT": "3", "NOOPS_APP": "release", "NOOPS_RELEASE": "99"},
			want:   []string{"PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
		{
			name:   "map keys in sorted order",
			runEnv: map[string]string{"Z": "z", "M": "m", "A": "a", "Q": "q", "B": "b"},
			relEnv: map[string]string{"Y": "y", "C": "c"},
			want:   []string{"A=a", "B=b", "M=m", "Q=q", "Z=z", "C=c", "Y=y", "PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
		{
			name:  "image entry without value",
			image: []string{"FLAG"},
			want:  []string{"FLAG=", "PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
		{
			name:   "the app names its own service and adds attributes",
			runEnv: map[string]string{"OTEL_SERVICE_NAME": "shop-api", "OTEL_RESOURCE_ATTRIBUTES": "team=a"},
			want:   []string{"OTEL_RESOURCE_ATTRIBUTES=" + otelAttrs[len("OTEL_RESOURCE_ATTRIBUTES="):] + ",team=a", "OTEL_SERVICE_NAME=shop-api", "PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3"},
		},
		{
			name:  "value holding '='",
			image: []string{"OPTS=a=b=c"},
			want:  []string{"OPTS=a=b=c", "PORT=8080", "NOOPS_APP=web", "NOOPS_RELEASE=3", otelName, otelAttrs},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := spec.Run{Port: 8080, Env: tc.runEnv}
			r := rel
			r.Env = tc.relEnv
			// Map order is random; asking several times shows the result
			// does not depend on it.
			for range 20 {
				got := sandboxEnv(tc.image, run, r)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("sandboxEnv(%q, run.env=%v, release env=%v) =\n  %q\nwant\n  %q", tc.image, tc.runEnv, tc.relEnv, got, tc.want)
				}
			}
		})
	}
}

func TestParseUser(t *testing.T) {
	t.Parallel()
	const nonroot = 65532
	tests := []struct {
		name     string
		in       string
		uid, gid uint32
	}{
		{"nonroot pair", "65532:65532", 65532, 65532},
		{"uid and gid", "1000:2000", 1000, 2000},
		{"uid only gives gid uid", "1000", 1000, 1000},
		{"root becomes nonroot", "0:0", nonroot, nonroot},
		{"root uid with other gid becomes nonroot", "0:1000", nonroot, nonroot},
		{"bare root", "0", nonroot, nonroot},
		{"empty", "", nonroot, nonroot},
		{"name", "abc", nonroot, nonroot},
		{"user name with group", "app:app", nonroot, nonroot},
		{"bad gid falls back to uid", "1000:abc", 1000, 1000},
		{"negative", "-1", nonroot, nonroot},
		{"too big for 32 bits", "4294967296", nonroot, nonroot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			uid, gid := parseUser(tc.in)
			if uid != tc.uid || gid != tc.gid {
				t.Errorf("parseUser(%q) = %d, %d, want %d, %d", tc.in, uid, gid, tc.uid, tc.gid)
			}
		})
	}
}

func TestRunConfig(t *testing.T) {
	t.Parallel()
	defaults := spec.Run{Port: spec.DefaultPort, Replicas: spec.DefaultReplicas, Memory: spec.DefaultMemory,
		Pids: spec.DefaultPids, Health: spec.DefaultHealth}
	tests := []struct {
		name   string
		config string
		want   spec.Run
	}{
		{"no config", "", defaults},
		{"empty object", "{}", defaults},
		{
			"set fields kept, others defaulted",
			`{"port":3000,"memory":"512Mi","env":{"A":"1"}}`,
			spec.Run{Port: 3000, Replicas: spec.DefaultReplicas, Memory: 512 << 20, Pids: spec.DefaultPids,
				Health: spec.DefaultHealth, Env: map[string]string{"A": "1"}},
		},
		{
			"everything set",
			`{"port":9000,"replicas":3,"memory":"1Gi","pids":64,"health":"/healthz"}`,
			spec.Run{Port: 9000, Replicas: 3, Memory: 1 << 30, Pids: 64, Health: "/healthz"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rel := store.Release{App: "web", Number: 7}
			if tc.config != "" {
				rel.Config = json.RawMessage(tc.config)
			}
			got, err := RunConfig(rel)
			if err != nil {
				t.Fatalf("RunConfig(config %q) error = %v", tc.config, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RunConfig(config %q) = %+v, want %+v", tc.config, got, tc.want)
			}
		})
	}
}

func TestRunConfigBadJSON(t *testing.T) {
	t.Parallel()
	_, err := RunConfig(store.Release{App: "web", Number: 7, Config: json.RawMessage(`{"port":`)})
	if err == nil || !strings.Contains(err.Error(), "release 7") {
		t.Errorf("RunConfig(truncated JSON) error = %v, want one naming release 7", err)
	}
}
