// Package buildtest gives buildpack tests a real build.Stacks without the
// Debian archive: every stack's run image is the host-file base layer
// (image.BaseLayer) with a PATH, and no stack has a build image. Buildpacks
// that run build steps are tested on the real stacks, in internal/testenv.
package buildtest

import (
	"context"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/image"
	"noops/internal/sbom"
)

// Stacks is the host-file stand-in for internal/stack.
type Stacks struct{}

var run = sync.OnceValues(func() (v1.Image, error) {
	base, err := image.BaseLayer(image.BaseOptions{})
	if err != nil {
		return nil, err
	}
	return image.Assemble(v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), base)
})

// RunImage returns the base-layer image for any stack name.
func (Stacks) RunImage(_ context.Context, name string) (build.RunImage, error) {
	img, err := run()
	return build.RunImage{Stack: name, Image: img, OS: sbom.OS{ID: "debian", VersionID: "12", Arch: "amd64"}}, err
}

// BuildLayers says there is no build image.
func (Stacks) BuildLayers(_ context.Context, name string) ([]string, error) {
	return nil, errkind.Errorf(errkind.NotFound, "stack %s has no build image in tests", name)
}
