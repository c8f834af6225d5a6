package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func folder(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDetectAndEntry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		pass  bool
		run   []string // the web command, when it passes
		site  bool     // HasBuildScript
		err   string
	}{
		{"start script", map[string]string{"package.json": `{"scripts":{"start":"node server.js"}}`}, true, []string{"node", "server.js"}, false, ""},
		{"start with flags", map[string]string{"package.json": `{"scripts":{"start":"node --enable-source-maps app/main.js 8080"}}`}, true,
			[]string{"node", "--enable-source-maps", "app/main.js", "8080"}, false, ""},
		{"main field", map[string]string{"package.json": `{"main":"lib/index.js"}`, "lib/index.js": ""}, true, []string{"node", "lib/index.js"}, false, ""},
		{"server.js", map[string]string{"package.json": `{}`, "server.js": ""}, true, []string{"node", "server.js"}, false, ""},
		{"build script only: a site", map[string]string{"package.json": `{"scripts":{"build":"vite build"}}`}, false, nil, true, ""},
		{"build and start: a server", map[string]string{"package.json": `{"scripts":{"build":"tsc","start":"node dist/server.js"}}`}, true,
			[]string{"node", "dist/server.js"}, false, ""},
		{"Procfile without entry", map[string]string{"package.json": `{}`, "Procfile": "web: node x.js"}, true, nil, false, ""},
		{"nothing to run", map[string]string{"package.json": `{"name":"lib"}`}, false, nil, false, ""},
		{"no package.json", map[string]string{"index.js": ""}, false, []string{"node", "index.js"}, false, ""},
		{"start needs a shell", map[string]string{"package.json": `{"scripts":{"start":"NODE_ENV=production node server.js"}}`}, false, nil, false, "needs npm and a shell"},
		{"start with &&", map[string]string{"package.json": `{"scripts":{"start":"node a.js && node b.js"}}`}, false, nil, false, "needs npm and a shell"},
		{"bad JSON", map[string]string{"package.json": `{`}, false, nil, false, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := folder(t, nil)
			for n, b := range tc.files {
				p := filepath.Join(dir, n)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(b), 0o644)
			}
			det, err := Buildpack{}.Detect(dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || errkind.Of(err) != errkind.Invalid {
					t.Fatalf("Detect = %+v, %v; want an Invalid error with %q", det, err, tc.err)
				}
				return
			}
			if err != nil || det.Pass != tc.pass {
				t.Fatalf("Detect = %+v, %v; want pass %v", det, err, tc.pass)
			}
			if tc.pass && det.Stack != "node" {
				t.Errorf("Detect stack = %q, want node", det.Stack)
			}
			m, _, _ := readManifest(dir)
			if run, _ := entry(dir, m); !reflect.DeepEqual(run, tc.run) {
				t.Errorf("entry = %q, want %q", run, tc.run)
			}
			if site, _ := HasBuildScript(dir); site != tc.site {
				t.Errorf("HasBuildScript = %v, want %v", site, tc.site)
			}
		})
	}
}
