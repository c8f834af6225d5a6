package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"noops/internal/api"
	"noops/internal/api/apitest"
	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/gateway/ban"
	"noops/internal/store"
	"noops/internal/store/sqlite"
)

var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// server is a real API handler over a fake plane, listening on
// DIR/api.sock as `noops server --data DIR` would.
type server struct {
	dir   string
	plane *apitest.Plane
	logs  *apitest.Logs
	log   *syncBuffer

	httpLog *syncBuffer // net/http's own complaints: panics, bad requests
}

func startServer(t *testing.T, setup func(p *apitest.Plane), opts ...func(*api.Config)) *server {
	t.Helper()
	s := &server{dir: t.TempDir(), plane: apitest.NewPlane(testNow), logs: &apitest.Logs{Lines: map[string][]string{}}, log: &syncBuffer{}, httpLog: &syncBuffer{}}
	s.plane.AddApp("web", 2)
	if setup != nil {
		setup(s.plane)
	}
	db, err := sqlite.Open(filepath.Join(s.dir, "s.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	if _, err := db.AppendEvent(context.Background(), store.Event{Time: testNow, App: "web", Kind: "oom", Message: "web-2-0 was killed for exceeding its memory limit"}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(s.dir, "api.sock"))
	if err != nil {
		t.Fatalf("listening on the API socket: %v", err)
	}
	cfg := api.Config{Plane: s.plane, Audit: db, Events: db, Logs: s.logs,
		Status: func() apitype.Status { return apitype.Status{Version: "test"} },
		CARoot: func() []byte { return []byte("PEM\n") },
		Logger: slog.New(slog.NewTextHandler(s.log, nil)),
		Now:    func() time.Time { return testNow },
		Bans:   ban.New(ban.Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})}
	for _, o := range opts {
		o(&cfg)
	}
	srv := &http.Server{
		Handler:     api.Handler(cfg),
		ConnContext: api.ConnContext,
		ErrorLog:    log.New(s.httpLog, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
		db.Close()
		if l := s.httpLog.String(); l != "" {
			t.Errorf("the HTTP server logged:\n%s", l)
		}
	})
	return s
}

// run runs the CLI against the data folder dir.
func run(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = Run(ctx, append([]string{"--data", dir}, args...), &out, &errb, nil)
	return code, out.String(), errb.String()
}

func TestExitCodesByKind(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		app      string
		kind     errkind.Kind
		code     int
		wantMsg  string
		wantHint string
	}{
		{"e-invalid", errkind.Invalid, 2, "the invalid message", "the invalid hint"},
		{"e-not-found", errkind.NotFound, 3, "the not_found message", "the not_found hint"},
		{"e-conflict", errkind.Conflict, 4, "the conflict message", "the conflict hint"},
		{"e-permission", errkind.Permission, 5, "the permission message", "the permission hint"},
		{"e-unavailable", errkind.Unavailable, 6, "the unavailable message", "the unavailable hint"},
		// The server tells a client nothing of an internal error but that it happened.
		{"e-internal", errkind.Internal, 1, "the server could not complete the request", "the server log has the details"},
	}
	s := startServer(t, func(p *apitest.Plane) {
		for _, k := range kinds {
			p.Fail[k.app] = errkind.WithHint(k.kind, errors.New("the "+k.kind.String()+" message"), "the "+k.kind.String()+" hint")
		}
	})
	commands := [][]string{
		{"apps", "delete", "APP"},
		{"releases", "APP"},
		{"rollback", "APP", "--to", "1"},
		{"ps", "APP"},
		{"scale", "APP", "2"},
		{"logs", "APP"},
		{"env", "list", "APP"},
		{"env", "set", "APP", "K=V"},
		{"env", "unset", "APP", "K"},
	}
	for _, k := range kinds {
		for _, c := range commands {
			args := make([]string, len(c))
			for i, a := range c {
				args[i] = strings.ReplaceAll(a, "APP", k.app)
			}
			t.Run(k.kind.String()+"/"+strings.Join(c[:len(c)-1], " "), func(t *testing.T) {
				t.Parallel()
				code, stdout, stderr := run(t, s.dir, args...)
				if code != k.code {
					t.Errorf("noops %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), code, k.code, stderr)
				}
				want := "noops: " + k.wantMsg + "\nhint: " + k.wantHint + "\n"
				if stderr != want {
					t.Errorf("noops %s: stderr %q, want %q", strings.Join(args, " "), stderr, want)
				}
				if stdout != "" {
					t.Errorf("noops %s: stdout %q, want nothing", strings.Join(args, " "), stdout)
				}
			})
		}
	}
}

func TestExitCodeTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind errkind.Kind
		want int
	}{
		{errkind.Internal, 1}, {errkind.Invalid, 2}, {errkind.NotFound, 3}, {errkind.Conflict, 4},
		{errkind.Permission, 5}, {errkind.Unavailable, 6}, {errkind.Kind(99), 1},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			if got := exitCode(tc.kind); got != tc.want {
				t.Errorf("exitCode(%v) = %d, want %d", tc.kind, got, tc.want)
			}
		})
	}
}

// TestServerWordingIsNotUsage: a server error whose message happens to use
// words of cobra's usage errors keeps its kind's exit code.
func TestServerWordingIsNotUsage(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(p *apitest.Plane) {
		p.Fail["busy"] = errkind.WithHint(errkind.Conflict, errors.New("scaling requires a live release"), "deploy it first")
		p.Fail["odd"] = errkind.Errorf(errkind.Unavailable, "reading the image: invalid argument")
	})
	tests := []struct {
		name, app string
		code      int
		want      string
	}{
		{"conflict saying requires", "busy", 4, "noops: scaling requires a live release\nhint: deploy it first\n"},
		{"unavailable saying invalid argument", "odd", 6, "noops: reading the image: invalid argument\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := run(t, s.dir, "scale", tc.app, "2")
			if code != tc.code || stderr != tc.want {
				t.Errorf("noops scale %s 2: exit %d, stderr %q; want exit %d, stderr %q", tc.app, code, stderr, tc.code, tc.want)
			}
		})
	}
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"empty data folder", func(t *testing.T) string { return t.TempDir() }},
		{"missing data folder", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }},
		{"stale socket", func(t *testing.T) string {
			dir := t.TempDir()
			ln, err := net.Listen("unix", filepath.Join(dir, "api.sock"))
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
			return dir
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tc.dir(t)
			code, stdout, stderr := run(t, dir, "apps")
			if code != 6 {
				t.Errorf("noops apps with no server: exit %d, want 6 (stderr %q)", code, stderr)
			}
			if !strings.HasPrefix(stderr, "noops: no noops server is running at "+filepath.Join(dir, "api.sock")+"\n") {
				t.Errorf("noops apps with no server: stderr %q, want it to say no server runs at the socket", stderr)
			}
			if !strings.Contains(stderr, "\nhint: ") || !strings.Contains(stderr, "`noops server") {
				t.Errorf("noops apps with no server: stderr %q, want a hint naming `noops server`", stderr)
			}
			if stdout != "" {
				t.Errorf("noops apps with no server: stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestSocketPathTooLong: a data folder whose socket path is too long for a
// Unix socket is a connection problem, not a usage mistake.
func TestSocketPathTooLong(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	code, _, stderr := run(t, dir, "apps")
	if code != 6 {
		t.Errorf("noops --data <long> apps: exit %d, want 6 (stderr %q)", code, stderr)
	}
	if strings.Contains(stderr, "--help") {
		t.Errorf("noops --data <long> apps: stderr %q, want no usage hint", stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	tests := []struct {
		name     string
		args     []string
		wantMsg  string
		wantHint string
	}{
		{"unknown flag", []string{"apps", "--bogus"}, "unknown flag: --bogus", "see `noops apps --help`"},
		{"unknown shorthand", []string{"logs", "web", "-z"}, "unknown shorthand flag", "see `noops logs --help`"},
		{"flag without value", []string{"rollback", "web", "--to"}, "flag needs an argument", "see `noops rollback --help`"},
		{"flag of the wrong type", []string{"rollback", "web", "--to", "x"}, "invalid argument", "see `noops rollback --help`"},
		{"too few args", []string{"rollback"}, "accepts 1 arg(s), received 0", "see `noops rollback --help`"},
		{"too many args for scale", []string{"scale", "web", "1", "2"}, "accepts between 1 and 2 arg(s), received 3", "see `noops scale --help`"},
		{"load rate", []string{"load", "web", "--rate", "0"}, "--rate 0 is out of range", "see `noops load --help`"},
		{"load duration", []string{"load", "web", "--duration", "1h"}, "--duration 1h0m0s is out of range", "see `noops load --help`"},
		{"too many args", []string{"releases", "web", "extra"}, "accepts 1 arg(s), received 2", "see `noops releases --help`"},
		{"no args", []string{"ps"}, "accepts 1 arg(s), received 0", "see `noops ps --help`"},
		{"args where none are taken", []string{"apps", "web"}, "unknown command", "see `noops apps --help`"},
		{"subcommand args", []string{"env", "set", "web"}, "requires at least 2 arg(s)", "see `noops env set --help`"},
		{"env set without =", []string{"env", "set", "web", "NOEQUALS"}, `"NOEQUALS" is not KEY=VALUE`, "see `noops env set --help`"},
		{"env set with an empty key", []string{"env", "set", "web", "A=1", "=v"}, `"=v" is not KEY=VALUE`, "see `noops env set --help`"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, "see `noops --help`"},
		{"bad log level", []string{"server", "--log-level", "loud"}, `--log-level "loud"`, "see `noops server --help`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run(t, s.dir, tc.args...)
			if code != 2 {
				t.Errorf("noops %s: exit %d, want 2 (stderr %q)", strings.Join(tc.args, " "), code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "noops: ") || !strings.Contains(lines[0], tc.wantMsg) {
				t.Fatalf("noops %s: stderr %q, want \"noops: …%s…\" and a hint line", strings.Join(tc.args, " "), stderr, tc.wantMsg)
			}
			if want := "hint: " + tc.wantHint; lines[1] != want {
				t.Errorf("noops %s: hint line %q, want %q", strings.Join(tc.args, " "), lines[1], want)
			}
			if stdout != "" {
				t.Errorf("noops %s: stdout %q, want nothing", strings.Join(tc.args, " "), stdout)
			}
		})
	}
	for _, c := range s.plane.Calls() {
		if strings.HasPrefix(c, "SetEnv") || strings.HasPrefix(c, "Scale") {
			t.Errorf("a usage error reached the server: %s", c)
		}
	}
}

func TestScaleNotANumber(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	code, _, stderr := run(t, s.dir, "scale", "web", "two")
	if code != 2 || stderr != "noops: replicas \"two\" is not a number\n" {
		t.Errorf("noops scale web two: exit %d, stderr %q; want 2 and one line naming the value", code, stderr)
	}
}

func TestAppsJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(p *apitest.Plane)
		want  []apitype.App
	}{
		{"two apps", func(p *apitest.Plane) { p.AddApp("api", 1) }, []apitype.App{
			{Name: "api", Created: testNow, Release: 1, Replicas: 1, URL: "https://api.noops.test/", Healthy: 1},
			{Name: "web", Created: testNow, Release: 2, Replicas: 1, URL: "https://web.noops.test/", Healthy: 1},
		}},
		{"no apps", func(p *apitest.Plane) { delete(p.Known, "web") }, []apitype.App{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tc.setup)
			code, stdout, stderr := run(t, s.dir, "apps", "--json")
			if code != 0 {
				t.Fatalf("noops apps --json: exit %d, stderr %q", code, stderr)
			}
			var got []apitype.App
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("noops apps --json printed %q: %v", stdout, err)
			}
			if dec.More() {
				t.Errorf("noops apps --json printed more than one JSON value: %q", stdout)
			}
			if got == nil {
				t.Errorf("noops apps --json = %q, want a JSON list, not null", stdout)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("noops apps --json = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAppsTable(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(p *apitest.Plane) {
		p.AddApp("api", 0) // no release yet
		p.Known["web"].Replicas = 3
	})
	code, stdout, stderr := run(t, s.dir, "apps")
	if code != 0 {
		t.Fatalf("noops apps: exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := [][]string{
		{"NAME", "RELEASE", "HEALTHY", "URL"},
		{"api", "-", "1/1", "https://api.noops.test/"},
		{"web", "v2", "3/3", "https://web.noops.test/"},
	}
	if len(lines) != len(want) {
		t.Fatalf("noops apps printed %q, want %d lines", stdout, len(want))
	}
	for i, l := range lines {
		if got := strings.Fields(l); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("noops apps line %d = %q, want fields %q", i, l, want[i])
		}
	}
	// Columns line up: each header starts where its values start.
	if h, r := strings.Index(lines[0], "URL"), strings.Index(lines[2], "https://"); h != r {
		t.Errorf("noops apps: URL header at column %d, values at %d", h, r)
	}
}

func TestCommandsAgainstServer(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	s.logs.Lines["web"] = []string{"listening", "panic: boom"}
	tests := []struct {
		name       string
		args       []string
		wantStdout []string // each must appear
	}{
		{"releases", []string{"releases", "web"}, []string{"RELEASE", "v2", "v1", "live", "superseded"}},
		{"ps", []string{"ps", "web"}, []string{"SANDBOX", "web-2-0", "10.88.0.2:8080", "1000", "replicas: 1 ready of 1 wanted"}},
		{"events", []string{"events", "web"}, []string{"KIND", "oom", "web-2-0 was killed for exceeding its memory limit"}},
		{"scale shows", []string{"scale", "web"}, []string{"replicas: 1 ready of 1 wanted\n"}},
		{"env list", []string{"env", "list", "web"}, []string{"A=1\n"}},
		{"logs", []string{"logs", "web", "-n", "5"}, []string{"web-1-0 listening\n", "web-1-0 panic: boom\n"}},
		{"logs grep", []string{"logs", "web", "--grep", "panic", "--json"}, []string{`"line":"panic: boom"`, `"stream":"stdout"`}},
		{"version", []string{"version"}, []string{"noops dev\n"}},
		{"ca root", []string{"ca", "root"}, []string{"PEM\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run(t, s.dir, tc.args...)
			if code != 0 {
				t.Fatalf("noops %s: exit %d, stderr %q", strings.Join(tc.args, " "), code, stderr)
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("noops %s: stdout %q, want it to contain %q", strings.Join(tc.args, " "), stdout, w)
				}
			}
		})
	}
}

func TestChangesAreAuditedWithTheCaller(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"scale", "web", "3"}, "web: 3/3 replicas healthy\n"},
		{[]string{"env", "set", "web", "TOKEN=hunter2", "B=x=y"}, "web: release v3 is live (env change)\n"},
		{[]string{"env", "unset", "web", "B"}, "web: release v4 is live (env change)\n"},
		{[]string{"rollback", "web", "--to", "1"}, "web: release v5 is live (rollback to 1)\n"},
		{[]string{"apps", "delete", "web"}, "deleted web\n"},
	}
	for _, st := range steps {
		code, stdout, stderr := run(t, s.dir, st.args...)
		if code != 0 || stdout != st.want {
			t.Fatalf("noops %s: exit %d, stdout %q, stderr %q; want 0 and %q", strings.Join(st.args, " "), code, stdout, stderr, st.want)
		}
	}
	code, stdout, stderr := run(t, s.dir, "audit-log", "--json")
	if code != 0 {
		t.Fatalf("noops audit-log --json: exit %d, stderr %q", code, stderr)
	}
	var rows []apitype.AuditEntry
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("noops audit-log --json printed %q: %v", stdout, err)
	}
	wantActions := []string{"POST /v1/apps/{app}/scale", "POST /v1/apps/{app}/env", "POST /v1/apps/{app}/env",
		"POST /v1/apps/{app}/rollback", "DELETE /v1/apps/{app}"}
	if len(rows) != len(wantActions) {
		t.Fatalf("audit log has %d records, want %d: %+v", len(rows), len(wantActions), rows)
	}
	actor := fmt.Sprintf("uid:%d pid:%d", os.Getuid(), os.Getpid())
	for i, r := range rows {
		if r.Action != wantActions[i] || r.Target != "app:web" || r.Actor != actor {
			t.Errorf("audit record %d = %+v, want action %q on app:web by %q", i, r, wantActions[i], actor)
		}
		if strings.Contains(r.Detail, "hunter2") {
			t.Errorf("audit record %d detail %q holds an env value", i, r.Detail)
		}
	}
	if rows[1].Detail != "set B,TOKEN unset " {
		t.Errorf("audit detail of env set = %q, want %q", rows[1].Detail, "set B,TOKEN unset ")
	}
}

func TestDeploy(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(p *apitest.Plane) {
		p.Fail["broken"] = errkind.WithHint(errkind.Invalid, errors.New("release 1 of broken failed: exit 1"), "see `noops logs broken`")
	})
	src := filepath.Join(t.TempDir(), "My App")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, s.dir, "deploy", src)
	if code != 0 {
		t.Fatalf("noops deploy: exit %d, stderr %q", code, stderr)
	}
	if want := "my-app v1 is live at https://my-app.noops.test/\n"; stdout != want {
		t.Errorf("noops deploy stdout = %q, want %q", stdout, want)
	}
	for _, w := range []string{"==> packing " + src + " as my-app", "==> uploaded", "==> receiving", "    received ", "==> building"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("noops deploy stderr = %q, want it to show %q", stderr, w)
		}
	}

	code, stdout, stderr = run(t, s.dir, "deploy", src, "--app", "web", "--json")
	if code != 0 {
		t.Fatalf("noops deploy --app web --json: exit %d, stderr %q", code, stderr)
	}
	var ev apitype.DeployEvent
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil || ev.Type != "result" || ev.Release == nil || ev.Release.App != "web" || ev.Release.Number != 3 {
		t.Errorf("noops deploy --json stdout = %q (%v), want the result event of web v3", stdout, err)
	}

	code, stdout, stderr = run(t, s.dir, "deploy", src, "--app", "broken")
	if want := "noops: release 1 of broken failed: exit 1\nhint: see `noops logs broken`\n"; code != 2 || !strings.HasSuffix(stderr, want) {
		t.Errorf("noops deploy --app broken: exit %d, stderr %q; want 2 ending in %q", code, stderr, want)
	}
	if stdout != "" {
		t.Errorf("noops deploy --app broken: stdout %q, want nothing", stdout)
	}

	code, _, stderr = run(t, s.dir, "deploy", filepath.Join(src, "main.go"))
	if code != 2 || !strings.Contains(stderr, "is not a folder") {
		t.Errorf("noops deploy FILE: exit %d, stderr %q; want 2 saying it is not a folder", code, stderr)
	}
}

func TestAppName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		folder   string
		manifest string // noops.yaml, "" for none
		flag     string
		want     string
		wantKind errkind.Kind // of the error when want is ""
		wantHint bool
	}{
		{name: "spaces and capitals", folder: "My App", want: "my-app"},
		{name: "dots and underscores", folder: "my_app.v2", want: "my-app-v2"},
		{name: "edges trimmed", folder: "--Hello--", want: "hello"},
		{name: "runs of odd characters", folder: "a  &  b", want: "a-b"},
		{name: "upper case", folder: "SHOP", want: "shop"},
		{name: "long name cut at 30", folder: "this-is-a-very-long-folder-name-for-an-app", want: "this-is-a-very-long-folder-nam"},
		{name: "cut that ends in a dash", folder: "abcdefghijklmnopqrstuvwxyzabc-defg", want: "abcdefghijklmnopqrstuvwxyzabc"},
		{name: "manifest name wins", folder: "My App", manifest: "name: from-manifest\n", want: "from-manifest"},
		{name: "manifest without name", folder: "My App", manifest: "run:\n  port: 3000\n", want: "my-app"},
		{name: "flag wins over manifest", folder: "My App", manifest: "name: from-manifest\n", flag: "from-flag", want: "from-flag"},
		{name: "flag wins over a broken manifest", folder: "x", manifest: "nmae: typo\n", flag: "from-flag", want: "from-flag"},
		{name: "invalid flag", folder: "ok", flag: "Bad_Name", wantKind: errkind.Invalid},
		{name: "broken manifest", folder: "ok", manifest: "nmae: typo\n", wantKind: errkind.Invalid},
		{name: "invalid manifest name", folder: "ok", manifest: "name: Bad_Name\n", wantKind: errkind.Invalid},
		{name: "digits first", folder: "123", wantKind: errkind.Invalid, wantHint: true},
		{name: "nothing usable", folder: "!!!", wantKind: errkind.Invalid, wantHint: true},
		{name: "not ASCII", folder: "日本語", wantKind: errkind.Invalid, wantHint: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), tc.folder)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.manifest != "" {
				if err := os.WriteFile(filepath.Join(dir, "noops.yaml"), []byte(tc.manifest), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := appName(dir, tc.flag)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Errorf("appName(%q, %q) = %q, %v, want %q", tc.folder, tc.flag, got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("appName(%q, %q) = %q, nil, want an error", tc.folder, tc.flag, got)
			}
			if k := errkind.Of(err); k != tc.wantKind {
				t.Errorf("appName(%q, %q) error %v has kind %v, want %v", tc.folder, tc.flag, err, k, tc.wantKind)
			}
			if tc.wantHint {
				if h := errkind.HintOf(err); !strings.Contains(h, "--app") || !strings.Contains(h, "noops.yaml") {
					t.Errorf("appName(%q, %q) hint = %q, want one naming --app and noops.yaml", tc.folder, tc.flag, h)
				}
				if !strings.Contains(err.Error(), tc.folder) {
					t.Errorf("appName(%q, %q) error = %q, want it to name the folder", tc.folder, tc.flag, err)
				}
			}
		})
	}
}

func TestLoopbackAddr(t *testing.T) {
	for _, tc := range []struct{ listen, want, err string }{
		{":443", "127.0.0.1:443", ""},
		{"0.0.0.0:8443", "127.0.0.1:8443", ""},
		{"[::]:8443", "127.0.0.1:8443", ""},
		{"127.0.0.2:9443", "127.0.0.2:9443", ""},
		{"[::1]:9443", "[::1]:9443", ""},
		{"10.1.2.3:443", "", "loopback only"},
		{"nonsense", "", "HTTPS address"},
	} {
		got, err := loopbackAddr(tc.listen)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("loopbackAddr(%q) = %q, %v; want an error saying %q", tc.listen, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("loopbackAddr(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
}
