// Package stack assembles the images apps are built on and run on from
// Debian packages, distroless style: a stack's packages are resolved from
// the machine's configured apt sources (through a private apt state that
// never touches the host's), pinned in a lock, downloaded and checked, and
// their data merged into one deterministic layer with no shell and no
// package manager in run images. Maintainer scripts never run; what they
// would have made (users, the CA bundle) is written directly.
//
// A Manager owns one stacks folder:
//
//	DIR/apt/       private apt configuration, lists and caches
//	DIR/debs/      downloaded .deb files, checked by SHA-256 (a cache)
//	DIR/locks/     <stack>-<kind>.json: the exact package versions
//	DIR/unpacked/  each package's data as layers use it (a cache)
//	DIR/tmp/       work folders, emptied by Open
//
// Two Managers on one folder at once are not supported (the server holds
// the data folder's lock); within a Manager one build per stack runs at a
// time.
package stack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/image"
)

// Labels of stack images.
const (
	LabelStack  = "dev.noops.stack"
	LabelKind   = "dev.noops.stack.kind"
	LabelLock   = "dev.noops.stack.lock" // the lock's Digest
	LabelDistro = "dev.noops.stack.distro"
)

// Options configure a Manager.
type Options struct {
	Dir    string       // the stacks folder, DATA/stacks
	Images *image.Store // where stack images go
	Logger *slog.Logger // nil: no logs
	// Arch is the Debian architecture of the images ("amd64", "arm64");
	// "" is the machine's.
	Arch string
	Now  func() time.Time // nil: time.Now
	// Debs is the folder of downloaded packages; "" is DIR/debs. Several
	// Managers (tests) may share one.
	Debs string
	// AptEtc is the apt configuration folder whose sources are used;
	// "" is /etc/apt.
	AptEtc string
}

// Manager builds, updates and lists the built-in stacks.
type Manager struct {
	dir    string
	images *image.Store
	log    *slog.Logger
	arch   string
	now    func() time.Time
	cache  debCache
	apt    *apt

	// unpacked is held for reading while a build uses the unpacked
	// cache, and for writing while it is pruned.
	unpacked unpackedCache
	unpackMu sync.RWMutex

	mu map[string]*sync.Mutex // per stack, held while building it
}

// Info describes a stack and its current images.
type Info struct {
	Name  string   `json:"name"`
	Run   ImageRef `json:"run"`
	Build ImageRef `json:"build"` // zero for a stack without a build image
}

// ImageRef describes one stack image; it is zero when the image was never
// built.
type ImageRef struct {
	Digest   v1.Hash `json:"digest"`
	Lock     string  `json:"lock"`     // the lock's Digest
	Packages int     `json:"packages"` // how many Debian packages it holds
	Size     int64   `json:"size"`     // compressed layer bytes
	// Created is when its packages were resolved (its lock's Created),
	// which is also the image's creation time: one lock, one image digest.
	Created time.Time `json:"created"`
}

// Update is the outcome of Manager.Update: the stack's new images and
// which packages changed in each.
type Update struct {
	Info
	Run   []Change `json:"run_changes"`
	Build []Change `json:"build_changes"`
}

// Open opens the stacks folder o.Dir, creating it when missing. It does
// not need apt: a machine without it fails only when a stack is built.
func Open(o Options) (*Manager, error) {
	if o.Dir == "" || o.Images == nil {
		return nil, errkind.Errorf(errkind.Invalid, "opening stacks: a folder and an image store are required")
	}
	arch := o.Arch
	if arch == "" {
		arch = debianArch(runtime.GOARCH)
	}
	if _, ok := ociArchs[arch]; !ok {
		return nil, errkind.Errorf(errkind.Invalid, "opening stacks: architecture %q is not supported (amd64, arm64)", arch)
	}
	m := &Manager{dir: o.Dir, images: o.Images, log: o.Logger, arch: arch, now: o.Now,
		cache: debCache{dir: o.Debs}, unpacked: unpackedCache{dir: filepath.Join(o.Dir, "unpacked")},
		mu: map[string]*sync.Mutex{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.cache.dir == "" {
		m.cache.dir = filepath.Join(o.Dir, "debs")
	}
	etc := o.AptEtc
	if etc == "" {
		etc = "/etc/apt"
	}
	m.apt = &apt{dir: filepath.Join(o.Dir, "apt"), arch: arch, hostEtc: etc, log: m.log}
	for _, d := range definitions {
		m.mu[d.name] = &sync.Mutex{}
	}
	for _, d := range []string{o.Dir, filepath.Join(o.Dir, "locks"), m.cache.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("opening stacks %s: %w", o.Dir, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(o.Dir, "tmp")); err != nil {
		return nil, fmt.Errorf("opening stacks %s: clearing tmp: %w", o.Dir, err)
	}
	if err := os.Mkdir(filepath.Join(o.Dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("opening stacks %s: %w", o.Dir, err)
	}
	if err := m.cache.removeStaleTemps(m.now()); err != nil {
		return nil, fmt.Errorf("opening stacks %s: %w", o.Dir, err)
	}
	return m, nil
}

// ociArchs maps the supported Debian architectures to OCI's names.
var ociArchs = map[string][2]string{"amd64": {"amd64", ""}, "arm64": {"arm64", "v8"}}

func debianArch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	}
	return goarch
}

// Arch is the Debian architecture of the Manager's images.
func (m *Manager) Arch() string { return m.arch }

func (m *Manager) definition(name string) (definition, error) {
	d, ok := lookup(name)
	if !ok {
		return d, errkind.Errorf(errkind.NotFound, "there is no stack %q (stacks: %s)", name, strings.Join(Names(), ", "))
	}
	return d, nil
}

func kinds(d definition) []string {
	if d.build == "" {
		return []string{KindRun}
	}
	return []string{KindRun, KindBuild}
}

// Lock returns the lock of a stack's run or build image; errkind.NotFound
// when the stack or kind does not exist or was never built.
func (m *Manager) Lock(name, kind string) (Lock, error) {
	d, err := m.definition(name)
	if err != nil {
		return Lock{}, err
	}
	if kind != KindRun && kind != KindBuild {
		return Lock{}, errkind.Errorf(errkind.Invalid, "stack image kind %q is neither %s nor %s", kind, KindRun, KindBuild)
	}
	if d.packages(kind) == "" {
		return Lock{}, errkind.Errorf(errkind.NotFound, "stack %s has no %s image", name, kind)
	}
	return readLock(m.dir, name, kind)
}

// List describes every stack, built or not, in order.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	var out []Info
	for _, d := range definitions {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := m.info(d)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func (m *Manager) info(d definition) (Info, error) {
	info := Info{Name: d.name}
	for _, kind := range kinds(d) {
		ref, err := m.current(d.name, kind)
		if err != nil {
			return info, err
		}
		if kind == KindRun {
			info.Run = ref
		} else {
			info.Build = ref
		}
	}
	return info, nil
}

// current describes the image the stack's current ref names.
func (m *Manager) current(name, kind string) (ImageRef, error) {
	d, ok, err := m.images.Resolve(currentRef(name, kind))
	if err != nil || !ok {
		return ImageRef{}, err
	}
	img, err := m.images.Get(d)
	if errkind.Is(err, errkind.NotFound) {
		return ImageRef{}, nil
	}
	if err != nil {
		return ImageRef{}, err
	}
	return describe(img, m.dir, name, kind)
}

func describe(img v1.Image, dir, name, kind string) (ImageRef, error) {
	d, err := img.Digest()
	if err != nil {
		return ImageRef{}, fmt.Errorf("reading stack image %s %s: %w", name, kind, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return ImageRef{}, fmt.Errorf("reading stack image %s %s: %w", name, kind, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return ImageRef{}, fmt.Errorf("reading stack image %s %s: %w", name, kind, err)
	}
	ref := ImageRef{Digest: d, Lock: cf.Config.Labels[LabelLock], Created: cf.Created.Time}
	for _, l := range m.Layers {
		ref.Size += l.Size
	}
	lock, err := readLock(dir, name, kind)
	if err != nil && !errkind.Is(err, errkind.NotFound) {
		return ImageRef{}, err
	}
	if ld, err := lock.Digest(); err == nil && ld == ref.Lock {
		ref.Packages = len(lock.Packages)
	}
	return ref, nil
}

// Image references of stack images in the image store: the current one,
// and one per lock, so that an app's older stack image stays named.
func currentRef(name, kind string) string { return "noops.stack/" + name + "/" + kind + ":current" }

func lockRef(name, kind, lockDigest string) string {
	return "noops.stack/" + name + "/" + kind + ":" + strings.Replace(lockDigest, ":", "-", 1)
}

// RunImage returns the stack's run image and its lock, building it (and
// resolving its lock, when there is none) on first use.
func (m *Manager) RunImage(ctx context.Context, name string) (v1.Image, Lock, error) {
	return m.image(ctx, name, KindRun)
}

// BuildImage returns the stack's build image and its lock, building it on
// first use; errkind.NotFound for a stack without one (static).
func (m *Manager) BuildImage(ctx context.Context, name string) (v1.Image, Lock, error) {
	return m.image(ctx, name, KindBuild)
}

func (m *Manager) image(ctx context.Context, name, kind string) (v1.Image, Lock, error) {
	d, err := m.definition(name)
	if err != nil {
		return nil, Lock{}, err
	}
	if d.packages(kind) == "" {
		return nil, Lock{}, errkind.Errorf(errkind.NotFound, "stack %s has no %s image: its apps build without stack tools", name, kind)
	}
	mu := m.mu[name]
	mu.Lock()
	defer mu.Unlock()
	b, err := m.ensure(ctx, d, kind, nil, false, &indexOnce{})
	if err != nil {
		return nil, Lock{}, err
	}
	return b.img, b.lock, nil
}

// Build builds the stack's images from their locks, resolving and writing
// a lock where there is none, and writes progress lines to progress.
func (m *Manager) Build(ctx context.Context, name string, progress io.Writer) (Info, error) {
	d, err := m.definition(name)
	if err != nil {
		return Info{}, err
	}
	mu := m.mu[name]
	mu.Lock()
	defer mu.Unlock()
	ix := &indexOnce{}
	for _, kind := range kinds(d) {
		if _, err := m.ensure(ctx, d, kind, progress, true, ix); err != nil {
			return Info{}, err
		}
	}
	m.pruneUnpacked()
	return m.info(d)
}

// Update refreshes the package lists, resolves the stack's packages to the
// archive's newest versions and, where they changed, builds new images and
// writes new locks. It returns the changes; with none, the images and
// locks stay as they were.
func (m *Manager) Update(ctx context.Context, name string, progress io.Writer) (Update, error) {
	d, err := m.definition(name)
	if err != nil {
		return Update{}, err
	}
	mu := m.mu[name]
	mu.Lock()
	defer mu.Unlock()
	progress = orDiscard(progress)
	fmt.Fprintf(progress, "%s: updating package lists\n", name)
	if err := m.apt.update(ctx); err != nil {
		return Update{}, err
	}
	ix := &indexOnce{}
	var up Update
	for _, kind := range kinds(d) {
		changes, err := m.update(ctx, d, kind, progress, ix)
		if err != nil {
			return Update{}, err
		}
		if kind == KindRun {
			up.Run = changes
		} else {
			up.Build = changes
		}
	}
	m.pruneUnpacked()
	up.Info, err = m.info(d)
	return up, err
}
