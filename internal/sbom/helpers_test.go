package sbom

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

// describe lists components as "purl" or "purl direct", for comparisons
// that read like the expected SBOM.
func describe(cs []Component) []string {
	out := []string{}
	for _, c := range cs {
		s := c.PURL
		if c.Direct {
			s += " direct"
		}
		out = append(out, s)
	}
	return out
}

func diffLists(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s:\n got  %s\n want %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
}

func find(t *testing.T, cs []Component, name, version string) Component {
	t.Helper()
	for _, c := range cs {
		if c.Name == name && c.Version == version {
			return c
		}
	}
	t.Fatalf("no component %s@%s in %v", name, version, describe(cs))
	return Component{}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
func sha512Hex(s string) string { h := sha512.Sum512([]byte(s)); return hex.EncodeToString(h[:]) }

// wantInvalid fails unless err is errkind.Invalid and mentions every part.
func wantInvalid(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an invalid error mentioning %q", parts)
	}
	if !errkind.Is(err, errkind.Invalid) {
		t.Errorf("err = %v (kind %v), want kind invalid", err, errkind.Of(err))
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("err = %q, want it to mention %q", err, p)
		}
	}
}

// writeFiles makes a folder holding the given files.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var testDigest = "sha256:" + sha256Hex("image")

// testInventory is a Node app on Debian 12: three OS packages and the
// dependencies of testdata/npm-v2, plus a Go module with an unusual
// license list.
func testInventory(t testing.TB) Inventory {
	t.Helper()
	deb := OS{ID: "debian", VersionID: "12", Arch: "amd64"}
	app, err := AppDependencies("testdata/npm-v2")
	if err != nil {
		t.Fatal(err)
	}
	cs := []Component{
		OSPackage(deb, "libc6", "2.36-9+deb12u4", "amd64", "glibc (2.36-9+deb12u4)", sha256Hex("libc6")),
		OSPackage(deb, "tzdata", "2024a-0+deb12u1", "all", "", ""),
		OSPackage(deb, "ca-certificates", "20230311", "all", "", ""),
		{Kind: KindApp, Ecosystem: Golang, Name: "example.com/odd", Version: "v1.0.0", PURL: appPURL(Golang, "example.com/odd", "v1.0.0"),
			Licenses: []string{"BSD-3-Clause", "Custom License"}, Direct: true},
	}
	return Inventory{
		App: "hello", Image: testDigest, Created: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		OS: deb, Stack: "node", Components: append(cs, app...),
	}
}

// purls lists the purls of the inventory's components, sorted.
func purls(inv Inventory) []string {
	var out []string
	for _, c := range inv.Components {
		out = append(out, c.PURL)
	}
	slices.Sort(out)
	return out
}

// directPURLs lists the purls of the inventory's direct app dependencies.
func directPURLs(inv Inventory) []string {
	var out []string
	for _, c := range inv.Components {
		if c.Kind == KindApp && c.Direct {
			out = append(out, c.PURL)
		}
	}
	slices.Sort(out)
	return out
}

// shuffled returns inv with its components in another order.
func shuffled(inv Inventory) Inventory {
	cs := slices.Clone(inv.Components)
	slices.Reverse(cs)
	cs[0], cs[len(cs)/2] = cs[len(cs)/2], cs[0]
	inv.Components = cs
	return inv
}
