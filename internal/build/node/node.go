// Package node is the buildpack for Node.js apps: package.json with a
// package-lock.json. Dependencies are installed with `npm ci` in a build
// sandbox of the node stack's build image (Debian's nodejs and npm), the
// production ones into a cached launch layer at /app/node_modules that is
// reused while the lockfile is unchanged; `npm run build` runs when the app
// has a build script. The image runs `node FILE` on the node stack's run
// image, which has no npm and no shell. Importing it registers it.
package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"noops/internal/build"
	"noops/internal/errkind"
)

func init() { build.Register(Buildpack{}) }

// Buildpack builds Node.js apps.
type Buildpack struct{}

// Name and Expects describe the buildpack to package build.
func (Buildpack) Name() string    { return "node" }
func (Buildpack) Expects() string { return "package.json (Node.js)" }

// manifest is the part of package.json the buildpack reads.
type manifest struct {
	Main    string            `json:"main"`
	Scripts map[string]string `json:"scripts"`
}

// HasBuildScript reports whether src has a package.json with a build
// script and nothing for node to run: a site that builds to static files.
func HasBuildScript(src string) (bool, error) {
	m, ok, err := readManifest(src)
	if !ok || err != nil || m.Scripts["build"] == "" {
		return false, err
	}
	run, err := entry(src, m)
	return run == nil && err == nil, nil
}

func readManifest(src string) (manifest, bool, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(src, "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, true, errkind.Errorf(errkind.Invalid, "package.json is not valid JSON: %v", err)
	}
	return m, true, nil
}

// entry is the file `node` runs: from scripts.start ("node server.js"),
// else main, else server.js, index.js or app.js when present.
func entry(src string, m manifest) ([]string, error) {
	if start := strings.TrimSpace(m.Scripts["start"]); start != "" {
		f := strings.Fields(start)
		if f[0] != "node" || len(f) < 2 || strings.ContainsAny(start, "|&;<>$`'\"") {
			return nil, errkind.WithHint(errkind.Invalid,
				fmt.Errorf("scripts.start %q needs npm and a shell, which the run image does not have", start),
				"make it `node FILE [ARGS]` (e.g. \"node server.js\"), or declare web in a Procfile")
		}
		return f, nil
	}
	for _, f := range []string{m.Main, "server.js", "index.js", "app.js"} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(filepath.Join(src, f)); err == nil && fi.Mode().IsRegular() {
			return []string{"node", f}, nil
		}
	}
	return nil, nil
}

// Detect passes for package.json with something to run: a start script, a
// main file, or server.js, index.js or app.js. A package.json that only
// builds a site is the static buildpack's.
func (Buildpack) Detect(src string) (build.Detection, error) {
	m, ok, err := readManifest(src)
	if !ok || err != nil {
		return build.Detection{}, err
	}
	run, err := entry(src, m)
	if err != nil {
		return build.Detection{}, err
	}
	_, procfile := os.Stat(filepath.Join(src, "Procfile"))
	if run == nil && procfile != nil {
		return build.Detection{}, nil
	}
	return build.Detection{Pass: true, Reason: "package.json", Stack: "node", Provides: []string{"node"}}, nil
}

// Build installs dependencies, runs the build script, and lays out /app.
func (Buildpack) Build(ctx context.Context, bc *build.Context) error {
	m, _, err := readManifest(bc.Src)
	if err != nil {
		return err
	}
	lock, err := os.ReadFile(filepath.Join(bc.Src, "package-lock.json"))
	if errors.Is(err, os.ErrNotExist) {
		return errkind.WithHint(errkind.Invalid, errors.New("package-lock.json is missing: noops installs exactly what the lockfile says (npm ci)"),
			"run `npm install` in the app's folder and deploy again with package-lock.json")
	}
	if err != nil {
		return err
	}
	layers, err := bc.BuildImage(ctx, "node")
	if err != nil {
		return err
	}
	cache, err := bc.Layer("npm-cache", build.LayerSpec{Cache: true})
	if err != nil {
		return err
	}
	if err := productionModules(ctx, bc, lock, layers, cache); err != nil {
		return err
	}
	src := bc.Src
	if m.Scripts["build"] != "" {
		if src, err = runBuildScript(ctx, bc, cache); err != nil {
			return err
		}
	}
	n, err := copyApp(src, bc.App)
	if err != nil {
		return err
	}
	fmt.Fprintf(bc.Log, "app: %d files\n", n)
	run, err := entry(bc.Src, m)
	if err != nil {
		return err
	}
	if run != nil {
		bc.SetProcess("web", build.Process{Command: run, Env: map[string]string{"NODE_ENV": "production"}})
	}
	return nil
}

// npmEnv is the environment of every npm step.
func npmEnv() []string {
	return []string{"HOME=/tmp", "npm_config_cache=/cache/npm", "npm_config_update_notifier=false",
		"npm_config_fund=false", "npm_config_audit=false", "npm_config_loglevel=warn", "CI=true"}
}

// productionModules fills the cached node_modules launch layer with
// `npm ci --omit=dev`, unless the lockfile and build image are unchanged.
func productionModules(ctx context.Context, bc *build.Context, lock []byte, buildImage []string, cache *build.Layer) error {
	sum := sha256.Sum256(lock)
	// package.json too: a dependency added there but not to the lock must
	// reach `npm ci`, which refuses the mismatch, rather than reuse.
	pkg, err := os.ReadFile(filepath.Join(bc.Src, "package.json"))
	if err != nil {
		return err
	}
	pkgSum := sha256.Sum256(pkg)
	mods, err := bc.Layer("modules", build.LayerSpec{Launch: true, Cache: true, Target: "/app/node_modules",
		Metadata: map[string]string{"package-lock": hex.EncodeToString(sum[:]), "package": hex.EncodeToString(pkgSum[:]),
			"build-image": imageID(buildImage)}})
	if err != nil {
		return err
	}
	if mods.Reused {
		fmt.Fprintln(bc.Log, "node_modules: package.json and lockfile unchanged, reusing the dependency layer")
		return nil
	}
	dir := filepath.Join(bc.Work, "deps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(bc.Src, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	step := build.Step{Args: []string{"npm", "ci", "--omit=dev", "--ignore-scripts=false"}, Dir: "/workspace", Env: npmEnv(), Network: true,
		Mounts: []build.Mount{{Source: dir, Target: "/workspace"}, {Source: cache.Path, Target: "/cache/npm"}}}
	if err := bc.Tool(ctx, "node", step, "check that package-lock.json is in sync with package.json (`npm install` updates it) and that every dependency is published"); err != nil {
		return err
	}
	if err := os.Remove(mods.Path); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, "node_modules"), mods.Path); errors.Is(err, os.ErrNotExist) {
		return os.Mkdir(mods.Path, 0o755) // no dependencies
	} else if err != nil {
		return fmt.Errorf("keeping node_modules: %w", err)
	}
	return nil
}

// BuildSite runs a site's build script for the static buildpack: `npm ci`
// and `npm run build` on a copy of the source, in the node stack's build
// image, with a cached npm cache. It returns the built copy.
func BuildSite(ctx context.Context, bc *build.Context) (string, error) {
	if _, err := os.Stat(filepath.Join(bc.Src, "package-lock.json")); err != nil {
		return "", errkind.WithHint(errkind.Invalid, errors.New("package-lock.json is missing: noops installs exactly what the lockfile says (npm ci)"),
			"run `npm install` in the site's folder and deploy again with package-lock.json")
	}
	cache, err := bc.Layer("npm-cache", build.LayerSpec{Cache: true})
	if err != nil {
		return "", err
	}
	return runBuildScript(ctx, bc, cache)
}

// runBuildScript runs `npm ci` (with dev dependencies) and `npm run build`
// on a copy of the source and returns the copy, built.
func runBuildScript(ctx context.Context, bc *build.Context, cache *build.Layer) (string, error) {
	dir := filepath.Join(bc.Work, "src")
	if _, err := copyApp(bc.Src, dir); err != nil {
		return "", err
	}
	mounts := []build.Mount{{Source: dir, Target: "/workspace"}, {Source: cache.Path, Target: "/cache/npm"}}
	for _, args := range [][]string{{"npm", "ci"}, {"npm", "run", "build"}} {
		step := build.Step{Args: args, Dir: "/workspace", Env: npmEnv(), Network: true, Mounts: mounts}
		if err := bc.Tool(ctx, "node", step, "fix the errors above; `npm ci && npm run build` must work in the app's folder"); err != nil {
			return "", err
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "node_modules")); err != nil {
		return "", err
	}
	return dir, nil
}

// imageID names a build image by its unpacked layers' folders (digests).
func imageID(layers []string) string {
	ids := make([]string, len(layers))
	for i, l := range layers {
		ids[i] = filepath.Base(l)
	}
	return strings.Join(ids, ",")
}

// copyApp copies the app's source into dst without node_modules and .git
// (what the upload's ignore files kept is the app) and returns the number
// of files copied.
func copyApp(src, dst string) (int, error) {
	return build.CopyTree(src, dst, func(rel string) bool {
		return rel == "node_modules" || rel == ".git"
	})
}
