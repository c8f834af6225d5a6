package build

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
)

// A Buildpack turns source it recognises into the files of an app, shaped
// after the Cloud Native Buildpacks API: Detect looks, Build writes the
// launch layer and declares the process; export is common to all.
type Buildpack interface {
	// Name identifies the buildpack in logs and image labels: "golang".
	Name() string
	// Expects says what Detect looks for, for a user whose upload no
	// buildpack recognises: "go.mod (Go)".
	Expects() string
	// Priority orders detection, lowest first: language buildpacks use
	// 10, a Procfile 50, a static site 90 (it matches the most).
	Priority() int
	// Detect reports whether the source at src is this buildpack's kind of
	// app. It only reads src.
	Detect(src string) (Detection, error)
	// Build compiles or copies the app into bc.Layer and sets bc.Process.
	Build(ctx context.Context, bc *Context) error
}

// Detection is the outcome of Buildpack.Detect.
type Detection struct {
	Pass   bool
	Reason string // what was found, for the build log: "go.mod"
}

// Context is what a buildpack's Build works with.
type Context struct {
	App   string            // the app's name
	Src   string            // the source: read it, never write into it
	Cache string            // the app's cache folder, kept between builds
	Work  string            // a scratch folder, removed after the build
	Layer string            // the launch layer: its files appear under /app
	Env   map[string]string // the manifest's build.env
	Log   io.Writer         // build output, which the user sees as it comes

	// Process is set by Build: what the image runs.
	Process Process
}

// Process is what an image runs.
type Process struct {
	Command    []string          // entrypoint: an absolute path in the image, then arguments
	WorkingDir string            // default /app
	Env        map[string]string // set in the image besides PATH and PORT
}

// registry holds the buildpacks in detection order.
type registry struct {
	mu  sync.Mutex
	bps []Buildpack
}

var registered registry

// Register adds bp to the buildpacks that Build tries. Buildpack packages
// call it from init. It panics when a buildpack of the same name is
// already registered.
func Register(bp Buildpack) { registered.add(bp) }

func (r *registry) add(bp Buildpack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bps {
		if b.Name() == bp.Name() {
			panic(fmt.Sprintf("build: buildpack %q registered twice", bp.Name()))
		}
	}
	r.bps = append(r.bps, bp)
	sort.SliceStable(r.bps, func(i, j int) bool { return r.bps[i].Priority() < r.bps[j].Priority() })
}

func (r *registry) list() []Buildpack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Buildpack(nil), r.bps...)
}
