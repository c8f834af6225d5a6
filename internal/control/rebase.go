package control

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/image"
	"noops/internal/sbom"
	"noops/internal/stack"
	"noops/internal/store"
)

// RebaseResult is what a rebase did.
type RebaseResult struct {
	Release   store.Release
	Added     []sbom.Component // OS packages the new run image adds
	Removed   []sbom.Component // OS packages it no longer has (only with force)
	Changed   []sbom.Change    // OS packages whose version changed
	Unchanged bool             // the app already was on the current run image
}

// Rebase puts the app's live release on its stack's current run image
// without rebuilding: the app's layers stay byte-identical and only the
// run image's layers change. It refuses a run image of another OS or
// architecture, and one that removes OS packages the app had unless force.
// The result is a new release, rolled out behind health checks like a
// deploy; if it fails, the live release keeps serving.
func (p *Plane) Rebase(ctx context.Context, app string, force bool, out Progress) (RebaseResult, error) {
	var res RebaseResult
	a, err := p.store.GetApp(ctx, app)
	if err != nil {
		return res, err
	}
	if a.Release == 0 {
		return res, errkind.WithHint(errkind.Conflict, fmt.Errorf("%s has no live release to rebase", app), "deploy it first: noops deploy")
	}
	done, err := p.claim(app, "a rebase")
	if err != nil {
		return res, err
	}
	defer done()
	live, err := p.store.GetRelease(ctx, app, a.Release)
	if err != nil {
		return res, err
	}
	d, err := v1.NewHash(live.Image)
	if err != nil {
		return res, fmt.Errorf("release %d of %s has a bad image digest: %w", live.Number, app, err)
	}
	img, err := p.images.Get(d)
	if err != nil {
		return res, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("reading the image of release %d: %w", live.Number, err)
	}
	labels := cf.Config.Labels
	stackName, baseImage := labels[build.LabelStack], labels[build.LabelBaseImage]
	n, err := strconv.Atoi(labels[build.LabelBaseLayers])
	if stackName == "" || baseImage == "" || err != nil {
		return res, errkind.WithHint(errkind.Invalid, fmt.Errorf("release %d of %s was built before stacks and cannot be rebased", live.Number, app),
			"deploy it again: the new build is on a stack and can be rebased from then on")
	}
	out.Stage("resolving")
	run, lock, err := p.stacks.RunImage(ctx, stackName)
	if err != nil {
		return res, fmt.Errorf("getting the run image of stack %s: %w", stackName, err)
	}
	runDigest, err := run.Digest()
	if err != nil {
		return res, fmt.Errorf("reading the run image of stack %s: %w", stackName, err)
	}
	if runDigest.String() == baseImage {
		res.Unchanged, res.Release = true, live
		out.Log(fmt.Sprintf("%s is already on the current %s run image %s", app, stackName, short(runDigest.String())))
		return res, nil
	}
	rcf, err := run.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("reading the run image of stack %s: %w", stackName, err)
	}
	if rcf.OS != cf.OS || rcf.Architecture != cf.Architecture {
		return res, errkind.Errorf(errkind.Invalid, "the %s run image is %s/%s but %s's image is %s/%s: a rebase cannot change the OS or architecture",
			stackName, rcf.OS, rcf.Architecture, app, cf.OS, cf.Architecture)
	}

	// What changes in the image's OS packages.
	oldInv, err := p.inventory(ctx, live)
	if err != nil {
		return res, err
	}
	newInv := oldInv
	newInv.OS = lockOS(lock)
	newInv.Components = nil
	for _, c := range oldInv.Components {
		if c.Kind != sbom.KindOS {
			newInv.Components = append(newInv.Components, c)
		}
	}
	for _, pk := range lock.Packages {
		newInv.Components = append(newInv.Components, sbom.OSPackage(newInv.OS, pk.Name, pk.Version, pk.Arch, pk.Source, pk.SHA256))
	}
	diff := sbom.Compare(oldInv, newInv, sbom.KindOS)
	res.Added, res.Removed, res.Changed = diff.Added, diff.Removed, diff.Changed
	for _, c := range diff.Changed {
		out.Log(fmt.Sprintf("  %s %s -> %s", c.Name, c.From, c.To))
	}
	for _, c := range diff.Added {
		out.Log(fmt.Sprintf("  warning: adds %s %s", c.Name, c.Version))
	}
	if len(diff.Removed) > 0 && !force {
		names := make([]string, len(diff.Removed))
		for i, c := range diff.Removed {
			names[i] = c.Name
		}
		return res, errkind.WithHint(errkind.Conflict,
			fmt.Errorf("the current %s run image no longer has packages %s's image has: %s", stackName, app, strings.Join(names, ", ")),
			"check that the app does not need them, then rebase with --force; or deploy again to build on the new stack")
	}

	out.Stage("rebasing")
	runLayers, err := run.Layers()
	if err != nil {
		return res, fmt.Errorf("reading the run image of stack %s: %w", stackName, err)
	}
	newLabels := map[string]string{build.LabelBaseImage: runDigest.String(), build.LabelBaseLayers: strconv.Itoa(len(runLayers))}
	for _, k := range []string{stack.LabelLock, stack.LabelDistro} { // the run image's, carried into app images
		if v, ok := rcf.Config.Labels[k]; ok {
			newLabels[k] = v
		}
	}
	rebased, err := image.Rebase(img, n, run, newLabels, p.cfg.Now())
	if err != nil {
		return res, fmt.Errorf("rebasing release %d of %s: %w", live.Number, app, err)
	}
	nd, err := p.images.Put(rebased, "noops.rebase/"+app+":"+runDigest.Hex[:16])
	if err != nil {
		return res, diskErr("storing the rebased image", err)
	}
	newInv.Image, newInv.Created = nd.String(), p.cfg.Now()
	inv, err := sbom.Encode(newInv)
	if err != nil {
		return res, fmt.Errorf("encoding the inventory: %w", err)
	}
	if err := p.writeSBOM(nd, inv); err != nil {
		return res, err
	}
	lockDigest, _ := lock.Digest()
	rel, err := p.store.CreateRelease(ctx, store.Release{App: app, Image: nd.String(), SourceDigest: live.SourceDigest,
		Buildpack: live.Buildpack, Config: live.Config, Env: live.Env, SBOM: inv, Created: p.cfg.Now(), Status: store.StatusPending,
		Reason: fmt.Sprintf("rebase of %d onto stack %s (%s)", live.Number, stackName, short(lockDigest))})
	if err != nil {
		return res, err
	}
	out.Log(fmt.Sprintf("release %d: image %s, app layers unchanged", rel.Number, nd))
	out.Stage("rolling-out")
	if err := p.super.Rollout(ctx, rel, a.Replicas, out.Log); err != nil {
		return res, err
	}
	rel.Status = store.StatusLive
	p.mark(ctx, app, store.KindRebase, fmt.Sprintf("release %d is live: %s", rel.Number, rel.Reason))
	res.Release = rel
	p.kickHygiene()
	return res, nil
}

// inventory returns a release's recorded inventory.
func (p *Plane) inventory(ctx context.Context, rel store.Release) (sbom.Inventory, error) {
	b, err := p.store.ReleaseSBOM(ctx, rel.App, rel.Number)
	if err != nil {
		return sbom.Inventory{}, err
	}
	if b == nil {
		return sbom.Inventory{}, errkind.WithHint(errkind.NotFound, fmt.Errorf("release %d of %s has no SBOM (it was built before noops recorded them)", rel.Number, rel.App),
			"deploy it again")
	}
	return sbom.Decode(b)
}

// short is a digest's first 12 hex digits.
func short(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok {
		d = hex
	}
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
