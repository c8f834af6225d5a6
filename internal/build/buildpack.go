package build

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"noops/internal/errkind"
)

// A Buildpack turns source it recognises into layers of an app image,
// shaped after the Cloud Native Buildpacks API: Detect looks (and says what
// the app needs), Build writes layers and declares processes; restore,
// layer reuse and export are common to all and live in this package.
type Buildpack interface {
	// Name identifies the buildpack in logs, groups and image labels:
	// "golang".
	Name() string
	// Expects says what Detect looks for, for a user whose upload no
	// buildpack recognises: "go.mod (Go)".
	Expects() string
	// Detect reports whether the source at src is this buildpack's kind of
	// app. It only reads src.
	Detect(src string) (Detection, error)
	// Build writes the app's layers (bc.App, bc.Layer) and processes.
	Build(ctx context.Context, bc *Context) error
}

// Detection is the outcome of Buildpack.Detect: the CNB build plan reduced
// to what noops needs.
type Detection struct {
	Pass   bool
	Reason string // what was found, for the build log: "go.mod"
	// Stack is the stack whose run image the app needs ("static", "node",
	// "python"); "" when this buildpack has no opinion (procfile). The
	// group's first buildpack with a stack decides.
	Stack string
	// Provides and Requires name what the buildpack gives later
	// buildpacks of its group and what it needs from earlier ones
	// ("node"); a group passes only when every requirement is provided.
	Provides []string
	Requires []string
}

// Context is what a buildpack's Build works with. Buildpacks of one group
// share it, in order, so a later one sees what an earlier one did.
type Context struct {
	AppName string            // the app's name
	Src     string            // the source: read it, never write into it
	Cache   string            // the app's cache folder, kept between builds
	Work    string            // a scratch folder, removed after the build
	App     string            // the app layer: its files appear under /app
	Env     map[string]string // the manifest's build.env
	Port    int               // run.port
	Log     io.Writer         // build output, which the user sees as it comes
	Tools   string            // shared by all apps' builds: programs noops compiles for images
	Shared  string            // shared by all apps' builds: content-addressed caches ("" → Cache)

	// Runner runs build steps in a sandbox made from a stack's build
	// image (BuildImage); nil when the platform has no build sandboxes.
	Runner Runner

	// Processes are set by Build, by type: "web" is routed, "worker" runs
	// unrouted, "release" runs once before a release goes live. A later
	// buildpack (procfile) may replace them.
	Processes map[string]Process

	layers      *layerSet
	bp          string // the buildpack now building, for layer names
	stacks      Stacks
	buildImages map[string][]string
}

// BuildImage returns the named stack's build image, unpacked, bottom layer
// first, for Step.Layers.
func (bc *Context) BuildImage(ctx context.Context, stack string) ([]string, error) {
	if l, ok := bc.buildImages[stack]; ok {
		return l, nil
	}
	l, err := bc.stacks.BuildLayers(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("getting the build image of stack %s: %w", stack, err)
	}
	if bc.buildImages == nil {
		bc.buildImages = map[string][]string{}
	}
	bc.buildImages[stack] = l
	return l, nil
}

// Run runs a build step in the sandbox, its output going to the build log.
func (bc *Context) Run(ctx context.Context, step Step) error {
	if bc.Runner == nil {
		return errkind.Errorf(errkind.Unavailable, "buildpack %s needs build sandboxes, which this server does not have", bc.bp)
	}
	if step.Stdout == nil {
		step.Stdout = bc.Log
	}
	if step.Stderr == nil {
		step.Stderr = bc.Log
	}
	return bc.Runner.Run(ctx, step)
}

// Process is one command an image can run.
type Process struct {
	Command    []string          // an absolute path in the image, or a name found on PATH, then arguments
	WorkingDir string            // default /app
	Env        map[string]string // set in the image besides PATH and PORT (for the web process: image-wide)
}

// SetProcess declares the process of type typ.
func (bc *Context) SetProcess(typ string, p Process) {
	if bc.Processes == nil {
		bc.Processes = map[string]Process{}
	}
	bc.Processes[typ] = p
}

// registry holds the registered buildpacks by name.
type registry struct {
	mu  sync.Mutex
	bps map[string]Buildpack
}

var registered registry

// Register adds bp to the buildpacks that groups may use. Buildpack
// packages call it from init. It panics when a buildpack of the same name
// is already registered.
func Register(bp Buildpack) { registered.add(bp) }

func (r *registry) add(bp Buildpack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.bps[bp.Name()]; dup {
		panic(fmt.Sprintf("build: buildpack %q registered twice", bp.Name()))
	}
	if r.bps == nil {
		r.bps = map[string]Buildpack{}
	}
	r.bps[bp.Name()] = bp
}

func (r *registry) get(name string) (Buildpack, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bp, ok := r.bps[name]
	return bp, ok
}

func (r *registry) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.bps))
	for n := range r.bps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
