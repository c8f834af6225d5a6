package sbom

import "testing"

func TestOSPackage(t *testing.T) {
	t.Parallel()
	bookworm := OS{ID: "debian", VersionID: "12", Arch: "amd64"}
	tests := []struct {
		name                               string
		distro                             OS
		pkg, version, arch, source, sha256 string
		want                               string
	}{
		{"plus in version", bookworm, "tzdata", "2024a-0+deb12u1", "all", "", "", "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12"},
		{"epoch keeps its colon", bookworm, "attr", "1:2.5.1-4", "amd64", "", "", "pkg:deb/debian/attr@1:2.5.1-4?arch=amd64&distro=debian-12"},
		{"tilde is unreserved", bookworm, "libfoo1", "1.0~rc1-1", "amd64", "", "", "pkg:deb/debian/libfoo1@1.0~rc1-1?arch=amd64&distro=debian-12"},
		{"arch defaults to the distribution's", bookworm, "libssl3", "3.0.11-1~deb12u2", "", "openssl", "", "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"},
		{"source with the same version", bookworm, "libc6", "2.36-9+deb12u4", "amd64", "glibc (2.36-9+deb12u4)", "", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"},
		{"binNMU: source of another version", bookworm, "libattr1", "1:2.5.1-4+b1", "arm64", "attr (1:2.5.1-4)", "", "pkg:deb/debian/libattr1@1:2.5.1-4%2Bb1?arch=arm64&distro=debian-12&upstream=attr%401:2.5.1-4"},
		{"source named like the package", bookworm, "bash", "5.2.15-2+b2", "amd64", "bash", "", "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12"},
		{"ubuntu", OS{ID: "Ubuntu", VersionID: "24.04", Arch: "amd64"}, "dpkg", "1.22.6ubuntu6", "amd64", "", "", "pkg:deb/ubuntu/dpkg@1.22.6ubuntu6?arch=amd64&distro=ubuntu-24.04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := OSPackage(tc.distro, tc.pkg, tc.version, tc.arch, tc.source, tc.sha256)
			if c.PURL != tc.want {
				t.Errorf("OSPackage(%q, %q, %q, %q).PURL\n = %s\nwant %s", tc.pkg, tc.version, tc.arch, tc.source, c.PURL, tc.want)
			}
			if c.Kind != KindOS || c.Ecosystem != Deb || c.Name != tc.pkg || c.Version != tc.version {
				t.Errorf("OSPackage = %+v", c)
			}
		})
	}
	c := OSPackage(bookworm, "tzdata", "2024a-0+deb12u1", "all", "", "ABCDEF")
	if c.Hashes["SHA-256"] != "abcdef" {
		t.Errorf("OSPackage hashes = %v, want SHA-256 abcdef", c.Hashes)
	}
}

func TestAppPURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ecosystem, pkg, version, want string
	}{
		{"scoped npm", NPM, "@angular/core", "17.0.0", "pkg:npm/%40angular/core@17.0.0"},
		{"npm prerelease with plus", NPM, "esbuild", "0.0.0-dev+abc", "pkg:npm/esbuild@0.0.0-dev%2Babc"},
		{"go module", Golang, "github.com/x/y", "v1.2.3", "pkg:golang/github.com/x/y@v1.2.3"},
		{"go major version suffix", Golang, "github.com/go-chi/chi/v5", "v5.0.12", "pkg:golang/github.com/go-chi/chi/v5@v5.0.12"},
		{"go incompatible", Golang, "github.com/docker/docker", "v24.0.7+incompatible", "pkg:golang/github.com/docker/docker@v24.0.7%2Bincompatible"},
		{"go without a slash", Golang, "rsc.io", "v1.0.0", "pkg:golang/rsc.io@v1.0.0"},
		{"pypi name normalized", PyPI, "Flask_SQLAlchemy", "3.1.1", "pkg:pypi/flask-sqlalchemy@3.1.1"},
		{"pypi without version", PyPI, "uvicorn", "", "pkg:pypi/uvicorn"},
		{"odd characters", NPM, "a b", "1.0#x?y@z%", "pkg:npm/a%20b@1.0%23x%3Fy%40z%25"},
		{"non-ASCII", PyPI, "café", "1", "pkg:pypi/caf%C3%A9@1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := appPURL(tc.ecosystem, tc.pkg, tc.version); got != tc.want {
				t.Errorf("appPURL(%q, %q, %q)\n = %s\nwant %s", tc.ecosystem, tc.pkg, tc.version, got, tc.want)
			}
		})
	}
}
