// Package build turns an app's source into an OCI image the way Cloud
// Native Buildpacks do: detect which group of buildpacks recognises the
// source, restore their cached layers, let them build, and export an image
// of the stack's run image plus the launch layers, with its process types
// and an inventory for the SBOM. Buildpacks live in sub-packages and
// register themselves; build steps that need tools run in a build sandbox
// (Runner) made from the stack's build image.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/sbom"
)

// Request is one build.
type Request struct {
	App    string            // app name (labels)
	Src    string            // unpacked source folder: read, never written
	Cache  string            // the app's cache folder, kept between builds
	Env    map[string]string // the manifest's build.env
	Port   int               // run.port: exposed and given to the app as PORT
	Stacks Stacks            // run and build images
	Runner Runner            // build sandboxes; nil if no buildpack needs one
	Log    io.Writer         // build output, streamed as it comes
	Stage  func(name string) // called as each phase starts: detect, restore, build, export
	Now    time.Time         // the build's time, for labels and the config
	Order  []Group           // groups to detect; nil means DefaultOrder
	// Tools is a folder shared by all apps' builds for the programs noops
	// itself compiles into images (the static site server); "" means a
	// folder in Cache.
	Tools string
	// Shared is a folder shared by all apps' builds for caches whose
	// entries are content-addressed and verified (Go's module and build
	// caches); "" means a folder in Cache.
	Shared string
}

// Result is a built image, not yet stored.
type Result struct {
	Image        v1.Image
	SourceDigest string
	Buildpack    string // the group that built it: "node+procfile"
	Stack        string
	Inventory    sbom.Inventory // what the image holds; Image digest not yet set

	work string // holds the layer files Image reads until Close
}

// Close removes the build's files. The image cannot be read afterwards:
// store it first.
func (r Result) Close() error {
	if r.work == "" {
		return nil
	}
	return os.RemoveAll(r.work)
}

// Build detects the group that recognises req.Src, runs it and exports the
// image. Source that no buildpack recognises, or that fails to build, is
// errkind.Invalid.
func Build(ctx context.Context, req Request) (Result, error) {
	return buildWith(ctx, req, &registered)
}

func buildWith(ctx context.Context, req Request, reg *registry) (Result, error) {
	if err := req.check(); err != nil {
		return Result{}, err
	}
	if req.Log == nil {
		req.Log = io.Discard
	}
	if req.Stage == nil {
		req.Stage = func(string) {}
	}
	if req.Tools == "" {
		req.Tools = filepath.Join(req.Cache, "tools")
	}
	order := req.Order
	if order == nil {
		order = DefaultOrder
	}
	ph := phases{req: req}

	ph.start("detect")
	digest, err := SourceDigest(req.Src)
	if err != nil {
		return Result{}, err
	}
	group, err := detect(req.Src, order, reg)
	if err != nil {
		return Result{}, err
	}
	for i, bp := range group.bps {
		fmt.Fprintf(req.Log, "%s: %s\n", bp.Name(), group.dets[i].Reason)
	}
	if group.stack == "" {
		group.stack = "static"
	}
	ph.done(fmt.Sprintf("%s on stack %s", group.names(), group.stack))

	ph.start("restore")
	run, err := req.Stacks.RunImage(ctx, group.stack)
	if err != nil {
		return Result{}, fmt.Errorf("getting the run image of stack %s: %w", group.stack, err)
	}
	work, err := os.MkdirTemp(req.Cache, ".build-")
	if err != nil {
		return Result{}, errkind.E(errkind.Unavailable, fmt.Errorf("creating build folder: %w", err))
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(work)
		}
	}()
	bc := &Context{AppName: req.App, Src: req.Src, Cache: req.Cache, Work: filepath.Join(work, "work"),
		App: filepath.Join(work, "app"), Env: req.Env, Port: req.Port, Log: req.Log, Runner: req.Runner, Tools: req.Tools, Shared: req.Shared,
		layers: &layerSet{cache: filepath.Join(req.Cache, "layers"), work: filepath.Join(work, "layers")}}
	for _, d := range []string{bc.Work, bc.App, bc.layers.cache, bc.layers.work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Result{}, errkind.E(errkind.Unavailable, fmt.Errorf("creating build folder: %w", err))
		}
	}
	bc.stacks = req.Stacks
	ph.done("run image " + group.stack)

	ph.start("build")
	for _, bp := range group.bps {
		bc.bp = bp.Name()
		if err := bp.Build(ctx, bc); err != nil {
			return Result{}, fmt.Errorf("building with %s: %w", bp.Name(), err)
		}
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("building with %s: %w", bp.Name(), err)
		}
	}
	for _, l := range bc.layers.list {
		if l.Reused {
			fmt.Fprintf(req.Log, "reused layer %s/%s (unchanged)\n", l.bp, l.Name)
		}
	}
	ph.done("")

	ph.start("export")
	img, n, err := export(req, bc, run, group.names(), digest)
	if err != nil {
		return Result{}, fmt.Errorf("exporting image: %w", err)
	}
	if err := bc.layers.commit(); err != nil {
		return Result{}, fmt.Errorf("keeping the layer cache: %w", err)
	}
	inv, err := inventory(req, run)
	if err != nil {
		return Result{}, err
	}
	ph.done(fmt.Sprintf("%d layers on the run image", n))
	ok = true
	return Result{Image: img, SourceDigest: digest, Buildpack: group.names(), Stack: group.stack, Inventory: inv,
		work: work}, nil
}

func (req *Request) check() error {
	switch {
	case req.Src == "" || req.Cache == "":
		return errors.New("build request needs a source and a cache folder")
	case req.Stacks == nil:
		return errors.New("build request has no stacks")
	case req.Port < 1 || req.Port > 65535:
		return errkind.Errorf(errkind.Invalid, "run.port %d is not a TCP port (1-65535)", req.Port)
	}
	if fi, err := os.Stat(req.Src); err != nil || !fi.IsDir() {
		return fmt.Errorf("reading source folder %s: not a folder (%v)", req.Src, err)
	}
	return nil
}

// inventory lists what the image holds: the run image's OS packages and
// the app's dependencies from its lockfiles.
func inventory(req Request, run RunImage) (sbom.Inventory, error) {
	deps, err := sbom.AppDependencies(req.Src)
	if err != nil {
		return sbom.Inventory{}, fmt.Errorf("listing the app's dependencies: %w", err)
	}
	comps := append(append([]sbom.Component{}, run.Packages...), deps...)
	return sbom.Inventory{App: req.App, Created: req.Now, OS: run.OS, Stack: run.Stack, Components: comps}, nil
}

// phases shows each phase as a stage and its time in the log.
type phases struct {
	req   Request
	name  string
	began time.Time
}

func (p *phases) start(name string) {
	p.name, p.began = name, time.Now()
	p.req.Stage(name)
}

func (p *phases) done(what string) {
	took := time.Since(p.began).Round(time.Millisecond)
	if what == "" {
		fmt.Fprintf(p.req.Log, "%s took %s\n", p.name, took)
		return
	}
	fmt.Fprintf(p.req.Log, "%s: %s (%s)\n", p.name, what, took)
}
