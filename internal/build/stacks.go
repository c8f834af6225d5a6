package build

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/sbom"
)

// Stacks gives builds the images of the stacks (internal/stack): the run
// image an app's layers go on top of, and the build image its build steps
// run in.
type Stacks interface {
	// RunImage is the named stack's current run image and what it holds.
	RunImage(ctx context.Context, name string) (RunImage, error)
	// BuildLayers is the named stack's build image, unpacked, bottom layer
	// first; errkind.NotFound for a stack without one.
	BuildLayers(ctx context.Context, name string) ([]string, error)
}

// RunImage is a stack's run image with its package inventory.
type RunImage struct {
	Stack    string
	Image    v1.Image
	OS       sbom.OS
	Packages []sbom.Component // the OS packages in it
}
