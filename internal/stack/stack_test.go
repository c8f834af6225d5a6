package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/sys/unix"

	"noops/internal/errkind"
	"noops/internal/image"
	"noops/internal/testenv/need"
)

// These tests use the real apt and the machine's package archive. The
// .deb files are cached across runs in debCacheDir (some 100 MB for all
// stacks); everything else is fresh per run.

var debCacheDir = filepath.Join(os.TempDir(), "noops-stack-test-cache")

// needApt needs what building stacks needs: root (for chroot and
// overlays) and Debian's tools.
func needApt(t *testing.T) {
	t.Helper()
	need.Root(t)
	for _, p := range []string{"apt-get", "apt-cache", "apt-config", "dpkg-deb"} {
		need.Program(t, p)
	}
}

// shared is one Manager for the tests that build the real stacks, so
// that each stack is built once per run.
var shared struct {
	once   sync.Once
	dir    string
	m      *Manager
	images *image.Store
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func sharedManager(t *testing.T) (*Manager, *image.Store) {
	t.Helper()
	needApt(t)
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "noops-stack-test-")
		if shared.err != nil {
			return
		}
		shared.images, shared.err = image.Open(filepath.Join(shared.dir, "images"))
		if shared.err != nil {
			return
		}
		shared.m, shared.err = Open(Options{Dir: filepath.Join(shared.dir, "stacks"), Images: shared.images, Debs: debCacheDir})
	})
	if shared.err != nil {
		t.Fatalf("opening the shared stacks: %v", shared.err)
	}
	return shared.m, shared.images
}

// freshManager is a Manager of its own, sharing only the .deb cache
// unless debs is set.
func freshManager(t *testing.T, debs string) (*Manager, *image.Store) {
	t.Helper()
	dir := t.TempDir()
	images, err := image.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if debs == "" {
		debs = debCacheDir
	}
	m, err := Open(Options{Dir: filepath.Join(dir, "stacks"), Images: images, Debs: debs})
	if err != nil {
		t.Fatal(err)
	}
	return m, images
}

// rootOf mounts img's unpacked layers as a writable overlay and returns
// its folder; the mount goes away with the test.
func rootOf(t *testing.T, images *image.Store, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := images.Unpack(context.Background(), d)
	if err != nil {
		t.Fatalf("unpacking %s: %v", d, err)
	}
	slices.Reverse(dirs)
	tmp := t.TempDir()
	root, upper, work := filepath.Join(tmp, "root"), filepath.Join(tmp, "upper"), filepath.Join(tmp, "work")
	for _, p := range []string{root, upper, work} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(dirs, ":"), upper, work)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		t.Fatalf("mounting the image: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	return root
}

// runIn runs argv in the chroot root as the nonroot user with the image's
// environment, and returns its standard output.
func runIn(t *testing.T, root string, img v1.Image, argv ...string) string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = append(slices.Clone(cf.Config.Env), "HOME=/home/nonroot")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: image.NonRootUID, Gid: image.NonRootUID}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("running %q in the image: %v\n%s", argv, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// absent checks that the image root has none of the named files.
func absent(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(root, n)); err == nil {
			t.Errorf("the image has %s", n)
		}
	}
}

// forbiddenInRun are what a run image must not hold: a shell, a package
// manager.
var forbiddenInRun = []string{"bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/dash", "usr/bin/dpkg", "usr/bin/apt", "usr/bin/apt-get", "usr/bin/perl"}

func TestStaticStack(t *testing.T) {
	t.Parallel()
	m, images := sharedManager(t)
	ctx := context.Background()
	var progress bytes.Buffer
	start := time.Now()
	info, err := m.Build(ctx, "static", &progress)
	if err != nil {
		t.Fatalf("Build(static): %v\n%s", err, progress.String())
	}
	t.Logf("first build of static: %s, %d bytes\n%s", time.Since(start), info.Run.Size, progress.String())
	if info.Build != (ImageRef{}) {
		t.Errorf("static has a build image: %+v", info.Build)
	}
	img, lock, err := m.RunImage(ctx, "static")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("the static run image is not valid: %v", err)
	}
	if d, _ := img.Digest(); d != info.Run.Digest {
		t.Errorf("RunImage gave %s, Build said %s", d, info.Run.Digest)
	}
	root := rootOf(t, images, img)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatalf("the image lacks %s: %v", name, err)
		}
		return string(b)
	}
	if n := strings.Count(read("etc/ssl/certs/ca-certificates.crt"), "BEGIN CERTIFICATE"); n < 100 {
		t.Errorf("the CA bundle has %d certificates, want over 100", n)
	}
	if b := read("usr/share/zoneinfo/Europe/Paris"); !strings.HasPrefix(b, "TZif") {
		t.Errorf("Europe/Paris is not a time zone file")
	}
	if !strings.Contains(read("etc/passwd"), "nonroot:x:65532:65532:") {
		t.Errorf("passwd lacks nonroot")
	}
	if !strings.Contains(read("var/lib/dpkg/status.d/tzdata"), "Package: tzdata\nStatus: install ok installed\n") {
		t.Errorf("status.d/tzdata is not a status record")
	}
	if !strings.Contains(read("etc/os-release"), "ID=debian") {
		t.Errorf("os-release does not say debian")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/services")); err != nil {
		t.Errorf("netbase's services are missing: %v", err)
	}
	absent(t, root, forbiddenInRun...)
	absent(t, root, "usr/share/man", "usr/share/doc/tzdata/changelog.Debian.gz", "usr/lib/x86_64-linux-gnu/libc.so.6")

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := lock.Digest()
	for k, want := range map[string]string{LabelStack: "static", LabelKind: KindRun, LabelLock: ld, LabelDistro: "debian-12"} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if cf.Config.User != "65532:65532" || cf.OS != "linux" || !slices.Contains(cf.Config.Env, "PATH=/usr/local/bin:/usr/bin:/bin") {
		t.Errorf("config user %q os %q env %q", cf.Config.User, cf.OS, cf.Config.Env)
	}
	if !slices.IsSortedFunc(lock.Packages, func(a, b Package) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("lock packages are not sorted: %v", nameVersions(lock.Packages))
	}
	if _, _, err := m.BuildImage(ctx, "static"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("BuildImage(static): %v, want not found", err)
	}

	// Built again from its lock: the same bytes.
	start = time.Now()
	again, err := m.Build(ctx, "static", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second build of static: %s", time.Since(start))
	if again.Run.Digest != info.Run.Digest {
		t.Errorf("a second build from the lock gave %s, the first %s", again.Run.Digest, info.Run.Digest)
	}
}

func TestNodeStack(t *testing.T) {
	t.Parallel()
	m, images := sharedManager(t)
	ctx := context.Background()
	img, lock, err := m.RunImage(ctx, "node")
	if err != nil {
		t.Fatalf("RunImage(node): %v", err)
	}
	if !slices.ContainsFunc(lock.Packages, func(p Package) bool { return p.Name == "nodejs" }) {
		t.Errorf("the node run lock lacks nodejs: %v", nameVersions(lock.Packages))
	}
	root := rootOf(t, images, img)
	if got := runIn(t, root, img, "/usr/bin/node", "-e", "console.log(1+1)"); got != "2" {
		t.Errorf("node printed %q, want 2", got)
	}
	absent(t, root, forbiddenInRun...)
	absent(t, root, "usr/bin/npm")

	bimg, block, err := m.BuildImage(ctx, "node")
	if err != nil {
		t.Fatalf("BuildImage(node): %v", err)
	}
	if block.Kind != KindBuild {
		t.Errorf("build lock kind %q", block.Kind)
	}
	broot := rootOf(t, images, bimg)
	if got := runIn(t, broot, bimg, "/usr/bin/npm", "--version"); got == "" || !strings.Contains(got, ".") {
		t.Errorf("npm --version printed %q", got)
	}
	if got := runIn(t, broot, bimg, "/bin/sh", "-c", "echo $((40+2))"); got != "42" {
		t.Errorf("sh in the build image printed %q", got)
	}
}

func TestPythonStack(t *testing.T) {
	t.Parallel()
	m, images := sharedManager(t)
	ctx := context.Background()
	img, _, err := m.RunImage(ctx, "python")
	if err != nil {
		t.Fatalf("RunImage(python): %v", err)
	}
	root := rootOf(t, images, img)
	got := runIn(t, root, img, "/usr/bin/python3", "-c",
		"import ssl, json, sqlite3; print(ssl.OPENSSL_VERSION); print(ssl.create_default_context().cert_store_stats()['x509_ca'])")
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "OpenSSL 3") {
		t.Fatalf("python printed %q", got)
	}
	var n int
	if _, err := fmt.Sscan(lines[1], &n); err != nil || n < 100 {
		t.Errorf("python's default TLS context trusts %q certificates, want over 100", lines[1])
	}
	if got := runIn(t, root, img, "/usr/bin/python3", "-c", "import gunicorn; print(gunicorn.__name__)"); got != "gunicorn" {
		t.Errorf("import gunicorn printed %q", got)
	}
	absent(t, root, forbiddenInRun...)

	bimg, _, err := m.BuildImage(ctx, "python")
	if err != nil {
		t.Fatalf("BuildImage(python): %v", err)
	}
	broot := rootOf(t, images, bimg)
	if got := runIn(t, broot, bimg, "/bin/sh", "-c", "python3 -m venv /tmp/venv && /tmp/venv/bin/pip --version"); !strings.HasPrefix(got, "pip ") {
		t.Errorf("pip in a new virtualenv printed %q", got)
	}
}
