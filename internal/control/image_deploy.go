package control

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"noops/internal/errkind"
	"noops/internal/registry"
	"noops/internal/sbom"
	"noops/internal/spec"
	"noops/internal/stack"
	"noops/internal/store"
	"noops/internal/supervisor"
)

// ImageBuildpack is what releases of prebuilt images record as their
// buildpack; they have no source digest.
const ImageBuildpack = "image"

// maxImageRef bounds the image reference a deploy is given.
const maxImageRef = 512

// DeployImage deploys a prebuilt image from the noops registry: ref is
// "registry.<domain>[:port]/<repo>[:<tag>]", "<repo>[:<tag>]" (the tag
// defaults to latest), either with "@<digest>", or a bare "sha256:…"
// digest of an image in the image store. The image must be for
// linux/<this machine's architecture>; it runs under the same sandbox
// rules as a built one (a root user is uid 65532, no capabilities).
//
// cfg.Run overrides the run configuration; zero fields take the defaults,
// and the port defaults to the image's one exposed TCP port, else 8080.
// cfg.Access, when its policy is set (public or authenticated: an image
// brings no policy file), replaces the access section the app's newest
// release had; otherwise that one is kept, or the default for a new app. The
// release records an inventory of the image's Debian packages as its SBOM
// (empty when the image has no dpkg records) and is rolled out like
// Deploy's: nothing changes unless it is healthy, and a first deploy that
// fails leaves no app behind.
func (p *Plane) DeployImage(ctx context.Context, app, ref string, want spec.Config, out Progress) (store.Release, error) {
	var rel store.Release
	if err := spec.ValidAppName(app); err != nil {
		return rel, err
	}
	if want.Access.Policy != "" && want.Access.IsFile() {
		return rel, errkind.WithHint(errkind.Invalid, fmt.Errorf("an image deploy takes access public or authenticated, not %q", want.Access.Policy),
			"a policy file comes with a folder deploy: put it and access.policy in the app's noops.yaml")
	}
	run := want.Run
	done, err := p.claim(app, "a deploy")
	if err != nil {
		return rel, err
	}
	defer done()

	out.Stage("resolving")
	d, img, err := p.imageByRef(ref, out)
	if err != nil {
		return rel, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return rel, errkind.Errorf(errkind.Invalid, "reading the config of image %s: %v", d, err)
	}
	if err := runnable(d, cf); err != nil {
		return rel, err
	}
	run, err = imageRun(cf.Config, run, out)
	if err != nil {
		return rel, err
	}
	if uid, _, _ := strings.Cut(cf.Config.User, ":"); !nonRoot(uid) {
		out.Log(fmt.Sprintf("the image's user is %q: it runs as uid 65532 (nonroot), without capabilities", cf.Config.User))
	}

	out.Stage("inventory")
	inv, unread, err := imageInventory(ctx, img, cf)
	if err != nil {
		return rel, err
	}
	if len(unread) > 0 {
		out.Log(fmt.Sprintf("SBOM: package records that are not Debian control data were left out: /%s", strings.Join(unread, ", /")))
	}
	if len(inv.Components) == 0 {
		out.Log("SBOM: the image has no Debian package records (/var/lib/dpkg): its inventory lists no packages")
	} else {
		out.Log(fmt.Sprintf("SBOM: %d Debian packages", len(inv.Components)))
	}
	inv.App, inv.Image, inv.Created = app, d.String(), p.cfg.Now()
	sb, err := sbom.Encode(inv)
	if err != nil {
		return rel, fmt.Errorf("encoding the inventory: %w", err)
	}

	a, created, err := p.ensureApp(ctx, app, &spec.Manifest{Run: run})
	if err != nil {
		return rel, err
	}
	ok := false
	defer func() {
		if created && !ok { // a first deploy that fails leaves no app behind
			if err := p.store.DeleteApp(context.WithoutCancel(ctx), app); err != nil {
				p.log.Warn("removing app after failed first deploy", "app", app, "err", err)
			}
		}
	}()
	cfg, err := p.carriedConfig(ctx, app, run)
	if err != nil {
		return rel, err
	}
	if want.Access.Policy != "" {
		cfg.Access, cfg.PolicySource = want.Access, ""
		m := spec.Manifest{Run: cfg.Run, Access: cfg.Access}
		m.Default()
		if err := m.Validate(); err != nil {
			return rel, err
		}
		cfg.Access = m.Access
	}
	rel, err = p.releaseAndRollout(ctx, a, newRelease{image: d, buildpack: ImageBuildpack, sbom: sb, cfg: cfg,
		reason: "deploy of image " + strings.TrimSpace(ref)}, out)
	if err != nil {
		return rel, err
	}
	ok = true
	return rel, nil
}

// indexes is an image store that reads image indexes too. With one,
// deploying an index (a multi-platform image) deploys its image for this
// machine; without one, an index is refused with a hint.
type indexes interface {
	Index(d v1.Hash) (v1.ImageIndex, error)
}

// imageByRef finds the image a deploy names in the image store.
func (p *Plane) imageByRef(ref string, out Progress) (v1.Hash, v1.Image, error) {
	var none v1.Hash
	ref = strings.TrimSpace(ref)
	host := registry.Host(p.cfg.Domain)
	push := fmt.Sprintf("push it to the noops registry first, e.g. crane push IMAGE.tar %s%s/REPO:TAG (user %s, password from `noops registry token`)", host, p.cfg.Port, registry.User)
	switch {
	case ref == "":
		return none, nil, errkind.Errorf(errkind.Invalid, "no image given: name one in the noops registry, e.g. %s/REPO:TAG", host)
	case len(ref) > maxImageRef:
		return none, nil, errkind.Errorf(errkind.Invalid, "image reference is %d characters long; at most %d are allowed", len(ref), maxImageRef)
	}
	var d v1.Hash
	tagged := ""
	if strings.HasPrefix(ref, "sha256:") {
		h, err := v1.NewHash(ref)
		if err != nil {
			return none, nil, errkind.Errorf(errkind.Invalid, "image digest %q: %v", ref, err)
		}
		d = h
	} else {
		r, err := name.ParseReference(ref, name.WithDefaultRegistry(host))
		if err != nil {
			return none, nil, errkind.Errorf(errkind.Invalid, "image reference %q: %v", ref, err)
		}
		reg := r.Context().RegistryStr()
		regHost, _, _ := strings.Cut(reg, ":") // any port: the gateway's HTTPS port is the registry's
		if !strings.EqualFold(regHost, host) {
			return none, nil, errkind.WithHint(errkind.Invalid, fmt.Errorf("image %s is in %s, not in this server's registry %s: noops deploys images from its own registry only", ref, reg, host),
				fmt.Sprintf("copy it there first, e.g. crane copy %s %s%s/%s", ref, host, p.cfg.Port, r.Context().RepositoryStr()))
		}
		repo := r.Context().RepositoryStr()
		switch r := r.(type) {
		case name.Digest:
			if d, err = v1.NewHash(r.DigestStr()); err != nil {
				return none, nil, errkind.Errorf(errkind.Invalid, "image reference %q: %v", ref, err)
			}
		case name.Tag:
			tagged = repo + ":" + r.TagStr()
			h, found, err := p.images.Resolve(registry.Ref(repo, r.TagStr()))
			if err != nil {
				return none, nil, err
			}
			if !found {
				return none, nil, errkind.WithHint(errkind.NotFound, fmt.Errorf("%s is not in the noops registry", tagged), push)
			}
			d = h
		}
	}
	img, err := p.images.Get(d)
	if err == nil {
		out.Log(fmt.Sprintf("image %s", d))
		return d, img, nil
	}
	if !errkind.Is(err, errkind.NotFound) {
		return none, nil, err
	}
	if ix, ok := p.images.(indexes); ok {
		if idx, ierr := ix.Index(d); ierr == nil {
			child, err := platformImage(d, idx)
			if err != nil {
				return none, nil, err
			}
			img, err := p.images.Get(child)
			if err != nil {
				return none, nil, err
			}
			out.Log(fmt.Sprintf("image %s: linux/%s of index %s", child, goruntime.GOARCH, d))
			return child, img, nil
		}
	}
	if tagged != "" {
		return none, nil, errkind.WithHint(errkind.Invalid, fmt.Errorf("%s is not a single image (an image index for several platforms?): %v", tagged, err),
			fmt.Sprintf("deploy its linux/%s image by digest: crane digest --platform linux/%s %s%s/%s gives it; then noops deploy --image %s@DIGEST",
				goruntime.GOARCH, goruntime.GOARCH, host, p.cfg.Port, tagged, strings.Split(tagged, ":")[0]))
	}
	return none, nil, errkind.WithHint(errkind.NotFound, err, push)
}

// platformImage picks the image for linux/<this machine's architecture>
// from index d.
func platformImage(d v1.Hash, idx v1.ImageIndex) (v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading image index %s: %w", d, err)
	}
	var have []string
	for _, desc := range im.Manifests {
		pl := desc.Platform
		if pl == nil || !desc.MediaType.IsImage() {
			continue
		}
		if pl.OS == "linux" && pl.Architecture == goruntime.GOARCH {
			return desc.Digest, nil
		}
		have = append(have, pl.OS+"/"+pl.Architecture)
	}
	return v1.Hash{}, errkind.WithHint(errkind.Invalid,
		fmt.Errorf("image index %s has no linux/%s image (it has: %s)", short(d.String()), goruntime.GOARCH, strings.Join(have, ", ")),
		fmt.Sprintf("build the image for linux/%s too and push it again", goruntime.GOARCH))
}

// runnable refuses an image this server cannot run: another OS or
// architecture, or nothing to run.
func runnable(d v1.Hash, cf *v1.ConfigFile) error {
	if cf.OS != "linux" || cf.Architecture != goruntime.GOARCH {
		return errkind.WithHint(errkind.Invalid,
			fmt.Errorf("image %s is for %s/%s; this server runs linux/%s images", short(d.String()), cf.OS, cf.Architecture, goruntime.GOARCH),
			fmt.Sprintf("build it for linux/%s (docker buildx build --platform linux/%s, ko build --platform=linux/%s) and push it again", goruntime.GOARCH, goruntime.GOARCH, goruntime.GOARCH))
	}
	if _, ok := cf.Config.Labels[supervisor.LabelProcesses]; !ok && len(cf.Config.Entrypoint)+len(cf.Config.Cmd) == 0 {
		return errkind.Errorf(errkind.Invalid, "image %s has neither an entrypoint nor a command: nothing to run", short(d.String()))
	}
	return nil
}

// nonRoot reports whether an image's user is a numeric uid other than 0;
// anything else runs as 65532 (the supervisor's rule).
func nonRoot(uid string) bool {
	n, err := strconv.ParseUint(uid, 10, 32)
	return err == nil && n != 0
}

// imageRun is the run configuration of an image deploy: the caller's
// settings, the image's one exposed TCP port when the caller gives no
// port (else 8080), and the defaults for the rest.
func imageRun(cfg v1.Config, run spec.Run, out Progress) (spec.Run, error) {
	if run.Port == 0 {
		ports := exposedTCP(cfg.ExposedPorts)
		switch len(ports) {
		case 1:
			run.Port = ports[0]
			out.Log(fmt.Sprintf("port %d: the port the image exposes", run.Port))
		case 0:
			out.Log(fmt.Sprintf("port %d: the image exposes no port (give the app's with --port)", spec.DefaultPort))
		default:
			out.Log(fmt.Sprintf("port %d: the image exposes several ports, %v (give the app's with --port)", spec.DefaultPort, ports))
		}
	}
	m := spec.Manifest{Run: run}
	m.Default()
	if err := m.Validate(); err != nil {
		return run, errkind.Errorf(errkind.Invalid, "run settings: %s", strings.TrimPrefix(err.Error(), spec.FileName+": "))
	}
	if m.Run.Port < 1024 {
		out.Log(fmt.Sprintf("warning: port %d is below 1024, which the app, running without privileges, may not be allowed to bind; if it does not become healthy, make it listen above 1023 and deploy with --port", m.Run.Port))
	}
	return m.Run, nil
}

// exposedTCP returns the TCP ports of an image's ExposedPorts ("8080/tcp",
// "8080"), in order.
func exposedTCP(exposed map[string]struct{}) []int {
	var ports []int
	for p := range exposed {
		num, proto, _ := strings.Cut(p, "/")
		if proto != "" && !strings.EqualFold(proto, "tcp") {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n > 0 && n <= 65535 {
			ports = append(ports, n)
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// Limits on what the inventory reads of an image.
const (
	maxStatusFile   = 1 << 20  // one record file in status.d
	maxStatus       = 64 << 20 // /var/lib/dpkg/status
	maxOSRelease    = 64 << 10
	statusD         = "var/lib/dpkg/status.d/"
	dpkgStatus      = "var/lib/dpkg/status"
	etcOSRelease    = "etc/os-release"
	usrLibOSRelease = "usr/lib/os-release"
)

// imageInventory lists the Debian packages an image has, as dpkg records
// them: one record per file in /var/lib/dpkg/status.d (distroless images
// and noops stacks) and the installed ones in /var/lib/dpkg/status (Debian
// and Ubuntu images), with the distribution from os-release. It reads the
// image's flattened file system, so files that upper layers removed do
// not count. It also returns the record files it could not parse.
func imageInventory(ctx context.Context, img v1.Image, cf *v1.ConfigFile) (sbom.Inventory, []string, error) {
	inv := sbom.Inventory{OS: sbom.OS{Arch: cf.Architecture}}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	type pkg struct{ name, version, arch, source string }
	var pkgs []pkg
	var etcRelease, usrRelease []byte
	var unread []string
	add := func(par stack.Paragraph, needInstalled bool) {
		name, version := par.Get("Package"), par.Get("Version")
		if name == "" || version == "" {
			return
		}
		if needInstalled && !strings.HasSuffix(strings.TrimSpace(par.Get("Status")), " installed") {
			return
		}
		pkgs = append(pkgs, pkg{name, version, par.Get("Architecture"), par.Get("Source")})
	}
	parse := func(name string, b []byte, needInstalled bool) {
		err := stack.ParseControl(bytes.NewReader(b), func(p stack.Paragraph) error { add(p, needInstalled); return nil })
		if err != nil {
			unread = append(unread, name)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return inv, nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return inv, nil, fmt.Errorf("reading the image's files for its SBOM: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch {
		case name == dpkgStatus:
			b, err := readCapped(tr, maxStatus)
			if err != nil {
				return inv, nil, fmt.Errorf("reading /%s: %w", name, err)
			}
			parse(name, b, true)
		case strings.HasPrefix(name, statusD) && !strings.Contains(name[len(statusD):], "/") && !strings.HasSuffix(name, ".md5sums"):
			b, err := readCapped(tr, maxStatusFile)
			if err != nil {
				return inv, nil, fmt.Errorf("reading /%s: %w", name, err)
			}
			parse(name, b, false)
		case name == etcOSRelease:
			if etcRelease, err = readCapped(tr, maxOSRelease); err != nil {
				return inv, nil, fmt.Errorf("reading /%s: %w", name, err)
			}
		case name == usrLibOSRelease:
			if usrRelease, err = readCapped(tr, maxOSRelease); err != nil {
				return inv, nil, fmt.Errorf("reading /%s: %w", name, err)
			}
		}
	}
	release := etcRelease
	if release == nil {
		release = usrRelease // etc/os-release is usually a link to it
	}
	vars := osRelease(string(release))
	inv.OS.ID, inv.OS.VersionID = vars["ID"], vars["VERSION_ID"]
	seen := map[string]bool{}
	for _, p := range pkgs {
		key := p.name + "\x00" + p.arch
		if seen[key] {
			continue
		}
		seen[key] = true
		inv.Components = append(inv.Components, sbom.OSPackage(inv.OS, p.name, p.version, p.arch, p.source, ""))
	}
	return inv, unread, nil
}

// readCapped reads r whole, refusing more than limit bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// osRelease reads os-release's KEY=value lines (values optionally quoted).
func osRelease(s string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		vars[k] = v
	}
	return vars
}

// carriedConfig is the release configuration of an image deploy: its run
// section, and the access and egress sections of the app's newest release
// (an image brings no manifest), or the defaults for a new app.
func (p *Plane) carriedConfig(ctx context.Context, app string, run spec.Run) (spec.Config, error) {
	cfg := spec.Config{Run: run}
	prev, err := p.store.ListReleases(ctx, app)
	if err != nil && !errkind.Is(err, errkind.NotFound) {
		return cfg, err
	}
	if len(prev) > 0 && len(prev[0].Config) > 0 {
		var old spec.Config
		if err := json.Unmarshal(prev[0].Config, &old); err != nil {
			return cfg, fmt.Errorf("decoding release %d of %s: %w", prev[0].Number, app, err)
		}
		cfg.Access, cfg.Egress, cfg.PolicySource = old.Access, old.Egress, old.PolicySource
	}
	m := spec.Manifest{Run: cfg.Run, Access: cfg.Access}
	m.Default()
	cfg.Access = m.Access
	return cfg, nil
}
