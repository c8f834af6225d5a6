package control

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"noops/internal/errkind"
	"noops/internal/gateway"
	"noops/internal/image"
	"noops/internal/netns"
	"noops/internal/registry"
	"noops/internal/runtime/fake"
	"noops/internal/sbom"
	"noops/internal/spec"
	"noops/internal/store"
	"noops/internal/store/sqlite"
	"noops/internal/supervisor"
)

// imageAppEnv makes this test binary, started as a sandbox's program by
// the fake driver, play the app of a test image (TestImageAppHelper).
const imageAppEnv = "NOOPS_IMAGE_APP"

// TestImageAppHelper is not a test: run with imageAppEnv=web it serves
// "image app, release N" on 127.0.0.1:$PORT until SIGTERM; with "crash" it
// exits at once. Without imageAppEnv it does nothing.
func TestImageAppHelper(t *testing.T) {
	switch os.Getenv(imageAppEnv) {
	case "web":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		// Old and new replicas share the port while a rollout overlaps them.
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
			return errors.Join(err, serr)
		}}
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "image app, release %s\n", os.Getenv("NOOPS_RELEASE"))
		})}
		go func() { <-ctx.Done(); srv.Close() }()
		_ = srv.Serve(ln)
		os.Exit(0)
	case "crash":
		fmt.Fprintln(os.Stderr, "image app: cannot start")
		os.Exit(3)
	}
}

// imgNet gives every sandbox the host's loopback address.
type imgNet struct{}

func (imgNet) Create(string) (string, error) { return "", nil }
func (imgNet) Attach(context.Context, string) (netns.Attachment, error) {
	return netns.Attachment{IP: netip.MustParseAddr("127.0.0.1")}, nil
}
func (imgNet) Teardown(context.Context, string) error { return nil }

// imgHostImages is the image store as the fake driver needs it: its
// sandboxes are host processes, so layers are not unpacked.
type imgHostImages struct{ *image.Store }

func (imgHostImages) Unpack(context.Context, v1.Hash) ([]string, error) { return nil, nil }

// imgIndexStore is the image store with the Index method DeployImage uses
// when the store has it, reading the layout directly.
type imgIndexStore struct {
	*image.Store
	dir string
}

func (s imgIndexStore) Index(d v1.Hash) (v1.ImageIndex, error) {
	ii, err := layout.Path(s.dir).ImageIndex()
	if err != nil {
		return nil, err
	}
	return ii.ImageIndex(d)
}

// imgProgress records a deploy's stages and lines.
type imgProgress struct {
	mu    sync.Mutex
	lines []string
}

func (p *imgProgress) Stage(name string) { p.add("==> " + name) }
func (p *imgProgress) Log(line string)   { p.add(line) }
func (p *imgProgress) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, s)
}

func (p *imgProgress) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// imgPlane is a control plane over a real store, image store and
// supervisor, whose sandboxes are host processes on loopback.
type imgPlane struct {
	*Plane
	store  store.Store
	images *image.Store
	dir    string // the image store's folder
}

func newImgPlane(t *testing.T) *imgPlane {
	t.Helper()
	data := t.TempDir()
	st, err := sqlite.Open(filepath.Join(data, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := filepath.Join(data, "images")
	im, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sup := supervisor.New(supervisor.Config{LogDir: filepath.Join(data, "logs"), StartTimeout: 10 * time.Second, StopGrace: 2 * time.Second,
		DrainTimeout: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, CheckInterval: 200 * time.Millisecond,
		Logger: log}, st, fake.New(), imgNet{}, imgHostImages{im}, gateway.New(gateway.Config{}))
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sup.StopAll(ctx); err != nil {
			t.Errorf("StopAll: %v", err)
		}
		if err := sup.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	p := New(Config{Data: data, Domain: "localhost", Port: ":8443", Logger: log}, st, im, nil, nil, sup)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &imgPlane{Plane: p, store: st, images: im, dir: dir}
}

// imgLayer is a layer of files (path → content); a content of "\x00wh"
// makes a whiteout of the path.
func imgLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		if content == "\x00wh" {
			name = filepath.Join(filepath.Dir(name), ".wh."+filepath.Base(name))
			content = ""
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, content)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const (
	imgBaseFiles = "Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
	imgLibc6     = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n"
	imgOSRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"
)

// imgFreePort returns a TCP port on loopback that nothing listens on now.
func imgFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// imgApp is an image whose program is this test binary in role, as
// user, exposing ports, with layers.
func imgApp(t *testing.T, role, user string, ports []int, layers ...v1.Layer) v1.Image {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := v1.Config{User: user, Entrypoint: []string{exe, "-test.run=^TestImageAppHelper$"},
		Env: []string{imageAppEnv + "=" + role, "GORACE=atexit_sleep_ms=0"}, ExposedPorts: map[string]struct{}{}}
	for _, p := range ports {
		cfg.ExposedPorts[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	img, err := image.Assemble(cfg, time.Unix(0, 0), layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (ip *imgPlane) put(t *testing.T, img v1.Image, repo, tag string) v1.Hash {
	t.Helper()
	d, err := ip.images.Put(img, registry.Ref(repo, tag))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func imgGet(t *testing.T, port int) string {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET the app: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestDeployImage(t *testing.T) {
	ip := newImgPlane(t)
	ctx := context.Background()
	port := imgFreePort(t)
	os1 := imgLayer(t, map[string]string{
		"var/lib/dpkg/status.d/base-files":         imgBaseFiles,
		"var/lib/dpkg/status.d/base-files.md5sums": "0123abcd  usr/share/doc/base-files/README\n",
		"var/lib/dpkg/status.d/libc6":              imgLibc6,
		"usr/lib/os-release":                       imgOSRelease,
	})
	img := imgApp(t, "web", "0", []int{port}, os1)
	d := ip.put(t, img, "team/hello", "v1")

	var out imgProgress
	rel, err := ip.DeployImage(ctx, "hello", "registry.localhost:8443/team/hello:v1", spec.Config{}, &out)
	if err != nil {
		t.Fatalf("DeployImage: %v\n%s", err, &out)
	}
	if rel.Number != 1 || rel.Status != store.StatusLive || rel.Image != d.String() || rel.Buildpack != ImageBuildpack || rel.SourceDigest != "" {
		t.Errorf("release = %+v, want 1, live, image %s, buildpack image, no source digest", rel, d)
	}
	run, err := supervisor.RunConfig(rel)
	if err != nil || run.Port != port || run.Replicas != 1 || run.Memory != spec.DefaultMemory {
		t.Errorf("run config = %+v, %v, want port %d and defaults", run, err, port)
	}
	if got := imgGet(t, port); got != "image app, release 1\n" {
		t.Errorf("the app answers %q", got)
	}
	for _, want := range []string{"==> resolving", "uid 65532", fmt.Sprintf("port %d: the port the image exposes", port), "SBOM: 2 Debian packages", "==> rolling-out"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("deploy output lacks %q:\n%s", want, &out)
		}
	}
	raw, err := ip.store.ReleaseSBOM(ctx, "hello", 1)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := sbom.Decode(raw)
	if err != nil {
		t.Fatalf("decoding the release's SBOM: %v", err)
	}
	var names []string
	for _, c := range inv.Components {
		names = append(names, c.Name+"@"+c.Version)
	}
	if inv.App != "hello" || inv.Image != d.String() || inv.OS.ID != "debian" || inv.OS.VersionID != "12" ||
		strings.Join(names, " ") != "base-files@12.4+deb12u5 libc6@2.36-9+deb12u4" {
		t.Errorf("SBOM = %+v, want hello's debian 12 packages base-files and libc6", inv)
	}

	// Again by the short name, with a port given; then by digest. Config
	// vars carry over as in Deploy.
	if _, err := ip.SetEnv(ctx, "hello", map[string]string{"GREETING": "hi"}, nil); err != nil {
		t.Fatalf("SetEnv: %v", err)
	}
	port2 := imgFreePort(t)
	rel, err = ip.DeployImage(ctx, "hello", "team/hello:v1", spec.Config{Run: spec.Run{Port: port2}}, &out)
	if err != nil {
		t.Fatalf("DeployImage with a port: %v\n%s", err, &out)
	}
	if run, _ := supervisor.RunConfig(rel); run.Port != port2 || rel.Env["GREETING"] != "hi" {
		t.Errorf("release %d: port %d env %v, want port %d and the config var", rel.Number, run.Port, rel.Env, port2)
	}
	if got := imgGet(t, port2); !strings.HasPrefix(got, "image app, release ") {
		t.Errorf("the app on the given port answers %q", got)
	}
	// A new app needs sign-in; --access public opens it, and later image
	// deploys keep what the app has.
	if got := accessOf(t, rel); got != spec.AccessAuthenticated {
		t.Errorf("access of a first image deploy = %q, want authenticated", got)
	}
	rel, err = ip.DeployImage(ctx, "hello", d.String(), spec.Config{Run: spec.Run{Port: port2}, Access: spec.Access{Policy: "public"}}, &out)
	if err != nil || rel.Image != d.String() || rel.Status != store.StatusLive {
		t.Fatalf("DeployImage by digest = %+v, %v", rel, err)
	}
	if got := accessOf(t, rel); got != spec.AccessPublic {
		t.Errorf("access after --access public = %q, want public", got)
	}
	if _, err := ip.DeployImage(ctx, "hello", d.String(), spec.Config{Access: spec.Access{Policy: "policy.cedar"}}, &out); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("an image deploy with a policy file = %v, want Invalid", err)
	}
	if a, err := ip.App(ctx, "hello"); err != nil || a.Release != rel.Number {
		t.Errorf("app = %+v, %v, want release %d live", a, err, rel.Number)
	}
}

func TestDeployImageRefusals(t *testing.T) {
	ip := newImgPlane(t)
	ctx := context.Background()
	web := imgApp(t, "web", "", nil)
	ip.put(t, web, "web", "v1")
	other := "arm64"
	if goruntime.GOARCH == "arm64" {
		other = "amd64"
	}
	ip.put(t, imgWithArch(t, web, other), "foreign", "v1")
	idle, err := image.Assemble(v1.Config{}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ip.put(t, idle, "idle", "v1")
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: web,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}}})
	if _, err := ip.images.Put(&imgIndexAsImage{t: t, idx: idx}, registry.Ref("multi", "v1")); err != nil {
		t.Fatal(err)
	}
	missing := "sha256:" + strings.Repeat("ab", 32)

	tests := []struct {
		name, app, ref string
		run            spec.Run
		kind           errkind.Kind
		want           string // in the message or hint
	}{
		{"other architecture", "a", "foreign:v1", spec.Run{}, errkind.Invalid, "linux/" + goruntime.GOARCH},
		{"nothing to run", "a", "idle:v1", spec.Run{}, errkind.Invalid, "neither an entrypoint nor a command"},
		{"unknown tag", "a", "web:v2", spec.Run{}, errkind.NotFound, "noops registry token"},
		{"unknown repository", "a", "registry.localhost/nope", spec.Run{}, errkind.NotFound, "nope:latest is not in the noops registry"},
		{"another registry", "a", "docker.io/library/nginx:1", spec.Run{}, errkind.Invalid, "crane copy"},
		{"digest not in the store", "a", missing, spec.Run{}, errkind.NotFound, "not in the image store"},
		{"index without index support", "a", "multi:v1", spec.Run{}, errkind.Invalid, "crane digest --platform"},
		{"bad reference", "a", "Web::v1", spec.Run{}, errkind.Invalid, "image reference"},
		{"empty reference", "a", " ", spec.Run{}, errkind.Invalid, "no image given"},
		{"bad digest", "a", "sha256:xyz", spec.Run{}, errkind.Invalid, "image digest"},
		{"bad port", "a", "web:v1", spec.Run{Port: 70000}, errkind.Invalid, "run settings: run.port"},
		{"bad app name", "Bad", "web:v1", spec.Run{}, errkind.Invalid, "app name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out imgProgress
			_, err := ip.DeployImage(ctx, tc.app, tc.ref, spec.Config{Run: tc.run}, &out)
			if err == nil || errkind.Of(err) != tc.kind || !strings.Contains(err.Error()+" "+errkind.HintOf(err), tc.want) {
				t.Errorf("DeployImage(%q, %q) = %v (%v, hint %q), want %v containing %q", tc.app, tc.ref, err, errkind.Of(err), errkind.HintOf(err), tc.kind, tc.want)
			}
			if _, err := ip.store.GetApp(ctx, tc.app); !errkind.Is(err, errkind.NotFound) {
				t.Errorf("after a refused first deploy: GetApp = %v, want NotFound", err)
			}
		})
	}
}

func TestDeployImageFailedRollout(t *testing.T) {
	ip := newImgPlane(t)
	ctx := context.Background()
	ip.put(t, imgApp(t, "crash", "", []int{imgFreePort(t)}), "crash", "v1")
	var out imgProgress
	rel, err := ip.DeployImage(ctx, "crash", "crash:v1", spec.Config{}, &out)
	if err == nil {
		t.Fatalf("DeployImage of an app that exits = %+v, want an error", rel)
	}
	if _, err := ip.store.GetApp(ctx, "crash"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("after a failed first rollout: GetApp = %v, want NotFound (no app left behind)", err)
	}
}

func TestDeployImageBusy(t *testing.T) {
	ip := newImgPlane(t)
	done, err := ip.claim("busy", "a deploy")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	_, err = ip.DeployImage(context.Background(), "busy", "web:v1", spec.Config{}, &imgProgress{})
	if !errkind.Is(err, errkind.Conflict) {
		t.Errorf("DeployImage while a deploy runs = %v, want Conflict", err)
	}
}

func TestImageByRefIndex(t *testing.T) {
	ip := newImgPlane(t)
	ip.Plane.images = imgIndexStore{Store: ip.images, dir: ip.dir}
	web := imgApp(t, "web", "", nil)
	webDigest, _ := web.Digest()
	foreign := imgWithArch(t, web, "s390x")
	for _, img := range []v1.Image{web, foreign} {
		d, _ := img.Digest()
		ip.put(t, img, "multi", "child-"+d.Hex[:8])
	}
	add := func(img v1.Image, arch string) mutate.IndexAddendum {
		return mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}}
	}
	both := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), add(foreign, "s390x"), add(web, goruntime.GOARCH))
	only := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), add(foreign, "s390x"))
	for tag, idx := range map[string]v1.ImageIndex{"both": both, "only": only} {
		if _, err := ip.images.Put(&imgIndexAsImage{t: t, idx: idx}, registry.Ref("multi", tag)); err != nil {
			t.Fatal(err)
		}
	}
	d, _, err := ip.imageByRef("multi:both", &imgProgress{})
	if err != nil || d != webDigest {
		t.Errorf("imageByRef(multi:both) = %v, %v, want the linux/%s image %v", d, err, goruntime.GOARCH, webDigest)
	}
	if _, _, err := ip.imageByRef("multi:only", &imgProgress{}); !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "linux/s390x") {
		t.Errorf("imageByRef(multi:only) = %v, want Invalid listing linux/s390x", err)
	}
}

func imgWithArch(t *testing.T, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// imgIndexAsImage stores an index with image.Store.Put, as the registry does:
// an "image" without layers whose config and manifest are the index.
type imgIndexAsImage struct {
	v1.Image
	t   *testing.T
	idx v1.ImageIndex
}

func (i *imgIndexAsImage) raw() []byte {
	b, err := i.idx.RawManifest()
	if err != nil {
		i.t.Fatal(err)
	}
	return b
}
func (i *imgIndexAsImage) Layers() ([]v1.Layer, error)         { return nil, nil }
func (i *imgIndexAsImage) MediaType() (types.MediaType, error) { return i.idx.MediaType() }
func (i *imgIndexAsImage) ConfigName() (v1.Hash, error)        { return i.idx.Digest() }
func (i *imgIndexAsImage) RawConfigFile() ([]byte, error)      { return i.raw(), nil }
func (i *imgIndexAsImage) Digest() (v1.Hash, error)            { return i.idx.Digest() }
func (i *imgIndexAsImage) RawManifest() ([]byte, error)        { return i.raw(), nil }

func TestImageInventory(t *testing.T) {
	t.Parallel()
	status := "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n" +
		"Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\nArchitecture: amd64\n"
	lower := imgLayer(t, map[string]string{
		"var/lib/dpkg/status.d/base-files": imgBaseFiles,
		"var/lib/dpkg/status.d/libc6":      imgLibc6,
		"var/lib/dpkg/status.d/broken":     "this is not a control file\n",
		"./var/lib/dpkg/status":            status,
		"etc/os-release":                   "ID=ubuntu\nVERSION_ID='24.04'\n",
	})
	upper := imgLayer(t, map[string]string{"var/lib/dpkg/status.d/libc6": "\x00wh"}) // removed above
	img, err := image.Assemble(v1.Config{}, time.Unix(0, 0), lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	inv, unread, err := imageInventory(context.Background(), img, cf)
	if err != nil {
		t.Fatalf("imageInventory: %v", err)
	}
	var got []string
	for _, c := range inv.Components {
		got = append(got, c.Name+"@"+c.Version)
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "base-files@12.4+deb12u5 bash@5.2.15-2+b7" || inv.OS.ID != "ubuntu" || inv.OS.VersionID != "24.04" {
		t.Errorf("inventory = %v on %+v, want base-files and bash (not the removed libc6 or the deinstalled gone) on ubuntu 24.04", got, inv.OS)
	}
	if strings.Join(unread, ",") != "var/lib/dpkg/status.d/broken" {
		t.Errorf("unread = %q, want the broken record", unread)
	}

	empty, err := image.Assemble(v1.Config{}, time.Unix(0, 0), imgLayer(t, map[string]string{"app": "binary"}))
	if err != nil {
		t.Fatal(err)
	}
	inv, unread, err = imageInventory(context.Background(), empty, cf)
	if err != nil || len(inv.Components) != 0 || len(unread) != 0 {
		t.Errorf("inventory of an image without dpkg records = %+v, %q, %v, want no components", inv, unread, err)
	}
}

func TestImageRun(t *testing.T) {
	t.Parallel()
	ports := func(ps ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, p := range ps {
			m[p] = struct{}{}
		}
		return m
	}
	tests := []struct {
		name    string
		exposed map[string]struct{}
		run     spec.Run
		want    int
		log     string
	}{
		{"one port", ports("3000/tcp"), spec.Run{}, 3000, "the port the image exposes"},
		{"one port without protocol", ports("3000"), spec.Run{}, 3000, "the port the image exposes"},
		{"udp ignored", ports("53/udp", "9000/tcp"), spec.Run{}, 9000, "the port the image exposes"},
		{"no port", nil, spec.Run{}, 8080, "exposes no port"},
		{"several ports", ports("80/tcp", "443/tcp"), spec.Run{}, 8080, "several ports, [80 443]"},
		{"given port wins", ports("3000/tcp"), spec.Run{Port: 4000}, 4000, ""},
		{"privileged port warned", ports("80/tcp"), spec.Run{}, 80, "warning: port 80 is below 1024"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out imgProgress
			run, err := imageRun(v1.Config{ExposedPorts: tc.exposed}, tc.run, &out)
			if err != nil || run.Port != tc.want || run.Replicas != spec.DefaultReplicas || run.Health != spec.DefaultHealth {
				t.Errorf("imageRun = %+v, %v, want port %d with defaults", run, err, tc.want)
			}
			if !strings.Contains(out.String(), tc.log) {
				t.Errorf("imageRun logged %q, want %q", out.String(), tc.log)
			}
		})
	}
}

// accessOf is the access policy a release records.
func accessOf(t *testing.T, rel store.Release) string {
	t.Helper()
	var cfg spec.Config
	if err := json.Unmarshal(rel.Config, &cfg); err != nil {
		t.Fatalf("release %d config: %v", rel.Number, err)
	}
	return cfg.Access.Policy
}
