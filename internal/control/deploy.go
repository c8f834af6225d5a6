package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/gateway/policy"
	"noops/internal/sbom"
	"noops/internal/source"
	"noops/internal/spec"
	"noops/internal/store"
	"noops/internal/supervisor"
)

// Images is the image store as the control plane uses it.
type Images interface {
	Put(img v1.Image, ref string) (v1.Hash, error)
	Resolve(ref string) (v1.Hash, bool, error)
	Get(d v1.Hash) (v1.Image, error)
	Unpack(ctx context.Context, d v1.Hash) ([]string, error)
}

// Progress receives a deploy's stages and log lines as they happen.
type Progress interface {
	Stage(name string)
	Log(line string)
}

// DeployRequest is an uploaded app.
type DeployRequest struct {
	App     string
	Archive io.Reader // gzipped tar as source.Pack writes it
	SHA256  string    // hex digest of the archive, checked after receipt; "" skips the check
}

// Deploy receives an archive, builds it (or reuses the image of identical
// source), records an immutable release and rolls it out. Nothing changes
// unless the new release is healthy: a failed build or rollout leaves the
// live release serving.
func (p *Plane) Deploy(ctx context.Context, req DeployRequest, out Progress) (store.Release, error) {
	var rel store.Release
	if err := spec.ValidAppName(req.App); err != nil {
		return rel, err
	}
	done, err := p.claim(req.App, "a deploy")
	if err != nil {
		return rel, err
	}
	defer done()

	work, err := os.MkdirTemp(filepath.Join(p.cfg.Data, "tmp"), "deploy-"+req.App+"-")
	if err != nil {
		return rel, diskErr("creating a work folder", err)
	}
	defer os.RemoveAll(work)
	out.Stage("receiving")
	src := filepath.Join(work, "src")
	if err := receive(req, work, src); err != nil {
		return rel, err
	}
	m, err := spec.Load(src)
	if err != nil {
		return rel, err
	}
	cfg, err := releaseConfig(req.App, src, m)
	if err != nil {
		return rel, err
	}

	app, created, err := p.ensureApp(ctx, req.App, m)
	if err != nil {
		return rel, err
	}
	ok := false
	defer func() {
		if created && !ok { // a first deploy that fails leaves no app behind
			if err := p.store.DeleteApp(context.WithoutCancel(ctx), req.App); err != nil {
				p.log.Warn("removing app after failed first deploy", "app", req.App, "err", err)
			}
		}
	}()

	b, err := p.build(ctx, req.App, src, m, out)
	if err != nil {
		return rel, err
	}
	rel, err = p.releaseAndRollout(ctx, app, newRelease{image: b.image, sourceDigest: b.sourceDigest, buildpack: b.buildpack,
		sbom: b.sbom, cfg: cfg, reason: "deploy"}, out)
	if err != nil {
		ok = !created
		return rel, err
	}
	ok = true
	p.kickHygiene()
	return rel, nil
}

// newRelease is what a release is made of, besides the app's config vars.
type newRelease struct {
	image        v1.Hash
	sourceDigest string
	buildpack    string
	sbom         []byte // the inventory (sbom.Encode)
	cfg          spec.Config
	reason       string
}

// releaseAndRollout records a release of app a and rolls it out behind
// health checks. It carries the newest release's config vars forward, and
// a `noops scale` of the live release sticks until the run configuration
// changes its replicas. On a failed rollout the release is marked failed
// and the live one keeps serving.
func (p *Plane) releaseAndRollout(ctx context.Context, a store.App, nr newRelease, out Progress) (store.Release, error) {
	var rel store.Release
	prev, err := p.store.ListReleases(ctx, a.Name)
	if err != nil {
		return rel, err
	}
	env := map[string]string{}
	replicas := nr.cfg.Replicas
	if len(prev) > 0 {
		env = prev[0].Env
		if a.Release != 0 {
			if run, err := supervisor.RunConfig(prev[0]); err == nil && run.Replicas == nr.cfg.Replicas {
				replicas = a.Replicas // a `noops scale` sticks until the run config changes replicas
			}
		}
	}
	cfg, err := json.Marshal(nr.cfg)
	if err != nil {
		return rel, fmt.Errorf("encoding run config: %w", err)
	}
	out.Stage("releasing")
	rel, err = p.store.CreateRelease(ctx, store.Release{App: a.Name, Image: nr.image.String(), SourceDigest: nr.sourceDigest,
		Buildpack: nr.buildpack, Config: cfg, Env: env, SBOM: nr.sbom, Created: p.cfg.Now(), Status: store.StatusPending, Reason: nr.reason})
	if err != nil {
		return rel, err
	}
	out.Log(fmt.Sprintf("release %d: image %s", rel.Number, nr.image))
	out.Stage("rolling-out")
	if err := p.super.Rollout(ctx, rel, replicas, out.Log); err != nil {
		return rel, err
	}
	rel.Status = store.StatusLive
	p.mark(ctx, a.Name, store.KindDeploy, fmt.Sprintf("release %d is live (%s, image %s)", rel.Number, nr.buildpack, short(nr.image.String())))
	return rel, nil
}

func (p *Plane) ensureApp(ctx context.Context, name string, m *spec.Manifest) (store.App, bool, error) {
	a, err := p.store.GetApp(ctx, name)
	if err == nil {
		return a, false, nil
	}
	if !errkind.Is(err, errkind.NotFound) {
		return a, false, err
	}
	a, err = p.store.CreateApp(ctx, store.App{Name: name, Created: p.cfg.Now(), Replicas: m.Run.Replicas})
	return a, err == nil, err
}

// built is the image a deploy releases.
type built struct {
	image        v1.Hash
	sourceDigest string
	buildpack    string
	sbom         []byte // the inventory (sbom.Encode); nil for images built before SBOMs
}

// build returns the image for src: the one built before from identical
// source, settings and stacks, or a new build.
func (p *Plane) build(ctx context.Context, app, src string, m *spec.Manifest, out Progress) (built, error) {
	sourceDigest, err := build.SourceDigest(src)
	if err != nil {
		return built{}, err
	}
	key := buildKey(sourceDigest, stacksFingerprint(p.stacks), m)
	ref := "noops.build/" + app + ":" + key
	if d, found, err := p.images.Resolve(ref); err != nil {
		return built{}, err
	} else if found {
		out.Log("source, build settings and stacks unchanged: reusing image " + d.String())
		bp, err := p.imageBuildpack(d)
		if err != nil {
			return built{}, err
		}
		return built{image: d, sourceDigest: sourceDigest, buildpack: bp, sbom: p.readSBOM(d)}, nil
	}
	cache := filepath.Join(p.cfg.Data, "cache", app)
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return built{}, diskErr("creating build cache", err)
	}
	lw := &lineWriter{fn: out.Log}
	res, err := build.Build(ctx, build.Request{App: app, Src: src, Cache: cache, Env: m.Build.Env, Port: m.Run.Port,
		Stacks: buildStacks{stacks: p.stacks, images: p.images}, Runner: p.runner, Tools: filepath.Join(p.cfg.Data, "tools"), Shared: p.sharedCache(),
		Log: lw, Stage: out.Stage, Now: p.cfg.Now()})
	lw.Flush()
	if err != nil {
		return built{}, err
	}
	defer res.Close()
	d, err := p.images.Put(res.Image, ref)
	if err != nil {
		return built{}, diskErr("storing image", err)
	}
	res.Inventory.Image = d.String()
	inv, err := sbom.Encode(res.Inventory)
	if err != nil {
		return built{}, fmt.Errorf("encoding the inventory: %w", err)
	}
	if err := p.writeSBOM(d, inv); err != nil {
		return built{}, err
	}
	return built{image: d, sourceDigest: res.SourceDigest, buildpack: res.Buildpack, sbom: inv}, nil
}

// sbomPath is where an image's inventory is kept beside the image store,
// so that a deploy that reuses the image gives its release the same one.
func (p *Plane) sbomPath(d v1.Hash) string {
	return filepath.Join(p.cfg.Data, "sbom", d.Algorithm+"-"+d.Hex+".json")
}

func (p *Plane) writeSBOM(d v1.Hash, b []byte) error {
	path := p.sbomPath(d)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return diskErr("keeping the SBOM", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return diskErr("keeping the SBOM", err)
	}
	return os.Rename(tmp, path)
}

func (p *Plane) readSBOM(d v1.Hash) []byte {
	b, err := os.ReadFile(p.sbomPath(d))
	if err != nil {
		return nil
	}
	return b
}

func (p *Plane) imageBuildpack(d v1.Hash) (string, error) {
	img, err := p.images.Get(d)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("reading config of %s: %w", d, err)
	}
	return cf.Config.Labels[build.LabelBuildpack], nil
}

// buildKey names everything a build's output depends on.
func buildKey(sourceDigest, base string, m *spec.Manifest) string {
	h := sha256.New()
	fmt.Fprintf(h, "v2\n%q\n%q\nport=%d\n", sourceDigest, base, m.Run.Port)
	for _, k := range sortedKeys(m.Build.Env) {
		fmt.Fprintf(h, "env %q=%q\n", k, m.Build.Env[k]) // quoted: a value cannot fake another entry
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// receive stores the upload, checks its digest and unpacks it into src.
func receive(req DeployRequest, work, src string) error {
	archive := filepath.Join(work, "source.tar.gz")
	f, err := os.OpenFile(archive, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return diskErr("receiving upload", err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), req.Archive)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if isDiskFull(err) {
			return diskErr("receiving upload", err)
		}
		return errkind.WithHint(errkind.Invalid, fmt.Errorf("receiving upload: %w (the client may have disconnected); nothing was changed", err), "run the deploy again")
	}
	if got := hex.EncodeToString(h.Sum(nil)); req.SHA256 != "" && !strings.EqualFold(got, req.SHA256) {
		return errkind.WithHint(errkind.Invalid, fmt.Errorf("the upload is incomplete: sha256 %s, client sent %s; nothing was changed", got[:12], req.SHA256), "run the deploy again")
	}
	if err := os.Mkdir(src, 0o700); err != nil {
		return diskErr("unpacking upload", err)
	}
	r, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("reading upload: %w", err)
	}
	defer r.Close()
	if _, err := source.Unpack(r, src, source.Limits{}); err != nil {
		if isDiskFull(err) {
			return diskErr("unpacking upload", err)
		}
		return err
	}
	return nil
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func diskErr(doing string, err error) error {
	if isDiskFull(err) {
		return errkind.WithHint(errkind.Unavailable, fmt.Errorf("%s: the data folder's disk is full; nothing was changed", doing),
			"free space on the disk that holds the data folder, then deploy again")
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// lineWriter turns a byte stream into calls with whole lines.
type lineWriter struct {
	fn  func(string)
	buf []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.fn(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a very long line without newline
		w.Flush()
	}
	return len(b), nil
}

// Flush sends what is left as a last line.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}

// releaseConfig is what a release records of an app folder's manifest: the
// run, access and egress sections and the text of the access policy file,
// which must compile (a broken policy fails the deploy before the build,
// with its file, line and column).
func releaseConfig(app, src string, m *spec.Manifest) (spec.Config, error) {
	var text []byte
	if m.Access.IsFile() {
		b, err := readInside(src, m.Access.Policy, maxPolicy)
		if err != nil {
			return spec.Config{}, errkind.WithHint(errkind.Invalid, fmt.Errorf("reading access policy %s: %w", m.Access.Policy, err),
				"access.policy names a .cedar file in the app folder, or is public or authenticated")
		}
		text = b
	}
	if _, err := policy.Compile(app, m.Access, m.Access.Policy, text); err != nil {
		return spec.Config{}, err
	}
	return spec.ConfigOf(m, string(text)), nil
}

// maxPolicy bounds an access policy file.
const maxPolicy = 256 << 10

// readInside reads a file of an unpacked app folder without leaving it (a
// symbolic link out of the folder is refused), up to limit bytes.
func readInside(dir, name string, limit int64) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// sharedCache is the folder of the caches every app's builds share.
func (p *Plane) sharedCache() string {
	if p.cfg.BuildCache != "" {
		return p.cfg.BuildCache
	}
	return filepath.Join(p.cfg.Data, "cache", ".shared")
}
