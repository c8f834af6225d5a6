package stack

import (
	"reflect"
	"strings"
	"testing"

	"noops/internal/errkind"
)

// testIndex is a small archive exercising what resolution has to handle.
const testIndex = `Package: app
Version: 1.0
Architecture: amd64
Pre-Depends: dpkg (>= 1.19)
Depends: libc6 (>= 2.34), libfoo | libbar, mail-transport-agent, debconf (>= 0.5) | debconf-2.0, python3:any
Recommends: recommended
Suggests: suggested
Filename: pool/a/app_1.0_amd64.deb
Size: 100
SHA256: aa

Package: libc6
Version: 2.36-9
Architecture: amd64
Depends: libgcc-s1
Source: glibc
Priority: required

Package: libc6
Version: 2.31-1
Architecture: amd64

Package: libc6
Version: 2.40-1
Architecture: i386

Package: libgcc-s1
Version: 12.2.0-14
Architecture: amd64
Source: gcc-12 (12.2.0-14+deb12u1)

Package: libbar
Version: 1
Architecture: all
Depends: libc6

Package: exim
Version: 4
Architecture: amd64
Provides: mail-transport-agent
Priority: optional

Package: postfix
Version: 3
Architecture: amd64
Provides: mail-transport-agent
Priority: important

Package: dpkg
Version: 1.21
Architecture: amd64
Depends: tar

Package: tar
Version: 1.34
Architecture: amd64

Package: debconf
Version: 1.5
Architecture: all

Package: cdebconf
Version: 0.2
Architecture: amd64
Provides: debconf-2.0

Package: python3
Version: 3.11.2-1
Architecture: amd64
Provides: python3-any (= 3.11.2-1), python3-old

Package: recommended
Version: 1
Architecture: all

Package: wants-versioned-virtual
Version: 1
Architecture: all
Depends: python3-any (>= 3.11)

Package: wants-unversioned-provide-at-a-version
Version: 1
Architecture: all
Depends: python3-old (>= 1)

Package: wants-other-arch
Version: 1
Architecture: all
Depends: libc6:i386

Package: wants-old-libc
Version: 1
Architecture: all
Depends: libc6 (<< 2.30)

Package: uses-chosen-alternative
Version: 1
Architecture: all
Depends: exim | postfix
`

func readTestIndex(t *testing.T) *Index {
	t.Helper()
	ix, err := ReadIndex(strings.NewReader(testIndex), "amd64")
	if err != nil {
		t.Fatalf("ReadIndex: %v", err)
	}
	return ix
}

func nameVersions(ps []Package) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name + "=" + p.Version
	}
	return out
}

func TestResolve(t *testing.T) {
	t.Parallel()
	ix := readTestIndex(t)
	exclude := setOf("dpkg", "debconf", "debconf-2.0")
	for _, tc := range []struct {
		name         string
		request      string
		want         []string
		wantExcluded []string
		wantErr      string
	}{
		{name: "closure without recommends or excluded packages", request: "app",
			want: []string{"app=1.0", "libbar=1", "libc6=2.36-9", "libgcc-s1=12.2.0-14", "postfix=3", "python3=3.11.2-1"},
			// tar is dpkg's dependency: not reached.
			wantExcluded: []string{"debconf", "dpkg"}},
		{name: "an alternative already chosen satisfies the item", request: "exim, uses-chosen-alternative",
			want: []string{"exim=4", "uses-chosen-alternative=1"}},
		{name: "a provider already chosen satisfies the virtual", request: "exim, mail-transport-agent",
			want: []string{"exim=4"}},
		{name: "versioned virtual needs a versioned provide", request: "wants-versioned-virtual",
			want: []string{"python3=3.11.2-1", "wants-versioned-virtual=1"}},
		{name: "an unversioned provide does not satisfy a version", request: "wants-unversioned-provide-at-a-version",
			wantErr: "needs python3-old (>= 1)"},
		{name: "another architecture is unsatisfiable", request: "wants-other-arch",
			wantErr: "needs libc6:i386"},
		{name: "only the candidate version counts", request: "wants-old-libc",
			wantErr: "needs libc6 (<< 2.30)"},
		{name: "request with a version constraint", request: "libc6 (>= 2.36)",
			want: []string{"libc6=2.36-9", "libgcc-s1=12.2.0-14"}},
		{name: "missing request", request: "nosuch",
			wantErr: "package nosuch is not in the package archive"},
		{name: "excluded request", request: "dpkg",
			want: nil, wantExcluded: []string{"dpkg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ix.Resolve(tc.request, exclude)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want one with %q", tc.request, err, tc.wantErr)
				}
				if !errkind.Is(err, errkind.Unavailable) {
					t.Errorf("Resolve(%q) error kind = %v, want unavailable", tc.request, errkind.Of(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tc.request, err)
			}
			if got := nameVersions(res.Packages); !reflect.DeepEqual(got, tc.want) && (len(got) > 0 || len(tc.want) > 0) {
				t.Errorf("Resolve(%q) = %v, want %v", tc.request, got, tc.want)
			}
			if !reflect.DeepEqual(res.Excluded, tc.wantExcluded) {
				t.Errorf("Resolve(%q) excluded %v, want %v", tc.request, res.Excluded, tc.wantExcluded)
			}
		})
	}
}

func TestResolveRecordsLockFields(t *testing.T) {
	t.Parallel()
	res, err := readTestIndex(t).Resolve("app", setOf("dpkg", "debconf"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Package{}
	for _, p := range res.Packages {
		byName[p.Name] = p
	}
	for _, tc := range []struct {
		name string
		got  Package
		want Package
	}{
		{"binary named after its source", byName["app"],
			Package{Name: "app", Version: "1.0", Arch: "amd64", Source: "app", SourceVersion: "1.0", SHA256: "aa", Filename: "pool/a/app_1.0_amd64.deb", Size: 100}},
		{"source of another name", byName["libc6"],
			Package{Name: "libc6", Version: "2.36-9", Arch: "amd64", Source: "glibc", SourceVersion: "2.36-9"}},
		{"source of another version", byName["libgcc-s1"],
			Package{Name: "libgcc-s1", Version: "12.2.0-14", Arch: "amd64", Source: "gcc-12", SourceVersion: "12.2.0-14+deb12u1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
}

func TestReadIndexSkipsBrokenEntries(t *testing.T) {
	t.Parallel()
	ix, err := ReadIndex(strings.NewReader("Package: a\nVersion: 1\nArchitecture: all\n\nPackage: nover\nArchitecture: all\n\nPackage: badsize\nVersion: 1\nArchitecture: all\nSize: x\n"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 1 || ix.skipped != 2 {
		t.Errorf("ReadIndex kept %d and skipped %d entries, want 1 and 2", ix.Len(), ix.skipped)
	}
	if _, err := ReadIndex(strings.NewReader(" broken\n"), "amd64"); err == nil {
		t.Error("ReadIndex of a malformed file succeeded")
	}
}
