// Package static is the buildpack for static sites: a folder with
// index.html (at the top or in public/). The site is served by a small
// static file server compiled from source with the server's Go toolchain
// (no language runtime, no shell in the image), on the static stack.
// Importing it registers it with package build.
package static

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"noops/internal/build"
	"noops/internal/build/golang"
	"noops/internal/build/node"
	"noops/internal/errkind"
)

//go:embed server.go.txt
var serverSource []byte

func init() { build.Register(Buildpack{}) }

// Buildpack builds static sites.
type Buildpack struct{}

// Name and Expects describe the buildpack to package build.
func (Buildpack) Name() string    { return "static" }
func (Buildpack) Expects() string { return "index.html (a static site)" }

// Serve is where the site's files are in the image, and the server.
const (
	Public = "/app/public"
	Server = "/layers/static/server/static-server"
)

// siteOutputs are where site generators put a built site, in the order
// they are looked at.
var siteOutputs = []string{"dist", "build", "out", "_site", "public"}

// Detect passes for index.html at the top of the source or in public/, and
// for a site with a build script (package.json with scripts.build and no
// server to run), which is built with npm in the node stack's build image.
func (Buildpack) Detect(src string) (build.Detection, error) {
	if ok, err := node.HasBuildScript(src); err != nil || ok {
		return build.Detection{Pass: ok, Reason: "package.json build script", Stack: "static"}, err
	}
	for _, p := range []string{"index.html", "public/index.html"} {
		fi, err := os.Stat(filepath.Join(src, p))
		if err == nil && fi.Mode().IsRegular() {
			return build.Detection{Pass: true, Reason: p, Stack: "static"}, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return build.Detection{}, err
		}
	}
	return build.Detection{}, nil
}

// Build copies the site (built first, when it has a build script) into
// /app/public and adds the server.
func (Buildpack) Build(ctx context.Context, bc *build.Context) error {
	site := bc.Src
	if ok, err := node.HasBuildScript(bc.Src); err != nil {
		return err
	} else if ok {
		built, err := node.BuildSite(ctx, bc)
		if err != nil {
			return err
		}
		if site, err = builtSite(built); err != nil {
			return err
		}
	} else if _, err := os.Stat(filepath.Join(bc.Src, "index.html")); err != nil {
		site = filepath.Join(bc.Src, "public")
	}
	n, err := CopySite(site, filepath.Join(bc.App, "public"))
	if err != nil {
		return err
	}
	from := strings.TrimPrefix(strings.TrimPrefix(site, bc.Src), "/")
	if from == "" || !strings.HasPrefix(site, bc.Src) {
		from = filepath.Base(site)
	}
	fmt.Fprintf(bc.Log, "site: %d files from %s\n", n, from)
	if err := AddServer(ctx, bc); err != nil {
		return err
	}
	bc.SetProcess("web", build.Process{Command: []string{Server}})
	return nil
}

// builtSite finds the folder a build script wrote the site into.
func builtSite(dir string) (string, error) {
	for _, out := range siteOutputs {
		if fi, err := os.Stat(filepath.Join(dir, out, "index.html")); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(dir, out), nil
		}
	}
	return "", errkind.WithHint(errkind.Invalid, fmt.Errorf("the build script wrote no index.html into %s", strings.Join(siteOutputs, ", ")),
		"make `npm run build` write the site into one of those folders")
}

// AddServer puts the static file server in a cached launch layer. The
// server is compiled once per server source and Go version for all apps
// (in bc.Tools), with the Go build cache of the user running noops, which
// building noops itself has warmed.
func AddServer(ctx context.Context, bc *build.Context) error {
	gobin, err := golang.Toolchain()
	if err != nil {
		return err
	}
	version, err := exec.CommandContext(ctx, gobin, "env", "GOVERSION").Output()
	if err != nil {
		return fmt.Errorf("asking %s for its version: %w", gobin, err)
	}
	sum := sha256.Sum256(append(append([]byte{}, serverSource...), version...))
	key := hex.EncodeToString(sum[:8])
	l, err := bc.Layer("server", build.LayerSpec{Launch: true, Cache: true, Target: filepath.Dir(Server),
		Metadata: map[string]string{"server": key}})
	if err != nil {
		return err
	}
	if l.Reused {
		return nil
	}
	bin := filepath.Join(bc.Tools, "static-server-"+key)
	if _, err := os.Stat(bin); err != nil {
		if err := compileServer(ctx, bc, gobin, bin); err != nil {
			return err
		}
	}
	return build.CopyFile(bin, filepath.Join(l.Path, filepath.Base(Server)), 0o755)
}

// compileServer builds the server into bin, atomically.
func compileServer(ctx context.Context, bc *build.Context, gobin, bin string) error {
	dir, err := os.MkdirTemp(bc.Work, "static-server-")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), serverSource, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module noops.dev/static-server\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(bc.Tools, 0o755); err != nil {
		return err
	}
	tmp := bin + ".tmp-" + filepath.Base(dir)
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", tmp, ".")
	cmd.Dir = dir
	cmd.Env = []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off",
		"PATH=" + filepath.Dir(gobin) + ":/usr/bin:/bin"}
	if cache, err := exec.CommandContext(ctx, gobin, "env", "GOCACHE").Output(); err == nil && len(strings.TrimSpace(string(cache))) > 0 {
		cmd.Env = append(cmd.Env, "GOCACHE="+strings.TrimSpace(string(cache)))
	} else {
		cmd.Env = append(cmd.Env, "GOCACHE="+filepath.Join(bc.Tools, "go-build"))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compiling the static site server: %v\n%s", err, out)
	}
	fmt.Fprintln(bc.Log, "compiled the static site server")
	return os.Rename(tmp, bin)
}

// CopySite copies the site at src into dst, leaving out what is not the
// site (dotfiles such as .git and .env, noops.yaml, Procfile) and
// refusing links that leave it. It returns the number of files copied.
func CopySite(src, dst string) (int, error) {
	return build.CopyTree(src, dst, func(rel string) bool {
		return strings.HasPrefix(filepath.Base(rel), ".") || rel == "noops.yaml" || rel == "Procfile"
	})
}
