package sbom

import (
	"testing"
)

func TestPythonProjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		dir    string
		want   []string
		hashes map[string]string // name → SHA-256; "" for none
	}{
		{
			name: "poetry 1.1 lock with categories and metadata.files",
			dir:  "testdata/poetry-1.1",
			want: []string{
				"pkg:pypi/click@8.1.3",
				"pkg:pypi/colorama@0.4.6",
				"pkg:pypi/flask@2.2.2 direct",
				"pkg:pypi/gunicorn@20.1.0 direct",
				"pkg:pypi/itsdangerous@2.1.2",
				"pkg:pypi/jinja2@3.1.2",
				"pkg:pypi/markupsafe@2.1.1",
				"pkg:pypi/werkzeug@2.2.2",
			},
			hashes: map[string]string{"flask": sha256Hex("flask-2.2.2"), "click": "", "gunicorn": ""},
		},
		{
			name: "poetry 1.8 lock without categories: what the main group reaches",
			dir:  "testdata/poetry-1.8",
			want: []string{
				"pkg:pypi/blinker@1.7.0",
				"pkg:pypi/click@8.1.7",
				"pkg:pypi/colorama@0.4.6",
				"pkg:pypi/flask@3.0.0 direct",
				"pkg:pypi/itsdangerous@2.1.2",
				"pkg:pypi/jinja2@3.1.3",
				"pkg:pypi/markupsafe@2.1.4",
				"pkg:pypi/packaging@23.2", // needed by the local mylib, which is not listed
				"pkg:pypi/werkzeug@3.0.1",
			},
			hashes: map[string]string{"flask": sha256Hex("flask-3.0.0"), "click": sha256Hex("click-8.1.7"), "blinker": ""},
		},
		{
			name: "poetry 2 lock with groups and no pyproject.toml",
			dir:  "testdata/poetry-2",
			want: []string{
				"pkg:pypi/anyio@4.8.0 direct",
				"pkg:pypi/idna@3.10",
				"pkg:pypi/sniffio@1.3.1",
				"pkg:pypi/typing-extensions@4.12.2",
			},
			hashes: map[string]string{"anyio": sha256Hex("anyio-4.8.0")},
		},
		{
			name: "pyproject.toml without a lock",
			dir:  "testdata/pyproject",
			want: []string{
				"pkg:pypi/fastapi@0.109.0 direct",
				"pkg:pypi/pydantic-settings direct",
				"pkg:pypi/uvicorn direct",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := AppDependencies(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			diffLists(t, "components", describe(cs), tc.want)
			for _, c := range cs {
				if want, ok := tc.hashes[c.Name]; ok && c.Hashes["SHA-256"] != want {
					t.Errorf("%s SHA-256 = %q, want %q", c.Name, c.Hashes["SHA-256"], want)
				}
			}
		})
	}
}

func TestPoetryPyprojectDependencies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pyproject string
		want            []string
	}{
		{"bare version is exact", "[tool.poetry.dependencies]\npython = \"^3.11\"\nflask = \"3.0.0\"\n", []string{"pkg:pypi/flask@3.0.0 direct"}},
		{"caret is a range", "[tool.poetry.dependencies]\nflask = \"^3.0.0\"\n", []string{"pkg:pypi/flask direct"}},
		{"table with version", "[tool.poetry.dependencies]\nRequests = {version = \"==2.31.0\", extras = [\"socks\"]}\n", []string{"pkg:pypi/requests@2.31.0 direct"}},
		{"folder dependency is the app's", "[tool.poetry.dependencies]\nmine = {path = \"../mine\"}\n", []string{}},
		{"dev group is left out", "[tool.poetry.group.dev.dependencies]\npytest = \"8.0.0\"\n", []string{}},
		{"nothing declared", "[build-system]\nrequires = [\"hatchling\"]\n", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := pyprojectPackages("pyproject.toml", []byte(tc.pyproject))
			if err != nil {
				t.Fatal(err)
			}
			diffLists(t, "components", describe(cs), tc.want)
		})
	}
}

func TestPoetryInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, lock, pyproject string
		want                  []string
	}{
		{"not TOML", "[[package]]\nname = flask\n", "", []string{"poetry.lock line 2", "quotes"}},
		{"package without version", "[[package]]\nname = \"a\"\nversion = \"1\"\n\n[[package]]\nname = \"b\"\n", "", []string{"poetry.lock line 5", "version"}},
		{"package is a table", "[package]\nname = \"a\"\n", "", []string{"poetry.lock line 1", "array of tables"}},
		{"bad file hash", "[[package]]\nname = \"a\"\nversion = \"1\"\nfiles = [{file = \"a.whl\", hash = \"sha256:xyz\"}]\n", "", []string{"poetry.lock line 1", "sha256"}},
		{"bad pyproject", "", "[tool.poetry\n", []string{"pyproject.toml line 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := poetryPackages("poetry.lock", []byte(tc.lock), []byte(tc.pyproject))
			wantInvalid(t, err, tc.want...)
		})
	}
	t.Run("bad project dependency", func(t *testing.T) {
		t.Parallel()
		_, err := pyprojectPackages("pyproject.toml", []byte("[project]\nname = \"x\"\ndependencies = [\n  \"ok==1\",\n  \"flask===\",\n]\n"))
		wantInvalid(t, err, "pyproject.toml line 5", "flask")
	})
}
