package golang

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func TestDetect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		dir   bool
		want  bool
	}{
		{"go.mod", map[string]string{"go.mod": "module x\n"}, false, true},
		{"go.mod in a sub-folder", map[string]string{"sub/go.mod": "module x\n"}, false, false},
		{"no go.mod", map[string]string{"main.go": "package main\n"}, false, false},
		{"go.mod is a folder", map[string]string{"go.mod/x": ""}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			det, err := (&Buildpack{}).Detect(module(t, tc.files))
			if err != nil || det.Pass != tc.want {
				t.Errorf("Detect = %+v, %v; want Pass %v", det, err, tc.want)
			}
		})
	}
}

func TestMainPackage(t *testing.T) {
	t.Parallel()
	const main = "package main\n\nfunc main() {}\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    string
		wantErr []string // substrings of an Invalid error
	}{
		{"root", map[string]string{"main.go": main, "cmd/tool/main.go": main}, ".", nil},
		{"root with a test", map[string]string{"main.go": main, "main_test.go": "package main_test\n"}, ".", nil},
		{"single cmd", map[string]string{"lib.go": "package lib\n", "cmd/api/main.go": main, "cmd/api/x_test.go": "package main_test\n"}, "./cmd/api", nil},
		{"ignored generator at the root", map[string]string{"lib.go": "package lib\n", "gen.go": "//go:build ignore\n\npackage main\n", "cmd/api/main.go": main}, "./cmd/api", nil},
		{"cmd library and main", map[string]string{"cmd/internal/x.go": "package internal\n", "cmd/web/main.go": main}, "./cmd/web", nil},
		{"two mains", map[string]string{"lib.go": "package lib\n", "cmd/api/main.go": main, "cmd/worker/main.go": main},
			"", []string{"several main packages", "./cmd/api", "./cmd/worker"}},
		{"no main", map[string]string{"lib.go": "package lib\n"}, "", []string{"no main package"}},
		{"mixed packages", map[string]string{"main.go": main, "lib.go": "package lib\n"}, "", []string{"reading Go package"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mainPackage(module(t, tc.files))
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Errorf("mainPackage = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errkind.Is(err, errkind.Invalid) {
				t.Fatalf("mainPackage = %q, %v; want an Invalid error", got, err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestModulePath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, gomod, want string
	}{
		{"plain", "module example.com/hello\n\ngo 1.22\n", "example.com/hello"},
		{"comment and spaces", "// top\n\n  module   example.com/x // mine\n", "example.com/x"},
		{"quoted", "module \"example.com/q\"\n", "example.com/q"},
		{"not a prefix", "modulex foo\nmodule real\n", "real"},
		{"none", "go 1.22\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "go.mod")
			if err := os.WriteFile(p, []byte(tc.gomod), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := modulePath(p)
			if tc.want == "" {
				if !errkind.Is(err, errkind.Invalid) {
					t.Errorf("modulePath = %q, %v; want an Invalid error", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("modulePath = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestBinaryName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ mod, want string }{
		{"example.com/hello", "hello"},
		{"hello", "hello"},
		{"example.com/shop/v2", "shop"},
		{"v2", "v2"},
		{"example.com/my app!", "my-app-"},
		{"example.com/.hidden", "hidden"},
		{"example.com/...", "app"},
		{"example.com/" + strings.Repeat("x", 65), "app"},
	} {
		if got := binaryName(tc.mod); got != tc.want {
			t.Errorf("binaryName(%q) = %q, want %q", tc.mod, got, tc.want)
		}
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	w := &tailWriter{}
	for i := range 100 {
		w.Write([]byte(strings.Repeat("x", i%7) + "\n"))
	}
	got := strings.Split(w.last(40), "\n")
	if len(got) != 41 || got[0] != "[earlier lines left out]" {
		t.Errorf("last(40) has %d lines starting %q, want 41 starting with the elision", len(got), got[0])
	}
	w.Write([]byte(strings.Repeat("y", 2*tailBytes)))
	if len(w.buf) != tailBytes {
		t.Errorf("tail keeps %d bytes, want %d", len(w.buf), tailBytes)
	}
}
