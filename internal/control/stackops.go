package control

import (
	"context"
	"fmt"
	"io"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/sbom"
	"noops/internal/stack"
)

// StackUpdate is a stack update and the apps it affects: those whose live
// release is on an older run image of the stack (`noops rebase` moves
// them).
type StackUpdate struct {
	stack.Update
	Affected []string
}

// Stacks lists the stacks and their current images.
func (p *Plane) Stacks(ctx context.Context) ([]stack.Info, error) { return p.stacks.List(ctx) }

// BuildStack builds a stack's images from its lock (resolving one the
// first time), streaming progress lines to w.
func (p *Plane) BuildStack(ctx context.Context, name string, w io.Writer) (stack.Info, error) {
	if err := knownStack(name); err != nil {
		return stack.Info{}, err
	}
	return p.stacks.Build(ctx, name, w)
}

// UpdateStack resolves a stack's packages again to the newest versions in
// the archive, builds its images and says which apps run on an older one.
func (p *Plane) UpdateStack(ctx context.Context, name string, w io.Writer) (StackUpdate, error) {
	if err := knownStack(name); err != nil {
		return StackUpdate{}, err
	}
	u, err := p.stacks.Update(ctx, name, w)
	if err != nil {
		return StackUpdate{}, err
	}
	affected, err := p.onOlderRunImage(ctx, name, u.Info.Run.Digest)
	return StackUpdate{Update: u, Affected: affected}, err
}

// onOlderRunImage lists the apps whose live release is on stack but not on
// the run image current.
func (p *Plane) onOlderRunImage(ctx context.Context, stackName string, current v1.Hash) ([]string, error) {
	apps, err := p.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range apps {
		if a.Release == 0 {
			continue
		}
		rel, err := p.store.GetRelease(ctx, a.Name, a.Release)
		if err != nil {
			return nil, err
		}
		d, err := v1.NewHash(rel.Image)
		if err != nil {
			continue
		}
		img, err := p.images.Get(d)
		if err != nil {
			continue
		}
		cf, err := img.ConfigFile()
		if err != nil {
			continue
		}
		if cf.Config.Labels[build.LabelStack] == stackName && cf.Config.Labels[build.LabelBaseImage] != current.String() {
			out = append(out, a.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func knownStack(name string) error {
	for _, n := range stack.Names() {
		if n == name {
			return nil
		}
	}
	return errkind.Errorf(errkind.NotFound, "no stack %q: the stacks are %v", name, stack.Names())
}

// SBOM formats.
const (
	FormatCycloneDX = "cyclonedx"
	FormatSPDX      = "spdx"
	FormatInventory = "inventory"
)

// SBOM returns the SBOM of an app's release (0: the live one) in format,
// with its media type.
func (p *Plane) SBOM(ctx context.Context, app string, number int, format string) ([]byte, string, error) {
	if number == 0 {
		a, err := p.store.GetApp(ctx, app)
		if err != nil {
			return nil, "", err
		}
		if a.Release == 0 {
			return nil, "", errkind.WithHint(errkind.NotFound, fmt.Errorf("%s has no live release", app), "deploy it first, or name a release with --release")
		}
		number = a.Release
	}
	rel, err := p.store.GetRelease(ctx, app, number)
	if err != nil {
		return nil, "", err
	}
	inv, err := p.inventory(ctx, rel)
	if err != nil {
		return nil, "", err
	}
	switch format {
	case FormatCycloneDX, "":
		b, err := sbom.CycloneDX(inv)
		return b, "application/vnd.cyclonedx+json", err
	case FormatSPDX:
		b, err := sbom.SPDX(inv)
		return b, "application/spdx+json", err
	case FormatInventory:
		b, err := sbom.Encode(inv)
		return b, "application/json", err
	}
	return nil, "", errkind.Errorf(errkind.Invalid, "SBOM format %q is not one of cyclonedx, spdx, inventory", format)
}
