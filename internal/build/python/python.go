// Package python is the buildpack for Python web apps: requirements.txt or
// pyproject.toml. Dependencies go into a virtual environment made in a
// build sandbox of the python stack's build image (Debian's python3 with
// venv and pip) at the path it has in the image, /layers/python/venv, a
// cached launch layer reused while the requirements are unchanged. The
// venv sees the run image's system packages, which include the gunicorn
// WSGI server: the default web process serves the module that defines a
// WSGI `app` (app.py, wsgi.py, main.py) or `application`. A Procfile's web
// command replaces it. Importing it registers it.
package python

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"noops/internal/build"
)

func init() { build.Register(Buildpack{}) }

// Buildpack builds Python apps.
type Buildpack struct{}

// Name and Expects describe the buildpack to package build.
func (Buildpack) Name() string    { return "python" }
func (Buildpack) Expects() string { return "requirements.txt or pyproject.toml (Python)" }

// Venv is where the app's virtual environment is, in the build sandbox
// and in the image.
const Venv = "/layers/python/venv"

// Detect passes for requirements.txt or pyproject.toml at the top.
func (Buildpack) Detect(src string) (build.Detection, error) {
	for _, f := range []string{"requirements.txt", "pyproject.toml"} {
		fi, err := os.Stat(filepath.Join(src, f))
		if err == nil && fi.Mode().IsRegular() {
			return build.Detection{Pass: true, Reason: f, Stack: "python", Provides: []string{"python"}}, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return build.Detection{}, err
		}
	}
	return build.Detection{}, nil
}

// Build makes the venv, copies the app and declares the web process.
func (Buildpack) Build(ctx context.Context, bc *build.Context) error {
	layers, err := bc.BuildImage(ctx, "python")
	if err != nil {
		return err
	}
	if err := venv(ctx, bc, layers); err != nil {
		return err
	}
	n, err := build.CopyTree(bc.Src, bc.App, func(rel string) bool {
		return rel == ".git" || rel == ".venv" || rel == "venv" || filepath.Base(rel) == "__pycache__"
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(bc.Log, "app: %d files\n", n)
	if target := wsgiTarget(bc.Src); target != "" {
		bc.SetProcess("web", build.Process{
			Command: []string{Venv + "/bin/python", "-m", "gunicorn", "--bind", "0.0.0.0:" + strconv.Itoa(bc.Port),
				"--workers", "2", "--access-logfile", "-", target},
			Env: processEnv(),
		})
	} else {
		fmt.Fprintln(bc.Log, "no WSGI app found (app.py, wsgi.py or main.py defining app or application): declare web in a Procfile")
	}
	return nil
}

func processEnv() map[string]string {
	return map[string]string{"VIRTUAL_ENV": Venv, "PATH": Venv + "/bin:/usr/local/bin:/usr/bin:/bin",
		"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
}

// venv fills the cached venv launch layer, unless the requirements and
// the build image are unchanged.
func venv(ctx context.Context, bc *build.Context, buildImage []string) error {
	h := sha256.New()
	for _, f := range []string{"requirements.txt", "pyproject.toml", "poetry.lock"} {
		b, err := os.ReadFile(filepath.Join(bc.Src, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	ids := make([]string, len(buildImage))
	for i, l := range buildImage {
		ids[i] = filepath.Base(l)
	}
	cache, err := bc.Layer("pip-cache", build.LayerSpec{Cache: true})
	if err != nil {
		return err
	}
	l, err := bc.Layer("venv", build.LayerSpec{Launch: true, Cache: true, Target: Venv,
		Metadata: map[string]string{"requirements": hex.EncodeToString(h.Sum(nil)), "build-image": strings.Join(ids, ",")}})
	if err != nil {
		return err
	}
	if l.Reused {
		fmt.Fprintln(bc.Log, "venv: requirements unchanged, reusing the dependency layer")
		return nil
	}
	src := filepath.Join(bc.Work, "src")
	if _, err := build.CopyTree(bc.Src, src, func(rel string) bool { return rel == ".git" || rel == ".venv" || rel == "venv" }); err != nil {
		return err
	}
	env := []string{"HOME=/tmp", "PIP_CACHE_DIR=/cache/pip", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "PYTHONDONTWRITEBYTECODE=1"}
	mounts := []build.Mount{{Source: src, Target: "/workspace", ReadOnly: true}, {Source: l.Path, Target: Venv}, {Source: cache.Path, Target: "/cache/pip"}}
	steps := [][]string{{"/usr/bin/python3", "-m", "venv", "--system-site-packages", Venv}}
	if _, err := os.Stat(filepath.Join(bc.Src, "requirements.txt")); err == nil {
		if reqs, _ := hasRequirements(filepath.Join(bc.Src, "requirements.txt")); reqs {
			steps = append(steps, []string{Venv + "/bin/pip", "install", "--no-warn-script-location", "-r", "/workspace/requirements.txt"})
		}
	} else {
		steps = append(steps, []string{Venv + "/bin/pip", "install", "--no-warn-script-location", "/workspace"})
	}
	for _, args := range steps {
		step := build.Step{Args: args, Dir: "/workspace", Env: env, Network: true, Mounts: mounts}
		if err := bc.Tool(ctx, "python", step, "fix the requirements above: every package must install with pip from the package index"); err != nil {
			return err
		}
	}
	return nil
}

// hasRequirements reports whether a requirements file names anything.
func hasRequirements(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			return true, nil
		}
	}
	return false, sc.Err()
}

// wsgiVar finds a module-level WSGI callable: "app = Flask(...)" or
// "def application(environ, start_response):".
var wsgiVar = regexp.MustCompile(`(?m)^(?:def\s+)?(app|application)\s*(?:=|\()`)

// wsgiTarget finds "module:variable" of the app's WSGI callable.
func wsgiTarget(src string) string {
	for _, mod := range []string{"app", "wsgi", "main"} {
		b, err := os.ReadFile(filepath.Join(src, mod+".py"))
		if err != nil {
			continue
		}
		if m := wsgiVar.FindSubmatch(b); m != nil {
			return mod + ":" + string(m[1])
		}
	}
	return ""
}
