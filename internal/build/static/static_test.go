package static

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"noops/internal/build"
	"noops/internal/build/buildtest"
)

func site(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		pass  bool
	}{
		{"index at the top", map[string]string{"index.html": "x"}, true},
		{"index in public", map[string]string{"public/index.html": "x"}, true},
		{"no index", map[string]string{"readme.md": "x"}, false},
		{"index elsewhere", map[string]string{"docs/index.html": "x"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			det, err := Buildpack{}.Detect(site(t, tc.files))
			if err != nil || det.Pass != tc.pass || (det.Pass && det.Stack != "static") {
				t.Errorf("Detect = %+v, %v; want pass %v on the static stack", det, err, tc.pass)
			}
		})
	}
}

// files lists a layer's regular files.
func files(t *testing.T, l v1.Layer) map[string][]byte {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[h.Name] = b
		}
	}
}

func TestBuildServesTheSite(t *testing.T) {
	src := site(t, map[string]string{"index.html": "<h1>home</h1>", "css/site.css": "body{}", "404.html": "gone",
		".env": "SECRET=1", "noops.yaml": "name: s\n", ".git/config": "x"})
	cache := t.TempDir()
	var log bytes.Buffer
	req := build.Request{App: "site", Src: src, Cache: cache, Port: 8080, Stacks: buildtest.Stacks{}, Log: &log,
		Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Order: []build.Group{{{Buildpack: "static"}}}}
	res, err := build.Build(t.Context(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	defer res.Close()
	if err := validate.Image(res.Image); err != nil {
		t.Errorf("image does not validate: %v", err)
	}
	cf, _ := res.Image.ConfigFile()
	if got := strings.Join(cf.Config.Entrypoint, " "); got != Server {
		t.Errorf("entrypoint = %q, want %s", got, Server)
	}
	layers, _ := res.Image.Layers()
	if len(layers) != 3 {
		t.Fatalf("image has %d layers, want run image + server + site", len(layers))
	}
	server := files(t, layers[1])[strings.TrimPrefix(Server, "/")]
	app := files(t, layers[2])
	for _, want := range []string{"app/public/index.html", "app/public/css/site.css", "app/public/404.html"} {
		if _, ok := app[want]; !ok {
			t.Errorf("site layer lacks %s: %v", want, keys(app))
		}
	}
	for _, not := range []string{"app/public/.env", "app/public/noops.yaml", "app/public/.git/config"} {
		if _, ok := app[not]; ok {
			t.Errorf("site layer has %s, which is not part of the site", not)
		}
	}

	// The server really serves the site: run it on the host.
	root := t.TempDir()
	for name, b := range app {
		p := filepath.Join(root, strings.TrimPrefix(name, "app/public/"))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	bin := filepath.Join(t.TempDir(), "static-server")
	if err := os.WriteFile(bin, server, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{fmt.Sprintf("PORT=%d", port), "STATIC_ROOT=" + root}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	get := func(path string) (int, string) {
		for i := 0; i < 100; i++ {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
			if err == nil {
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("GET %s: server never answered", path)
		return 0, ""
	}
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/", 200, "<h1>home</h1>"},
		{"/css/site.css", 200, "body{}"},
		{"/missing", 404, "gone"},
		{"/css/", 404, "gone"}, // a folder without index.html is not listed
	} {
		if code, body := get(tc.path); code != tc.code || body != tc.body {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}

	// A second build reuses the compiled server.
	log.Reset()
	again, err := build.Build(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if strings.Contains(log.String(), "compiled the static site server") || !strings.Contains(log.String(), "reused layer static/server") {
		t.Errorf("second build log = %q, want the server layer reused", log.String())
	}
}

func TestCopySiteRefusesEscapingLinks(t *testing.T) {
	t.Parallel()
	src := site(t, map[string]string{"index.html": "x"})
	if err := os.Symlink("../../etc/passwd", filepath.Join(src, "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := CopySite(src, filepath.Join(t.TempDir(), "out")); err == nil || !strings.Contains(err.Error(), "links outside") {
		t.Errorf("CopySite with an escaping link = %v, want a refusal", err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
