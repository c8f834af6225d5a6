package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/image"
	"noops/internal/store"
)

// Hygiene's defaults.
const (
	DefaultKeepReleases  = 10      // newest releases kept per app, besides the live one
	DefaultBuildCacheMax = 5 << 30 // bytes of build caches, all apps together
)

// HygieneOptions bound what Hygiene keeps; zero values are the defaults.
type HygieneOptions struct {
	KeepReleases  int           // newest releases kept per app; 0: DefaultKeepReleases
	BuildCacheMax int64         // bytes the build caches may use; 0: DefaultBuildCacheMax
	Grace         time.Duration // images and blobs younger than this stay; 0: image.DefaultGrace
}

// HygieneReport says what Hygiene did.
type HygieneReport struct {
	Releases map[string][]int  // releases deleted, per app
	Skipped  map[string]string // apps whose releases were left alone this time, and why
	Images   image.GCReport    // what the image store's collection removed
	SBOMs    int               // inventories removed with their images
	Caches   image.PruneReport // what trimming the build caches did
}

// hygieneKey is what Hygiene claims, so that two runs never overlap; it
// cannot be an app's name.
const hygieneKey = "the image store"

// collector is the image store's collection, which the image store has
// beside what Images asks for.
type collector interface {
	GC(ctx context.Context, roots func(context.Context) (image.Roots, error), o image.GCOptions) (image.GCReport, error)
}

// Hygiene runs HygieneWith with the configured bounds.
func (p *Plane) Hygiene(ctx context.Context) (HygieneReport, error) {
	return p.HygieneWith(ctx, p.cfg.Hygiene)
}

// HygieneWith keeps the data folder from growing without bound:
//
//  1. For each app, it deletes the releases beyond the newest
//     o.KeepReleases, except the live one, a pending one (a rollout is
//     using it) and any that sandboxes still run. An app with a deploy,
//     rollback, rebase or other change in progress is skipped and named
//     in Skipped; the store refuses, in the same transaction as the
//     delete, a release that became live, pending or used meanwhile.
//  2. It collects the image store's garbage, keeping the image of every
//     release still recorded (so every sandbox's: each sandbox record
//     names a release, which the store does not delete while it does),
//     every image named by a reference outside the build and rebase
//     namespaces (the stacks' current and locked images), the build and
//     rebase references of apps busy now, and whatever is younger than
//     o.Grace. A build-reuse reference whose image is a kept release's
//     stays; the others go, so that source deployed again is rebuilt.
//  3. It trims the build caches (DATA/cache/<app>) to o.BuildCacheMax,
//     least recently built first, and removes the caches of apps that
//     no longer exist; an app being built keeps its cache.
//
// When nothing is to be done it reads the state, the kept images'
// manifests and configs and the folder listings, and walks no build
// cache that did not change since the last run. Two runs never overlap:
// the second is refused (errkind.Conflict).
func (p *Plane) HygieneWith(ctx context.Context, o HygieneOptions) (HygieneReport, error) {
	rep := HygieneReport{Releases: map[string][]int{}, Skipped: map[string]string{}}
	if o.KeepReleases <= 0 {
		o.KeepReleases = DefaultKeepReleases
	}
	if o.BuildCacheMax <= 0 {
		o.BuildCacheMax = DefaultBuildCacheMax
	}
	done, err := p.claim(hygieneKey, "a cleanup")
	if err != nil {
		return rep, err
	}
	defer done()

	apps, err := p.store.ListApps(ctx)
	if err != nil {
		return rep, err
	}
	busy := p.busyApps()
	for _, a := range apps {
		if what, ok := busy[a.Name]; ok {
			rep.Skipped[a.Name] = what + " is in progress"
			continue
		}
		nums, err := p.pruneReleases(ctx, a, o.KeepReleases)
		switch {
		case errkind.Is(err, errkind.Conflict), errkind.Is(err, errkind.NotFound):
			rep.Skipped[a.Name] = err.Error() // it changed meanwhile: next time
		case err != nil:
			return rep, fmt.Errorf("deleting old releases of %s: %w", a.Name, err)
		case len(nums) > 0:
			rep.Releases[a.Name] = nums
		}
	}

	if gc, ok := p.images.(collector); ok {
		rep.Images, err = gc.GC(ctx, p.gcRoots, image.GCOptions{Grace: o.Grace, Now: p.cfg.Now})
		if err != nil {
			return rep, err
		}
		for _, d := range rep.Images.Images {
			err := os.Remove(p.sbomPath(d))
			if err == nil {
				rep.SBOMs++
			} else if !errors.Is(err, fs.ErrNotExist) {
				p.log.Warn("removing the SBOM of a collected image", "image", d, "err", err)
			}
		}
	}

	known := map[string]bool{}
	for _, a := range apps {
		known[a.Name] = true
	}
	cache := filepath.Join(p.cfg.Data, "cache")
	rep.Caches, err = image.PruneDirs(cache, image.PruneOptions{
		Max:  o.BuildCacheMax,
		Drop: func(name string) bool { return !known[name] },
		Claim: func(name string) (func(), bool) {
			done, err := p.claim(name, "a build cache trim")
			return done, err == nil
		},
		Memo: filepath.Join(cache, ".sizes.json"),
	})
	return rep, err
}

// busyApps returns the apps with a change in progress, and what it is.
func (p *Plane) busyApps() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.busy)
}

// pruneReleases deletes app a's releases beyond the newest keep that may
// go, and returns their numbers.
func (p *Plane) pruneReleases(ctx context.Context, a store.App, keep int) ([]int, error) {
	rels, err := p.store.ListReleases(ctx, a.Name) // newest first
	if err != nil || len(rels) <= keep {
		return nil, err
	}
	boxes, err := p.store.ListSandboxes(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	running := map[int]bool{}
	for _, b := range boxes {
		running[b.Release] = true
	}
	var del []int
	for _, r := range rels[keep:] {
		if r.Number == a.Release || r.Status == store.StatusLive || r.Status == store.StatusPending || running[r.Number] {
			continue
		}
		del = append(del, r.Number)
	}
	if len(del) == 0 {
		return nil, nil
	}
	if err := p.store.DeleteReleases(ctx, a.Name, del); err != nil {
		return nil, err
	}
	return del, nil
}

// gcRoots says what the image collection keeps. It runs under the image
// store's collection lock, which Put and Resolve wait for, and reads the
// busy apps before the releases: a deploy that claimed its app before
// that read keeps its build references; one that finished before it has
// recorded its release, whose image the store read then includes; one
// that claims after it resolves references only once the collection is
// over.
func (p *Plane) gcRoots(ctx context.Context) (image.Roots, error) {
	busy := p.busyApps()
	apps, err := p.store.ListApps(ctx)
	if err != nil {
		return image.Roots{}, err
	}
	var keep []v1.Hash
	for _, a := range apps {
		rels, err := p.store.ListReleases(ctx, a.Name)
		if errkind.Is(err, errkind.NotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return image.Roots{}, err
		}
		for _, r := range rels {
			d, err := v1.NewHash(r.Image)
			if err != nil {
				p.log.Warn("release with a malformed image digest", "app", r.App, "release", r.Number, "image", r.Image)
				continue
			}
			keep = append(keep, d)
		}
	}
	return image.Roots{Images: keep, Refs: func(ref string) bool {
		for _, ns := range []string{"noops.build/", "noops.rebase/"} {
			if rest, ok := strings.CutPrefix(ref, ns); ok {
				app, _, _ := strings.Cut(rest, ":")
				_, b := busy[app]
				return b
			}
		}
		return true // stack images, and anything a later feature names
	}}, nil
}
