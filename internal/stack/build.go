package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"noops/internal/errkind"
	"noops/internal/image"
)

// built is a stack image in the image store and its lock.
type built struct {
	img  v1.Image
	lock Lock
}

// indexOnce reads the package index at most once per Build or Update.
type indexOnce struct{ ix *Index }

func (o *indexOnce) get(ctx context.Context, a *apt) (*Index, error) {
	if o.ix != nil {
		return o.ix, nil
	}
	ix, err := a.index(ctx)
	if err != nil {
		return nil, err
	}
	o.ix = ix
	return ix, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// ensure returns the stack image of kind, from its lock when there is one
// (reusing the stored image unless rebuild), else from a new resolution
// whose lock it writes. The caller holds the stack's mutex.
func (m *Manager) ensure(ctx context.Context, d definition, kind string, progress io.Writer, rebuild bool, ix *indexOnce) (built, error) {
	progress = orDiscard(progress)
	lock, err := readLock(m.dir, d.name, kind)
	if errkind.Is(err, errkind.NotFound) {
		res, err := m.resolve(ctx, d, kind, progress, ix)
		if err != nil {
			return built{}, err
		}
		return m.assembleAndCommit(ctx, d, m.newLock(d, kind, res), progress, false, true)
	}
	if err != nil {
		return built{}, err
	}
	if err := m.checkLock(d, kind, lock); err != nil {
		return built{}, err
	}
	if !rebuild {
		b, ok, err := m.stored(lock)
		if err != nil {
			return built{}, err
		}
		if ok {
			if _, err := m.images.Put(b.img, currentRef(d.name, kind)); err != nil {
				return built{}, fmt.Errorf("naming stack %s %s: %w", d.name, kind, err)
			}
			return b, nil
		}
	}
	ld, err := lock.Digest()
	if err != nil {
		return built{}, err
	}
	fmt.Fprintf(progress, "%s %s: %d packages pinned by lock %s\n", d.name, kind, len(lock.Packages), ld)
	return m.assembleAndCommit(ctx, d, lock, progress, true, false)
}

// update resolves the stack image of kind anew and builds it when its
// packages changed, returning the changes.
func (m *Manager) update(ctx context.Context, d definition, kind string, progress io.Writer, ix *indexOnce) ([]Change, error) {
	res, err := m.resolve(ctx, d, kind, progress, ix)
	if err != nil {
		return nil, err
	}
	old, err := readLock(m.dir, d.name, kind)
	switch {
	case errkind.Is(err, errkind.NotFound), errkind.Is(err, errkind.Invalid):
		if errkind.Is(err, errkind.Invalid) {
			m.log.Warn("replacing an unreadable stack lock", "stack", d.name, "kind", kind, "err", err)
		}
		old = Lock{}
	case err != nil:
		return nil, err
	case old.Arch == m.arch && old.Requested == d.packages(kind) && samePackages(old.Packages, res.Packages):
		fmt.Fprintf(progress, "%s %s: no package changed\n", d.name, kind)
		_, err := m.ensure(ctx, d, kind, progress, false, ix)
		return nil, err
	}
	if _, err := m.assembleAndCommit(ctx, d, m.newLock(d, kind, res), progress, false, true); err != nil {
		return nil, err
	}
	return diff(old.Packages, res.Packages), nil
}

func (m *Manager) newLock(d definition, kind string, res Resolution) Lock {
	return Lock{Stack: d.name, Kind: kind, Arch: m.arch, Created: m.now().UTC().Truncate(time.Second),
		Requested: d.packages(kind), Packages: res.Packages, Excluded: res.Excluded}
}

// checkLock refuses a lock that no longer describes the stack.
func (m *Manager) checkLock(d definition, kind string, l Lock) error {
	hint := fmt.Sprintf("run `noops stack update %s`", d.name)
	if l.Arch != m.arch {
		return errkind.WithHint(errkind.Conflict, fmt.Errorf("stack %s %s: the lock is for %s, this machine builds %s", d.name, kind, l.Arch, m.arch), hint)
	}
	if l.Requested != d.packages(kind) {
		return errkind.WithHint(errkind.Conflict, fmt.Errorf("stack %s %s: the lock was resolved for packages %q, the stack now has %q", d.name, kind, l.Requested, d.packages(kind)), hint)
	}
	return nil
}

// stored returns the image built from lock, if the store has it.
func (m *Manager) stored(lock Lock) (built, bool, error) {
	ld, err := lock.Digest()
	if err != nil {
		return built{}, false, err
	}
	dg, ok, err := m.images.Resolve(lockRef(lock.Stack, lock.Kind, ld))
	if err != nil || !ok {
		return built{}, false, err
	}
	img, err := m.images.Get(dg)
	if errkind.Is(err, errkind.NotFound) {
		return built{}, false, nil
	}
	if err != nil {
		return built{}, false, err
	}
	return built{img: img, lock: lock}, true, nil
}

// resolve computes the packages of the stack image of kind from the
// archive's candidates.
func (m *Manager) resolve(ctx context.Context, d definition, kind string, progress io.Writer, ix *indexOnce) (Resolution, error) {
	fmt.Fprintf(progress, "%s %s: resolving %s\n", d.name, kind, d.packages(kind))
	release, err := m.apt.ensureLists(ctx)
	if err != nil {
		return Resolution{}, err
	}
	x, err := ix.get(ctx, m.apt)
	release()
	if err != nil {
		return Resolution{}, err
	}
	res, err := x.Resolve(d.packages(kind), excluded(kind))
	if err != nil {
		return Resolution{}, errkind.WithHint(errkind.Of(err), fmt.Errorf("resolving stack %s %s: %w", d.name, kind, err),
			"check the machine's apt sources; `noops stack update` refreshes the package lists")
	}
	fmt.Fprintf(progress, "%s %s: %d packages, %d left out\n", d.name, kind, len(res.Packages), len(res.Excluded))
	return res, nil
}

// assembleAndCommit builds the image of lock, names it after its lock,
// writes the lock when write, and makes it the stack's current image.
func (m *Manager) assembleAndCommit(ctx context.Context, d definition, lock Lock, progress io.Writer, pinned, write bool) (built, error) {
	b, err := m.assemble(ctx, d, lock, progress, pinned)
	if err != nil {
		return built{}, err
	}
	if write {
		if err := writeLock(m.dir, b.lock); err != nil {
			return built{}, err
		}
	}
	if _, err := m.images.Put(b.img, currentRef(d.name, lock.Kind)); err != nil {
		return built{}, fmt.Errorf("storing stack %s %s: %w", d.name, lock.Kind, err)
	}
	return b, nil
}

// assemble downloads the lock's packages, merges them into one layer and
// stores the image. pinned says that the lock came from its file: a
// package missing from the cache must then still be in the archive, with
// the same SHA-256.
func (m *Manager) assemble(ctx context.Context, d definition, lock Lock, progress io.Writer, pinned bool) (built, error) {
	what := d.name + " " + lock.Kind
	if err := tools("dpkg-deb"); err != nil {
		return built{}, err
	}
	if err := m.download(ctx, d, lock, progress, pinned); err != nil {
		return built{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(m.dir, "tmp"), lock.Kind+"-"+d.name+"-")
	if err != nil {
		return built{}, fmt.Errorf("building stack %s: %w", what, err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(progress, "%s: unpacking %d packages\n", what, len(lock.Packages))
	start := time.Now()
	m.unpackMu.RLock()
	defer m.unpackMu.RUnlock()
	parts, err := m.unpacked.unpackAll(ctx, lock.Packages, m.cache)
	m.log.Debug("unpacked stack packages", "stack", d.name, "kind", lock.Kind, "packages", len(parts), "took", time.Since(start))
	if err != nil {
		return built{}, fmt.Errorf("building stack %s: %w", what, err)
	}
	defer closeAll(parts)
	t, err := merge(parts)
	if err == nil {
		err = addSystemFiles(t, parts)
	}
	if err != nil {
		return built{}, fmt.Errorf("building stack %s: %w", what, err)
	}
	dist, err := distro(t)
	if err != nil {
		return built{}, fmt.Errorf("building stack %s: %w", what, err)
	}
	if lock.Distro != "" && lock.Distro != dist {
		return built{}, errkind.WithHint(errkind.Conflict, fmt.Errorf("building stack %s: the lock says %s, its packages are %s", what, lock.Distro, dist),
			fmt.Sprintf("run `noops stack update %s`", d.name))
	}
	lock.Distro = dist
	start = time.Now()
	layer, err := t.write(ctx, filepath.Join(tmp, "layer.tar.gz"))
	if err != nil {
		return built{}, fmt.Errorf("building stack %s: %w", what, err)
	}
	m.log.Debug("wrote stack layer", "stack", d.name, "kind", lock.Kind, "files", len(t), "bytes", layer.size, "took", time.Since(start))
	img, ld, err := m.config(d, lock, layer)
	if err != nil {
		return built{}, fmt.Errorf("building stack %s: %w", what, err)
	}
	start = time.Now()
	dg, err := m.images.Put(img, lockRef(d.name, lock.Kind, ld))
	m.log.Debug("stored stack image", "stack", d.name, "kind", lock.Kind, "took", time.Since(start))
	if err != nil {
		return built{}, fmt.Errorf("storing stack %s: %w", what, err)
	}
	stored, err := m.images.Get(dg)
	if err != nil {
		return built{}, fmt.Errorf("storing stack %s: %w", what, err)
	}
	fmt.Fprintf(progress, "%s: exported %s (%.1f MB compressed)\n", what, dg, float64(layer.size)/1e6)
	return built{img: stored, lock: lock}, nil
}

// download puts the lock's packages in the cache.
func (m *Manager) download(ctx context.Context, d definition, lock Lock, progress io.Writer, pinned bool) error {
	what := d.name + " " + lock.Kind
	missing, err := m.cache.missing(lock.Packages)
	if err != nil {
		return fmt.Errorf("building stack %s: %w", what, err)
	}
	if len(missing) == 0 {
		return nil
	}
	var size int64
	for _, p := range missing {
		size += p.Size
	}
	fmt.Fprintf(progress, "%s: downloading %d packages (%.1f MB)\n", what, len(missing), float64(size)/1e6)
	release, err := m.apt.ensureLists(ctx)
	if err != nil {
		return err
	}
	defer release()
	if pinned {
		if err := m.checkArchive(ctx, d, missing); err != nil {
			return err
		}
	}
	if err := m.apt.fetch(ctx, m.cache, missing); err != nil {
		return fmt.Errorf("building stack %s: %w", what, err)
	}
	return nil
}

// checkArchive checks that the archive still has the pinned packages.
func (m *Manager) checkArchive(ctx context.Context, d definition, pkgs []Package) error {
	recs, err := m.apt.show(ctx, pkgs)
	if err != nil {
		return fmt.Errorf("building stack %s: %w", d.name, err)
	}
	hint := fmt.Sprintf("run `noops stack update %s`", d.name)
	for _, p := range pkgs {
		rec, ok := recs[p.Name]
		if !ok {
			return errkind.WithHint(errkind.Unavailable,
				fmt.Errorf("building stack %s: its lock pins %s %s, which the package archive no longer has", d.name, p.Name, p.Version), hint)
		}
		if rec.SHA256 != p.SHA256 {
			return errkind.WithHint(errkind.Conflict,
				fmt.Errorf("building stack %s: the archive's %s %s has SHA-256 %s, its lock pins %s", d.name, p.Name, p.Version, rec.SHA256, p.SHA256), hint)
		}
	}
	return nil
}

// config makes the image of layer with the stack's configuration and
// labels, returning it and the lock's digest.
func (m *Manager) config(d definition, lock Lock, layer v1.Layer) (v1.Image, string, error) {
	ld, err := lock.Digest()
	if err != nil {
		return nil, "", err
	}
	cfg := v1.Config{
		Env:        append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}, d.env(lock.Kind)...),
		User:       image.NonRootUser,
		WorkingDir: image.AppDir,
		Labels: map[string]string{
			LabelStack: d.name, LabelKind: lock.Kind, LabelLock: ld, LabelDistro: lock.Distro,
		},
	}
	img, err := image.Assemble(cfg, lock.Created, layer)
	if err != nil {
		return nil, "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.Variant = ociArchs[m.arch][0], ociArchs[m.arch][1]
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, "", err
	}
	return img, ld, nil
}
