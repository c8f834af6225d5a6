package stack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/image"
)

func TestUpdateWithoutArchiveChange(t *testing.T) {
	t.Parallel()
	needApt(t)
	m, _ := freshManager(t, "")
	ctx := context.Background()
	info, err := m.Build(ctx, "static", nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := m.Lock("static", KindRun)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	up, err := m.Update(ctx, "static", &progress)
	if err != nil {
		t.Fatalf("Update: %v\n%s", err, progress.String())
	}
	if len(up.Run) != 0 || len(up.Build) != 0 {
		t.Errorf("Update with no archive change reported %+v %+v", up.Run, up.Build)
	}
	if up.Info.Run.Digest != info.Run.Digest {
		t.Errorf("Update changed the image from %s to %s", info.Run.Digest, up.Info.Run.Digest)
	}
	after, err := m.Lock("static", KindRun)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Created.Equal(before.Created) {
		t.Errorf("Update rewrote an unchanged lock (created %s, was %s)", after.Created, before.Created)
	}
	list, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Name != "static" || list[0].Run.Packages != len(after.Packages) || list[1].Run != (ImageRef{}) {
		t.Errorf("List = %+v", list)
	}
}

func TestUpdateReportsChanges(t *testing.T) {
	t.Parallel()
	needApt(t)
	m, _ := freshManager(t, "")
	ctx := context.Background()
	if _, err := m.Build(ctx, "static", nil); err != nil {
		t.Fatal(err)
	}
	// Pretend the lock was written when netbase was older and tzdata
	// was not in the stack yet.
	l, err := m.Lock("static", KindRun)
	if err != nil {
		t.Fatal(err)
	}
	var kept []Package
	var netbase string
	for _, p := range l.Packages {
		switch p.Name {
		case "tzdata":
			continue
		case "netbase":
			netbase = p.Version
			p.Version = "0.1"
		}
		kept = append(kept, p)
	}
	l.Packages = kept
	if err := writeLock(m.dir, l); err != nil {
		t.Fatal(err)
	}
	up, err := m.Update(ctx, "static", nil)
	if err != nil {
		t.Fatal(err)
	}
	tz, _ := m.Lock("static", KindRun)
	var tzVersion string
	for _, p := range tz.Packages {
		if p.Name == "tzdata" {
			tzVersion = p.Version
		}
	}
	want := []Change{{Package: "netbase", From: "0.1", To: netbase}, {Package: "tzdata", To: tzVersion}}
	if !slices.Equal(up.Run, want) {
		t.Errorf("Update changes = %+v, want %+v", up.Run, want)
	}
}

func TestPinnedVersionGone(t *testing.T) {
	t.Parallel()
	needApt(t)
	m, _ := freshManager(t, "")
	l := Lock{Stack: "static", Kind: KindRun, Arch: m.Arch(), Created: time.Now().UTC(), Requested: definitions[0].run,
		Packages: []Package{{Name: "tzdata", Version: "0.0-noops-nonexistent", Arch: "all", SHA256: strings.Repeat("0", 64),
			Filename: "pool/main/t/tzdata/tzdata_0.0-noops-nonexistent_all.deb"}}}
	if err := writeLock(m.dir, l); err != nil {
		t.Fatal(err)
	}
	_, err := m.Build(context.Background(), "static", nil)
	if !errkind.Is(err, errkind.Unavailable) {
		t.Fatalf("Build with a pinned version that is gone: %v, want unavailable", err)
	}
	if !strings.Contains(err.Error(), "tzdata 0.0-noops-nonexistent") {
		t.Errorf("the error %q does not name the package and version", err)
	}
	if h := errkind.HintOf(err); !strings.Contains(h, "noops stack update static") {
		t.Errorf("hint %q, want one to update the stack", h)
	}
}

func TestCorruptDebIsReplaced(t *testing.T) {
	t.Parallel()
	needApt(t)
	debs := t.TempDir()
	m, _ := freshManager(t, debs)
	ctx := context.Background()
	first, err := m.Build(ctx, "static", nil)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := m.Lock("static", KindRun)
	victim := m.cache.path(l.Packages[0])
	if err := os.WriteFile(victim, []byte("not a package"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The unpacked cache would hide the bad file: build from scratch.
	if err := os.RemoveAll(m.unpacked.dir); err != nil {
		t.Fatal(err)
	}
	again, err := m.Build(ctx, "static", nil)
	if err != nil {
		t.Fatalf("Build after corrupting %s: %v", victim, err)
	}
	if again.Run.Digest != first.Run.Digest {
		t.Errorf("rebuilt image %s differs from %s", again.Run.Digest, first.Run.Digest)
	}
	if sum, err := fileSHA256(victim); err != nil || sum != l.Packages[0].SHA256 {
		t.Errorf("%s was not downloaded again (%s, %v)", victim, sum, err)
	}
}

func TestLockOfAnotherDefinitionIsRefused(t *testing.T) {
	t.Parallel()
	m, _ := freshManager(t, t.TempDir())
	l := Lock{Stack: "node", Kind: KindRun, Arch: m.Arch(), Requested: "nodejs", Created: time.Now().UTC()}
	if err := writeLock(m.dir, l); err != nil {
		t.Fatal(err)
	}
	_, _, err := m.RunImage(context.Background(), "node")
	if !errkind.Is(err, errkind.Conflict) || !strings.Contains(errkind.HintOf(err), "noops stack update node") {
		t.Errorf("RunImage with a lock of another definition: %v (hint %q), want a conflict", err, errkind.HintOf(err))
	}
}

func TestUnknownStack(t *testing.T) {
	t.Parallel()
	m, _ := freshManager(t, t.TempDir())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Build", func() error { _, err := m.Build(ctx, "cobol", nil); return err }},
		{"Update", func() error { _, err := m.Update(ctx, "cobol", nil); return err }},
		{"RunImage", func() error { _, _, err := m.RunImage(ctx, "cobol"); return err }},
		{"Lock", func() error { _, err := m.Lock("cobol", KindRun); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errkind.Is(err, errkind.NotFound) || !strings.Contains(err.Error(), "static, node, python") {
				t.Errorf("%s of an unknown stack: %v, want not found listing the stacks", tc.name, err)
			}
		})
	}
	if _, err := m.Lock("static", "debug"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Lock of an unknown kind: %v, want invalid", err)
	}
	if _, err := m.Lock("static", KindRun); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Lock before any build: %v, want not found", err)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	t.Parallel()
	images, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no folder", Options{Images: images}},
		{"no image store", Options{Dir: t.TempDir()}},
		{"unsupported architecture", Options{Dir: t.TempDir(), Images: images, Arch: "mips"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(tc.o); !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Open: %v, want invalid", err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	if got, want := Names(), []string{"static", "node", "python"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

func TestDownloadIsCheckedAgainstTheIndex(t *testing.T) {
	t.Parallel()
	needApt(t)
	m, _ := freshManager(t, t.TempDir())
	ctx := context.Background()
	release, err := m.apt.ensureLists(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ix, err := m.apt.index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := ix.pkgs["netbase"]
	if rec == nil {
		t.Fatal("the archive has no netbase")
	}
	wrong := rec.Package
	wrong.SHA256 = strings.Repeat("0", 64)
	err = m.apt.fetch(ctx, m.cache, []Package{wrong})
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "another SHA-256") {
		t.Errorf("fetch with a wrong digest: %v, want unavailable", err)
	}
	if des, _ := os.ReadDir(m.cache.dir); len(des) != 0 {
		t.Errorf("the cache kept %d files after a digest mismatch", len(des))
	}
	if err := m.apt.fetch(ctx, m.cache, []Package{rec.Package}); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if ok, err := m.cache.cached(rec.Package); !ok || err != nil {
		t.Errorf("after fetch, cached = %v, %v", ok, err)
	}
}

func TestUnreachableArchive(t *testing.T) {
	t.Parallel()
	needApt(t)
	etc := t.TempDir()
	if err := os.WriteFile(filepath.Join(etc, "sources.list"), []byte("deb [trusted=yes] http://127.0.0.1:9/debian bookworm main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	images, err := image.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Options{Dir: filepath.Join(dir, "stacks"), Images: images, AptEtc: etc})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Build(context.Background(), "static", nil)
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("Build with an unreachable archive: %v, want unavailable with apt's message", err)
	}
	t.Logf("the error: %v", err)
	if h := errkind.HintOf(err); !strings.Contains(h, "apt sources") {
		t.Errorf("hint %q, want one about the apt sources", h)
	}
}
