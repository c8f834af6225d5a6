// Package build turns an app's source into an OCI image the way Cloud
// Native Buildpacks do: detect which buildpack recognises the source, let
// it build the launch layer, and export an image of the base layer plus
// that layer. Buildpacks live in sub-packages and register themselves.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/image"
)

// Labels set on every image.
const (
	LabelApp          = "dev.noops.app"
	LabelBuildpack    = "dev.noops.buildpack"
	LabelSourceDigest = "dev.noops.source-digest"
	LabelBuildTime    = "dev.noops.build-time"
)

// Request is one build.
type Request struct {
	App   string            // app name (labels)
	Src   string            // unpacked source folder: read, never written
	Cache string            // the app's cache folder, kept between builds
	Env   map[string]string // the manifest's build.env
	Port  int               // run.port: exposed and given to the app as PORT
	Base  v1.Layer          // the base layer (image.Store.Base)
	Log   io.Writer         // build output, streamed as it comes
	Now   time.Time         // the build's time, for labels and the config
}

// Result is a built image, not yet stored.
type Result struct {
	Image        v1.Image
	SourceDigest string
	Buildpack    string
}

// Build detects which registered buildpack recognises req.Src, runs it and
// exports the image. Source that no buildpack recognises, or that fails to
// compile, is errkind.Invalid.
func Build(ctx context.Context, req Request) (Result, error) {
	return run(ctx, req, registered.list())
}

func run(ctx context.Context, req Request, bps []Buildpack) (Result, error) {
	if err := req.check(); err != nil {
		return Result{}, err
	}
	if req.Log == nil {
		req.Log = io.Discard
	}
	digest, err := SourceDigest(req.Src)
	if err != nil {
		return Result{}, err
	}
	bp, det, err := detect(req.Src, bps)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(req.Log, "detected %s (%s)\n", bp.Name(), det.Reason)

	work, err := os.MkdirTemp(req.Cache, ".build-")
	if err != nil {
		return Result{}, errkind.E(errkind.Unavailable, fmt.Errorf("creating build folder: %w", err))
	}
	defer os.RemoveAll(work)
	bc := &Context{App: req.App, Src: req.Src, Cache: req.Cache, Work: filepath.Join(work, "work"),
		Layer: filepath.Join(work, "launch"), Env: req.Env, Log: req.Log}
	for _, d := range []string{bc.Work, bc.Layer} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return Result{}, errkind.E(errkind.Unavailable, fmt.Errorf("creating build folder: %w", err))
		}
	}
	if err := bp.Build(ctx, bc); err != nil {
		return Result{}, fmt.Errorf("building with %s: %w", bp.Name(), err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("building with %s: %w", bp.Name(), err)
	}
	img, err := export(req, bc, bp.Name(), digest)
	if err != nil {
		return Result{}, fmt.Errorf("exporting image: %w", err)
	}
	return Result{Image: img, SourceDigest: digest, Buildpack: bp.Name()}, nil
}

func (req *Request) check() error {
	switch {
	case req.Src == "" || req.Cache == "":
		return errors.New("build request needs a source and a cache folder")
	case req.Base == nil:
		return errors.New("build request has no base layer")
	case req.Port < 1 || req.Port > 65535:
		return errkind.Errorf(errkind.Invalid, "run.port %d is not a TCP port (1-65535)", req.Port)
	}
	if fi, err := os.Stat(req.Src); err != nil || !fi.IsDir() {
		return fmt.Errorf("reading source folder %s: not a folder (%v)", req.Src, err)
	}
	return nil
}

// detect returns the first buildpack, in order, whose Detect passes.
func detect(src string, bps []Buildpack) (Buildpack, Detection, error) {
	var expects []string
	for _, bp := range bps {
		det, err := bp.Detect(src)
		if err != nil {
			return nil, Detection{}, fmt.Errorf("detecting %s: %w", bp.Name(), err)
		}
		if det.Pass {
			return bp, det, nil
		}
		expects = append(expects, bp.Expects())
	}
	if len(expects) == 0 {
		return nil, Detection{}, errors.New("no buildpacks are registered")
	}
	return nil, Detection{}, errkind.WithHint(errkind.Invalid,
		fmt.Errorf("no recognised app in the upload: expected %s at the top of the folder", orList(expects)),
		"deploy the folder that holds your app's "+expects[0])
}

func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// export assembles the image: the base layer, then the launch layer under
// /app, owned by root so that the app cannot change its own files.
func export(req Request, bc *Context, buildpack, digest string) (v1.Image, error) {
	p := bc.Process
	if len(p.Command) == 0 || !strings.HasPrefix(p.Command[0], "/") {
		return nil, fmt.Errorf("buildpack %s declared no process to run (command %q)", buildpack, p.Command)
	}
	app, err := image.LayerFromDir(bc.Layer, image.AppDir)
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(req.Port)
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PORT=" + port}
	for _, k := range sortedKeys(p.Env) {
		if k != "PATH" && k != "PORT" {
			env = append(env, k+"="+p.Env[k])
		}
	}
	wd := p.WorkingDir
	if wd == "" {
		wd = image.AppDir
	}
	cfg := v1.Config{
		User:         image.NonRootUser,
		Entrypoint:   p.Command,
		WorkingDir:   wd,
		Env:          env,
		ExposedPorts: map[string]struct{}{port + "/tcp": {}},
		Labels: map[string]string{
			LabelApp:          req.App,
			LabelBuildpack:    buildpack,
			LabelSourceDigest: digest,
			LabelBuildTime:    req.Now.UTC().Format(time.RFC3339),
		},
	}
	return image.Assemble(cfg, req.Now, req.Base, app)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
