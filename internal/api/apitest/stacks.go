package apitest

import (
	"context"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/sbom"
	"noops/internal/spec"
	"noops/internal/stack"
	"noops/internal/store"
)

// stackInfo is the one stack the plane knows, "static", built once.
func stackInfo(now time.Time) stack.Info {
	d := v1.Hash{Algorithm: "sha256", Hex: "5717c0000000000000000000000000000000000000000000000000000000000a"}
	return stack.Info{Name: "static", Run: stack.ImageRef{Digest: d, Lock: "lock1", Packages: 3, Size: 1 << 20, Created: now}}
}

// Stacks lists the plane's one stack.
func (p *Plane) Stacks(context.Context) ([]stack.Info, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Stacks")
	if p.Err != nil {
		return nil, p.Err
	}
	return []stack.Info{stackInfo(p.now)}, nil
}

func (p *Plane) stack(name string) error {
	if p.Err != nil {
		return p.Err
	}
	if name != "static" {
		return errkind.Errorf(errkind.NotFound, "no stack %q", name)
	}
	return nil
}

// BuildStack "builds" the static stack, writing two progress lines.
func (p *Plane) BuildStack(_ context.Context, name string, w io.Writer) (stack.Info, error) {
	p.Lock()
	defer p.Unlock()
	p.called("BuildStack %s", name)
	if err := p.stack(name); err != nil {
		return stack.Info{}, err
	}
	fmt.Fprintf(w, "resolving %s\ndownloading 3 packages", name)
	return stackInfo(p.now), nil
}

// UpdateStack reports one changed package and every app affected.
func (p *Plane) UpdateStack(_ context.Context, name string, w io.Writer) (control.StackUpdate, error) {
	p.Lock()
	defer p.Unlock()
	p.called("UpdateStack %s", name)
	if err := p.stack(name); err != nil {
		return control.StackUpdate{}, err
	}
	fmt.Fprintln(w, "updating the package lists")
	u := control.StackUpdate{Update: stack.Update{Info: stackInfo(p.now), Run: []stack.Change{{Package: "tzdata", From: "2024a", To: "2025a"}}}}
	for name := range p.Known {
		u.Affected = append(u.Affected, name)
	}
	return u, nil
}

// Rebase makes a new release of the app with a note of the new stack.
func (p *Plane) Rebase(_ context.Context, app string, force bool, out control.Progress) (control.RebaseResult, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Rebase %s %v", app, force)
	if err := p.check(app); err != nil {
		return control.RebaseResult{}, err
	}
	out.Stage("rebasing")
	out.Log("  tzdata 2024a -> 2025a")
	env := map[string]string{}
	if rels := p.releases[app]; len(rels) > 0 {
		env = rels[0].Env
	}
	rel := p.addReleaseLocked(app, "rebase onto stack static", env)
	return control.RebaseResult{Release: rel, Changed: []sbom.Change{{Kind: sbom.KindOS, Ecosystem: sbom.Deb, Name: "tzdata", From: "2024a", To: "2025a"}}}, nil
}

// SBOM renders a one-package inventory of the app's live release.
func (p *Plane) SBOM(_ context.Context, app string, number int, format string) ([]byte, string, error) {
	p.Lock()
	defer p.Unlock()
	p.called("SBOM %s %d %s", app, number, format)
	if err := p.check(app); err != nil {
		return nil, "", err
	}
	os := sbom.OS{ID: "debian", VersionID: "12", Arch: "amd64"}
	inv := sbom.Inventory{App: app, Created: p.now, OS: os, Stack: "static",
		Components: []sbom.Component{sbom.OSPackage(os, "tzdata", "2025a", "all", "tzdata", "")}}
	switch format {
	case "", control.FormatCycloneDX:
		b, err := sbom.CycloneDX(inv)
		return b, "application/vnd.cyclonedx+json", err
	case control.FormatSPDX:
		b, err := sbom.SPDX(inv)
		return b, "application/spdx+json", err
	}
	return nil, "", errkind.Errorf(errkind.Invalid, "SBOM format %q is not one of cyclonedx, spdx, inventory", format)
}

// Hygiene reports one deleted release of every app.
func (p *Plane) Hygiene(context.Context) (control.HygieneReport, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Hygiene")
	if p.Err != nil {
		return control.HygieneReport{}, p.Err
	}
	rep := control.HygieneReport{Releases: map[string][]int{}, Skipped: map[string]string{}}
	for name := range p.Known {
		rep.Releases[name] = []int{1}
	}
	return rep, nil
}

// DeployImage makes a release of app from ref, creating the app.
func (p *Plane) DeployImage(_ context.Context, app, ref string, _ spec.Config, out control.Progress) (store.Release, error) {
	p.Lock()
	defer p.Unlock()
	p.called("DeployImage %s %s", app, ref)
	if p.Err != nil {
		return store.Release{}, p.Err
	}
	if err := p.Fail[app]; err != nil {
		return store.Release{}, err
	}
	if _, ok := p.Known[app]; !ok {
		p.Known[app] = &store.App{Name: app, Created: p.now, Replicas: 1}
	}
	out.Stage("releasing")
	return p.addReleaseLocked(app, "image "+ref, nil), nil
}
