// Package golang is the buildpack for Go modules: it recognises go.mod,
// compiles the module's main package with the server's Go toolchain into a
// static binary, and runs that binary as the app. Importing it registers
// it with package build.
package golang

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"time"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/image"
)

func init() { build.Register(&Buildpack{}) }

// Buildpack builds Go modules.
type Buildpack struct {
	// fallback is where the toolchain is looked for when PATH has no go;
	// "" means /usr/local/go/bin/go.
	fallback string
}

// Name and Expects describe the buildpack to package build.
func (*Buildpack) Name() string    { return "golang" }
func (*Buildpack) Expects() string { return "go.mod (Go)" }

// Detect passes when the source has go.mod at its root.
func (*Buildpack) Detect(src string) (build.Detection, error) {
	fi, err := os.Stat(filepath.Join(src, "go.mod"))
	if errors.Is(err, os.ErrNotExist) {
		return build.Detection{}, nil
	}
	if err != nil {
		return build.Detection{}, err
	}
	// A static binary needs no language runtime: the static stack.
	return build.Detection{Pass: fi.Mode().IsRegular(), Reason: "go.mod", Stack: "static", Provides: []string{"go"}}, nil
}

// tailLines is how much of the compiler's output a failed build's error keeps.
const tailLines = 40

// Build compiles the main package into the app layer as a static binary.
func (b *Buildpack) Build(ctx context.Context, bc *build.Context) error {
	modPath, err := modulePath(filepath.Join(bc.Src, "go.mod"))
	if err != nil {
		return err
	}
	pkg, err := mainPackage(bc.Src)
	if err != nil {
		return err
	}
	gobin, err := b.toolchain()
	if err != nil {
		return err
	}
	bin := binaryName(modPath)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", filepath.Join(bc.App, bin), pkg}
	env, err := b.env(bc, gobin)
	if err != nil {
		return err
	}
	fmt.Fprintf(bc.Log, "go build -trimpath -buildvcs=false -ldflags=\"-s -w\" -o %s/%s %s\n", image.AppDir, bin, pkg)

	tail := &tailWriter{}
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = bc.Src
	cmd.Env = env
	cmd.Stdout = &teeWriter{log: bc.Log, tail: tail}
	cmd.Stderr = cmd.Stdout
	// go runs the compiler and linker as children: stop them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("running go build: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return errkind.WithHint(errkind.Invalid,
			fmt.Errorf("go build failed (%s):\n%s", exit.ProcessState, tail.last(tailLines)),
			"fix the errors above, check that `go build` works in the app's folder, and deploy again")
	}
	if err != nil {
		return fmt.Errorf("running %s build: %w", gobin, err)
	}
	fmt.Fprintf(bc.Log, "built %s in %s\n", image.AppDir+"/"+bin, time.Since(start).Round(10*time.Millisecond))
	bc.SetProcess("web", build.Process{Command: []string{image.AppDir + "/" + bin}})
	return nil
}

// toolchain finds the go command: in PATH, then where the Go distribution
// installs it.
func (b *Buildpack) toolchain() (string, error) { return findGo(b.fallback) }

// Toolchain finds the server's go command, for other buildpacks that
// compile Go (the static site server).
func Toolchain() (string, error) { return findGo("") }

func findGo(fallback string) (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return filepath.Abs(p)
	}
	if fallback == "" {
		fallback = "/usr/local/go/bin/go"
	}
	if fi, err := os.Stat(fallback); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return fallback, nil
	}
	return "", errkind.WithHint(errkind.Unavailable,
		fmt.Errorf("Go toolchain not found: no go in PATH or at %s", fallback),
		"install Go on the server (https://go.dev/dl, into /usr/local/go) and deploy again")
}

// inherited are the server's settings that reach go build: how to fetch
// modules (proxies, private modules, checksum database).
var inherited = []string{
	"GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOINSECURE", "GOVCS",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
}

// env is go build's whole environment: the server's module settings, the
// app's build.env, then what the buildpack forces (caches, static linking,
// target platform, this toolchain), logging what it overrides.
func (b *Buildpack) env(bc *build.Context, gobin string) ([]string, error) {
	tmp := filepath.Join(bc.Work, "tmp")
	home := filepath.Join(bc.Cache, "home")
	// Go's build cache is keyed by the hash of every input and its module
	// cache is checked against go.sum: both are safe to share between
	// apps, and go build runs no code of the app's.
	shared := bc.Shared
	if shared == "" {
		shared = bc.Cache
	}
	for _, d := range []string{tmp, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, errkind.E(errkind.Unavailable, fmt.Errorf("creating build folder: %w", err))
		}
	}
	env := map[string]string{}
	for _, k := range inherited {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range bc.Env {
		env[k] = v
	}
	forced := map[string]string{
		"CGO_ENABLED": "0",
		"GOOS":        "linux",
		"GOARCH":      runtime.GOARCH,
		"GOCACHE":     filepath.Join(shared, "go-build"),
		"GOMODCACHE":  filepath.Join(shared, "gomod"),
		"GOTOOLCHAIN": "local",
		"GOWORK":      "off",
		"GOENV":       "off",
		"HOME":        home,
		"TMPDIR":      tmp,
		"PATH":        filepath.Dir(gobin) + ":/usr/local/bin:/usr/bin:/bin",
	}
	for _, k := range sortedKeys(forced) {
		if v, ok := bc.Env[k]; ok && v != forced[k] {
			why := "noops sets it"
			if k == "CGO_ENABLED" {
				why = "apps are static binaries without cgo"
			}
			fmt.Fprintf(bc.Log, "build.env sets %s=%s: ignored, using %s=%s (%s)\n", k, v, k, forced[k], why)
		}
		env[k] = forced[k]
	}
	list := make([]string, 0, len(env))
	for _, k := range sortedKeys(env) {
		list = append(list, k+"="+env[k])
	}
	return list, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
