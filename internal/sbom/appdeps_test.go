package sbom

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func TestAppDependencies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"nothing to read", map[string]string{"index.html": "<h1>hi</h1>"}, []string{}},
		{"several ecosystems", map[string]string{
			"go.mod":            "module m\nrequire a.com/x v1.0.0\n",
			"package-lock.json": `{"lockfileVersion": 3, "packages": {"": {"dependencies": {"a": "1"}}, "node_modules/a": {"version": "1.0.0"}}}`,
			"requirements.txt":  "flask==3.0.0\n",
		}, []string{"pkg:golang/a.com/x@v1.0.0 direct", "pkg:npm/a@1.0.0 direct", "pkg:pypi/flask@3.0.0 direct"}},
		{"shrinkwrap wins over package-lock", map[string]string{
			"npm-shrinkwrap.json": `{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "2.0.0"}}}`,
			"package-lock.json":   `{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.0"}}}`,
		}, []string{"pkg:npm/a@2.0.0"}},
		{"poetry.lock wins over requirements.txt", map[string]string{
			"poetry.lock":      "[[package]]\nname = \"flask\"\nversion = \"3.0.0\"\n",
			"requirements.txt": "django==5.0\n",
		}, []string{"pkg:pypi/flask@3.0.0 direct"}},
		{"requirements.txt wins over pyproject.toml", map[string]string{
			"pyproject.toml":   "[project]\ndependencies = [\"fastapi\"]\n",
			"requirements.txt": "django==5.0\n",
		}, []string{"pkg:pypi/django@5.0 direct"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := AppDependencies(writeFiles(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			diffLists(t, "components", describe(cs), tc.want)
		})
	}
}

func TestAppDependenciesErrors(t *testing.T) {
	t.Parallel()
	t.Run("missing folder", func(t *testing.T) {
		t.Parallel()
		_, err := AppDependencies(filepath.Join(t.TempDir(), "nope"))
		if !errkind.Is(err, errkind.NotFound) {
			t.Errorf("err = %v, want not found", err)
		}
	})
	t.Run("lockfile is a folder", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "package-lock.json"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := AppDependencies(dir)
		wantInvalid(t, err, "package-lock.json", "not a regular file")
	})
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "requirements.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(maxFileSize + 1); err != nil {
			t.Fatal(err)
		}
		f.Close()
		_, err = AppDependencies(dir)
		wantInvalid(t, err, "requirements.txt", "larger than")
	})
	t.Run("malformed file names itself", func(t *testing.T) {
		t.Parallel()
		for name, body := range map[string]string{
			"go.mod":            "module m\nrequire x\n",
			"package-lock.json": "{\n\n  oops",
			"poetry.lock":       "[[package]\n",
			"requirements.txt":  "ok==1\nbad===\n",
			"pyproject.toml":    "[project\n",
		} {
			_, err := AppDependencies(writeFiles(t, map[string]string{name: body}))
			wantInvalid(t, err, name)
			if !strings.Contains(err.Error(), "line") {
				t.Errorf("%s: err = %q, want a line", name, err)
			}
		}
	})
}
