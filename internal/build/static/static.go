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
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"noops/internal/build"
	"noops/internal/build/golang"
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

// Detect passes for index.html at the top of the source or in public/.
func (Buildpack) Detect(src string) (build.Detection, error) {
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

// Build copies the site into /app/public and adds the server.
func (Buildpack) Build(ctx context.Context, bc *build.Context) error {
	site := bc.Src
	if _, err := os.Stat(filepath.Join(bc.Src, "index.html")); err != nil {
		site = filepath.Join(bc.Src, "public")
	}
	n, err := CopySite(site, filepath.Join(bc.App, "public"))
	if err != nil {
		return err
	}
	fmt.Fprintf(bc.Log, "site: %d files from %s\n", n, strings.TrimPrefix(strings.TrimPrefix(site, bc.Src), "/"))
	if err := AddServer(ctx, bc); err != nil {
		return err
	}
	bc.SetProcess("web", build.Process{Command: []string{Server}})
	return nil
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
	return copyFile(bin, filepath.Join(l.Path, filepath.Base(Server)), 0o755)
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
	return CopyTree(src, dst, func(rel string) bool {
		return strings.HasPrefix(filepath.Base(rel), ".") || rel == "noops.yaml" || rel == "Procfile"
	})
}

// CopyTree copies the tree at src into dst, leaving out the paths (relative
// to src) that skip names, and refusing links that leave the tree. It
// returns the number of files copied.
func CopyTree(src, dst string, skip func(rel string) bool) (int, error) {
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(link) || strings.HasPrefix(filepath.Clean(filepath.Join(filepath.Dir(rel), link)), "..") {
				return errkind.Errorf(errkind.Invalid, "%s links outside the app (%s)", rel, link)
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			n++
			return copyFile(p, target, 0o644)
		}
		return errkind.Errorf(errkind.Invalid, "%s is not a regular file, folder or link", rel)
	})
	if err != nil {
		return n, fmt.Errorf("copying %s: %w", filepath.Base(src), err)
	}
	return n, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err == nil && fi.Mode()&0o100 != 0 {
		mode = 0o755
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
