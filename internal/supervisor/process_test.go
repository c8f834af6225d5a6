package supervisor

import (
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/runtime"
	"noops/internal/spec"
)

func TestProcesses(t *testing.T) {
	t.Parallel()
	imageEnv := []string{"PATH=/app:/usr/bin:/bin", "PORT=8080", "MODE=web"}
	tests := []struct {
		name    string
		cfg     v1.Config
		want    map[string]process
		wantErr string // substring; "" means success
	}{
		{
			name: "no label: the entrypoint is the web process",
			cfg:  v1.Config{Entrypoint: []string{"/app/server"}, Cmd: []string{"--flag"}, WorkingDir: "/app", Env: imageEnv},
			want: map[string]process{Web: {Args: []string{"/app/server", "--flag"}, Cwd: "/app", Env: imageEnv}},
		},
		{
			name:    "no label and nothing to run",
			cfg:     v1.Config{Env: imageEnv},
			wantErr: "neither an entrypoint nor",
		},
		{
			name: "web, worker and release",
			cfg: v1.Config{WorkingDir: "/app", Env: imageEnv, Labels: map[string]string{LabelProcesses: `{
				"web":{"Command":["app","serve"],"WorkingDir":"","Env":{"MODE":"web"}},
				"worker":{"Command":["app","work"],"WorkingDir":"/app/jobs","Env":{"MODE":"worker","QUEUE":"q"}},
				"release":{"Command":["/app/app","migrate"],"WorkingDir":"","Env":null}}`}},
			want: map[string]process{
				Web:     {Args: []string{"app", "serve"}, Cwd: "/app", Env: imageEnv},
				Worker:  {Args: []string{"app", "work"}, Cwd: "/app/jobs", Env: []string{"PATH=/app:/usr/bin:/bin", "PORT=8080", "MODE=worker", "QUEUE=q"}},
				Release: {Args: []string{"/app/app", "migrate"}, Cwd: "/app", Env: imageEnv},
			},
		},
		{
			name: "worker only",
			cfg:  v1.Config{Env: imageEnv, Labels: map[string]string{LabelProcesses: `{"worker":{"Command":["job"]}}`}},
			want: map[string]process{Worker: {Args: []string{"job"}, Env: imageEnv}},
		},
		{
			name: "a process cannot change PATH or PORT",
			cfg:  v1.Config{Env: imageEnv, Labels: map[string]string{LabelProcesses: `{"worker":{"Command":["job"],"Env":{"PATH":"/evil","PORT":"1","B":"2","A":"1"}}}`}},
			want: map[string]process{Worker: {Args: []string{"job"}, Env: append(append([]string{}, imageEnv...), "A=1", "B=2")}},
		},
		{
			name:    "release only",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `{"release":{"Command":["migrate"]}}`}},
			wantErr: "neither a web nor a worker process",
		},
		{
			name:    "empty label",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `{}`}},
			wantErr: "neither a web nor a worker process",
		},
		{
			name:    "not JSON",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `web: app serve`}},
			wantErr: "reading the image's dev.noops.processes label",
		},
		{
			name:    "unknown type",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `{"web":{"Command":["a"]},"cron":{"Command":["b"]}}`}},
			wantErr: `process type "cron"`,
		},
		{
			name:    "no command",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `{"web":{"Command":[]}}`}},
			wantErr: "web process has no command",
		},
		{
			name:    "empty program",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `{"worker":{"Command":["", "x"]}}`}},
			wantErr: "worker process has no command",
		},
		{
			name:    "relative path with a slash",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `{"web":{"Command":["bin/server"]}}`}},
			wantErr: `command "bin/server" must be a name on PATH or an absolute path`,
		},
		{
			name:    "relative working folder",
			cfg:     v1.Config{Labels: map[string]string{LabelProcesses: `{"web":{"Command":["s"],"WorkingDir":"app"}}`}},
			wantErr: `working folder "app" is not absolute`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := processes(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("processes(%+v) error = %v, want one containing %q", tc.cfg, err, tc.wantErr)
				}
				if !errkind.Is(err, errkind.Invalid) {
					t.Errorf("processes(%+v) error kind = %v, want invalid", tc.cfg, errkind.Of(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("processes(%+v) error = %v", tc.cfg, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("processes(%+v) =\n  %+v\nwant\n  %+v", tc.cfg, got, tc.want)
			}
		})
	}
}

// TestProcessesDoesNotAlias checks that the specs do not share the image
// config's slices: a sandbox's env must not change the image's.
func TestProcessesDoesNotAlias(t *testing.T) {
	t.Parallel()
	cfg := v1.Config{Entrypoint: []string{"/s"}, Env: []string{"A=1"}}
	procs, err := processes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	procs[Web].Env[0] = "A=changed"
	procs[Web].Args[0] = "/changed"
	if cfg.Env[0] != "A=1" || cfg.Entrypoint[0] != "/s" {
		t.Errorf("changing a process spec changed the image config: %+v", cfg)
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	n := func(i int) *int { return &i }
	web := map[string]process{Web: {}}
	worker := map[string]process{Worker: {}}
	both := map[string]process{Web: {}, Worker: {}, Release: {}}
	tests := []struct {
		name     string
		procs    map[string]process
		replicas int
		workers  *int
		wantWeb  int
		wantWork int
		wantErr  string
	}{
		{"web only, workers unset", web, 2, nil, 2, 0, ""},
		{"web only, workers zero", web, 1, n(0), 1, 0, ""},
		{"web only, workers asked", web, 1, n(2), 0, 0, "run.workers is 2 but the image declares no worker process"},
		{"both, workers unset default to one", both, 3, nil, 3, 1, ""},
		{"both, workers zero runs none", both, 1, n(0), 1, 0, ""},
		{"both, workers set", both, 1, n(4), 1, 4, ""},
		{"both, web scaled to zero", both, 0, nil, 0, 1, ""},
		{"worker only has no web replicas", worker, 2, nil, 0, 1, ""},
		{"worker only with workers set", worker, 1, n(5), 0, 5, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := webCount(tc.replicas, tc.procs); got != tc.wantWeb && tc.wantErr == "" {
				t.Errorf("webCount(%d, %v) = %d, want %d", tc.replicas, tc.procs, got, tc.wantWeb)
			}
			got, err := workerCount(spec.Run{Workers: tc.workers}, tc.procs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errkind.Is(err, errkind.Invalid) {
					t.Fatalf("workerCount(%v, %v) error = %v, want an invalid one containing %q", tc.workers, tc.procs, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.wantWork {
				t.Errorf("workerCount(%v, %v) = %d, %v, want %d", tc.workers, tc.procs, got, err, tc.wantWork)
			}
		})
	}
}

func TestSandboxID(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 29) + "z" // the longest app name
	tests := []struct {
		name   string
		app    string
		rel    int
		proc   string
		prefix string
	}{
		{"web keeps the old form", "hello", 3, Web, "hello-3-"},
		{"worker", "hello", 3, Worker, "hello-3-worker-"},
		{"release", "hello", 12, Release, "hello-12-release-"},
		{"app named like a type, web", "worker", 1, Web, "worker-1-"},
		{"app ending in a type, worker", "my-worker", 2, Worker, "my-worker-2-worker-"},
		{"app ending in w, web", "app-w", 7, Web, "app-w-7-"},
		{"app ending in r, web", "app-r", 7, Web, "app-r-7-"},
		{"long app, worker fits", long, 999, Worker, long + "-999-worker-"},
		{"long app, worker shortened", long, 1000, Worker, long + "-1000-w-"},
		{"long app, release fits", long, 5, Release, long + "-5-release-"},
		{"long app, release shortened", long, 1000, Release, long + "-1000-r-"},
		{"long app, huge release", long, 99999999, Worker, long + "-99999999-w-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := sandboxID(tc.app, tc.rel, tc.proc)
			if !strings.HasPrefix(id, tc.prefix) || len(id) != len(tc.prefix)+6 {
				t.Errorf("sandboxID(%q, %d, %s) = %q, want %q and 6 hex digits", tc.app, tc.rel, tc.proc, id, tc.prefix)
			}
			if err := runtime.ValidID(id); err != nil {
				t.Errorf("sandboxID(%q, %d, %s) = %q: %v", tc.app, tc.rel, tc.proc, id, err)
			}
			if got := ProcessOf(id); got != tc.proc {
				t.Errorf("ProcessOf(%q) = %s, want %s", id, got, tc.proc)
			}
		})
	}
	if a, b := sandboxID("x", 1, Worker), sandboxID("x", 1, Worker); a == b {
		t.Errorf("two sandboxID calls both gave %q", a)
	}
}

func TestProcessOf(t *testing.T) {
	t.Parallel()
	tests := []struct{ id, want string }{
		{"hello-3-a1b2c3", Web},
		{"worker-procfile-3-a1b2c3", Web},
		{"worker-procfile-3-worker-a1b2c3", Worker},
		{"hello-3-w-a1b2c3", Worker},
		{"hello-3-release-a1b2c3", Release},
		{"hello-3-r-a1b2c3", Release},
		{"w-1-0a0b0c", Web},
		{"odd", Web},
		{"", Web},
	}
	for _, tc := range tests {
		if got := ProcessOf(tc.id); got != tc.want {
			t.Errorf("ProcessOf(%q) = %s, want %s", tc.id, got, tc.want)
		}
	}
}

func TestTailWriter(t *testing.T) {
	t.Parallel()
	var emitted []string
	w := &tailWriter{emit: func(l string) { emitted = append(emitted, l) }, keep: 2}
	for _, chunk := range []string{"one\ntw", "o\r\n\nthree\n", "four (no newline)"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	w.Flush()
	want := []string{"one", "two", "", "three", "four (no newline)"}
	if !reflect.DeepEqual(emitted, want) {
		t.Errorf("emitted lines = %q, want %q", emitted, want)
	}
	if got, want := w.last(), `; last output: "three" "four (no newline)"`; got != want {
		t.Errorf("last() = %q, want %q", got, want)
	}
	empty := &tailWriter{emit: func(string) {}, keep: 5}
	if got := empty.last(); got != "; it wrote nothing" {
		t.Errorf("last() of no output = %q", got)
	}
}
