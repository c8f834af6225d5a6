package python

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWSGITarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"flask app", map[string]string{"app.py": "from flask import Flask\napp = Flask(__name__)\n"}, "app:app"},
		{"function", map[string]string{"app.py": "def app(environ, start_response):\n    pass\n"}, "app:app"},
		{"application in wsgi.py", map[string]string{"wsgi.py": "application = get_wsgi_application()\n"}, "wsgi:application"},
		{"main.py", map[string]string{"main.py": "app=make()\n"}, "main:app"},
		{"app.py wins", map[string]string{"app.py": "app = A()\n", "wsgi.py": "application = B()\n"}, "app:app"},
		{"indented is not module level", map[string]string{"app.py": "if True:\n    app = A()\n"}, ""},
		{"other names", map[string]string{"app.py": "server = A()\napplication_name = 1\n"}, ""},
		{"nothing", map[string]string{"run.py": "app = A()\n"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for n, b := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := wsgiTarget(dir); got != tc.want {
				t.Errorf("wsgiTarget(%v) = %q, want %q", tc.files, got, tc.want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		pass bool
	}{{"requirements.txt", true}, {"pyproject.toml", true}, {"setup.py", false}} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, tc.file), nil, 0o644)
		det, err := Buildpack{}.Detect(dir)
		if err != nil || det.Pass != tc.pass || (det.Pass && det.Stack != "python") {
			t.Errorf("Detect with %s = %+v, %v; want pass %v on python", tc.file, det, err, tc.pass)
		}
	}
}
