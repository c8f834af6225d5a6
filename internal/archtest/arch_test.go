package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "noops/"

type pkg struct {
	path    string   // import path
	dir     string   // folder
	imports []string // non-test imports within the module
	tests   []string // imports of its tests within the module
}

// packages lists the module's packages with their imports, using go list.
func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{.Dir}}|{{join .Imports \",\"}}|{{join .TestImports \",\"}},{{join .XTestImports \",\"}}", "noops/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		p := pkg{path: f[0], dir: f[1]}
		for _, i := range strings.Split(f[2], ",") {
			if strings.HasPrefix(i, module) {
				p.imports = append(p.imports, i)
			}
		}
		for _, i := range strings.Split(f[3], ",") {
			if strings.HasPrefix(i, module) {
				p.tests = append(p.tests, i)
			}
		}
		ps = append(ps, p)
	}
	return ps
}

func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// rule says whether pkg may import imp; "" means yes, else why not.
func rule(p, imp string) string {
	in := func(x string, prefixes ...string) bool {
		for _, pre := range prefixes {
			if under(x, module+pre) {
				return true
			}
		}
		return false
	}
	switch {
	case in(imp, "internal/app") && !in(p, "cmd", "internal/app", "internal/testenv"):
		return "only cmd/ and tests import internal/app"
	case in(p, "internal/errkind", "internal/spec", "internal/apitype") && !in(imp, "internal/errkind"):
		return "errkind, spec and apitype are leaves"
	case in(imp, "internal/api", "internal/cli", "internal/console") && !in(p, "cmd", "internal/app", "internal/cli", "internal/api", "internal/console", "internal/testenv"):
		return "domain packages never import api, cli or console"
	case in(imp, "internal/store") && in(p, "internal/gateway", "internal/runtime", "internal/build", "internal/image"):
		return "gateway, runtime, build and image do not import store; they define small interfaces"
	}
	return ""
}

func TestDependencyRules(t *testing.T) {
	for _, p := range packages(t) {
		for _, imp := range p.imports {
			if why := rule(p.path, imp); why != "" {
				t.Errorf("%s imports %s: %s", p.path, imp, why)
			}
		}
	}
}

// TestRuleCatchesViolations shows the rule table is not vacuous.
func TestRuleCatchesViolations(t *testing.T) {
	bad := [][2]string{
		{"noops/internal/gateway", "noops/internal/store"},
		{"noops/internal/control", "noops/internal/api"},
		{"noops/internal/spec", "noops/internal/store"},
		{"noops/internal/supervisor", "noops/internal/app"},
	}
	for _, b := range bad {
		if rule(b[0], b[1]) == "" {
			t.Errorf("rule(%s, %s) allowed a forbidden import", b[0], b[1])
		}
	}
	if why := rule("noops/cmd/noops", "noops/internal/app"); why != "" {
		t.Errorf("rule(cmd, app) = %q, want allowed", why)
	}
}

func TestOnePackageDocPerPackage(t *testing.T) {
	for _, p := range packages(t) {
		files, _ := filepath.Glob(filepath.Join(p.dir, "*.go"))
		docs := 0
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatalf("parsing %s: %v", f, err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				docs++
			}
		}
		if docs != 1 {
			t.Errorf("%s has %d package doc comments, want exactly 1", p.path, docs)
		}
	}
}
