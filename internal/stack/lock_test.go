package stack

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	pkgs := func(nv ...string) []Package {
		var out []Package
		for _, s := range nv {
			n, v, _ := strings.Cut(s, "=")
			out = append(out, Package{Name: n, Version: v})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		old, new []Package
		want     []Change
	}{
		{"no change", pkgs("a=1", "b=2"), pkgs("a=1", "b=2"), nil},
		{"version changed", pkgs("a=1", "b=2"), pkgs("a=1", "b=3"), []Change{{Package: "b", From: "2", To: "3"}}},
		{"added", pkgs("b=2"), pkgs("a=1", "b=2"), []Change{{Package: "a", To: "1"}}},
		{"removed", pkgs("a=1", "b=2"), pkgs("a=1"), []Change{{Package: "b", From: "2"}}},
		{"from nothing", nil, pkgs("a=1"), []Change{{Package: "a", To: "1"}}},
		{"all at once, sorted", pkgs("a=1", "c=1", "d=1"), pkgs("b=1", "c=2", "d=1"),
			[]Change{{Package: "a", From: "1"}, {Package: "b", To: "1"}, {Package: "c", From: "1", To: "2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := diff(tc.old, tc.new); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("diff = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLockRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := Lock{Stack: "static", Kind: KindRun, Distro: "debian-12", Arch: "amd64",
		Created: time.Date(2025, 5, 20, 1, 2, 3, 0, time.UTC), Requested: "tzdata",
		Packages: []Package{{Name: "tzdata", Version: "2025b-0+deb12u1", Arch: "all", Source: "tzdata", SourceVersion: "2025b-0+deb12u1", SHA256: "ab", Filename: "pool/t.deb", Size: 3}}}
	if _, err := readLock(dir, "static", KindRun); !errkind.Is(err, errkind.NotFound) {
		t.Fatalf("readLock before writing: %v, want not found", err)
	}
	if err := writeLock(dir, l); err != nil {
		t.Fatal(err)
	}
	got, err := readLock(dir, "static", KindRun)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, l) {
		t.Errorf("readLock = %+v, want %+v", got, l)
	}
	d1, _ := l.Digest()
	d2, _ := got.Digest()
	if d1 != d2 || !strings.HasPrefix(d1, "sha256:") {
		t.Errorf("digests %s and %s of one lock differ", d1, d2)
	}
	l.Packages[0].Version = "2025c"
	if d3, _ := l.Digest(); d3 == d1 {
		t.Error("a lock with another version has the same digest")
	}
	if _, err := readLock(dir, "node", KindRun); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("readLock of another stack: %v, want not found", err)
	}
}

func TestReadLockRefusesBadFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", "{", "unexpected EOF"},
		{"unknown field", `{"stack":"static","kind":"run","extra":1}`, "unknown field"},
		{"another stack's lock", `{"stack":"node","kind":"run"}`, "lock of node run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeFileAtomic(lockPath(dir, "static", KindRun), []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			_, err := readLock(dir, "static", KindRun)
			if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("readLock of %q: %v, want an invalid error with %q", tc.body, err, tc.want)
			}
		})
	}
}

func TestWriteFileAtomicLeavesNoTemporaries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 3 {
		if err := writeFileAtomic(dir+"/f", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 {
		t.Errorf("folder holds %d files, want only f", len(des))
	}
}
