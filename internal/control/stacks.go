package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/build"
	"noops/internal/sbom"
	"noops/internal/stack"
)

// Stacks is the stack manager as the control plane uses it.
type Stacks interface {
	RunImage(ctx context.Context, name string) (v1.Image, stack.Lock, error)
	BuildImage(ctx context.Context, name string) (v1.Image, stack.Lock, error)
	Lock(name, kind string) (stack.Lock, error)
	List(ctx context.Context) ([]stack.Info, error)
	Build(ctx context.Context, name string, progress io.Writer) (stack.Info, error)
	Update(ctx context.Context, name string, progress io.Writer) (stack.Update, error)
}

// buildStacks gives builds the stacks' run images with their package
// inventory and their build images unpacked.
type buildStacks struct {
	stacks Stacks
	images Images
}

func (b buildStacks) RunImage(ctx context.Context, name string) (build.RunImage, error) {
	img, lock, err := b.stacks.RunImage(ctx, name)
	if err != nil {
		return build.RunImage{}, err
	}
	os := lockOS(lock)
	pkgs := make([]sbom.Component, len(lock.Packages))
	for i, p := range lock.Packages {
		pkgs[i] = sbom.OSPackage(os, p.Name, p.Version, p.Arch, p.Source, p.SHA256)
	}
	return build.RunImage{Stack: name, Image: img, OS: os, Packages: pkgs}, nil
}

func (b buildStacks) BuildLayers(ctx context.Context, name string) ([]string, error) {
	img, _, err := b.stacks.BuildImage(ctx, name)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading the build image of stack %s: %w", name, err)
	}
	return b.images.Unpack(ctx, d)
}

// lockOS is the inventory's OS of a stack lock ("debian-12").
func lockOS(l stack.Lock) sbom.OS {
	id, version, _ := strings.Cut(l.Distro, "-")
	return sbom.OS{ID: id, VersionID: version, Arch: l.Arch}
}

// stacksFingerprint names the current locks of every stack: an image built
// on older stacks is not reused for an unchanged source after an update.
func stacksFingerprint(s Stacks) string {
	h := sha256.New()
	for _, name := range stack.Names() {
		for _, kind := range []string{stack.KindRun, stack.KindBuild} {
			l, err := s.Lock(name, kind)
			if err != nil {
				fmt.Fprintf(h, "%s/%s none\n", name, kind)
				continue
			}
			d, err := l.Digest()
			if err != nil {
				d = "unreadable"
			}
			fmt.Fprintf(h, "%s/%s %s\n", name, kind, d)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
