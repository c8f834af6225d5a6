package sbom

import (
	"bytes"
	"regexp"
	"slices"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

func decodeCycloneDX(t *testing.T, b []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("decoding CycloneDX: %v\n%s", err, b)
	}
	return &bom
}

func TestCycloneDX(t *testing.T) {
	t.Parallel()
	inv := testInventory(t)
	b, err := CycloneDX(inv)
	if err != nil {
		t.Fatal(err)
	}
	bom := decodeCycloneDX(t, b)

	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Errorf("format, spec = %q, %v, want CycloneDX 1.6", bom.BOMFormat, bom.SpecVersion)
	}
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bom.SerialNumber) {
		t.Errorf("serial number = %q, want a urn:uuid", bom.SerialNumber)
	}
	md := bom.Metadata
	if md == nil || md.Component == nil || md.Tools == nil || md.Tools.Components == nil {
		t.Fatalf("metadata = %+v, want the app and the tool", md)
	}
	if md.Timestamp != "2024-05-06T07:08:09Z" {
		t.Errorf("timestamp = %q", md.Timestamp)
	}
	if (*md.Tools.Components)[0].Name != "noops" {
		t.Errorf("tools = %+v, want noops", *md.Tools.Components)
	}
	app := md.Component
	if app.Type != cdx.ComponentTypeApplication || app.Name != "hello" || app.Version != testDigest || app.PackageURL != "pkg:oci/hello@"+testDigest {
		t.Errorf("metadata.component = %+v", app)
	}

	var got []string
	byPURL := map[string]cdx.Component{}
	var osRef string
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeOS {
			osRef = c.BOMRef
			if c.Name != "debian" || c.Version != "12" {
				t.Errorf("OS component = %+v, want debian 12", c)
			}
			continue
		}
		got = append(got, c.PackageURL)
		byPURL[c.PackageURL] = c
	}
	slices.Sort(got)
	diffLists(t, "component purls", got, purls(inv))

	libc := byPURL["pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"]
	if libc.Hashes == nil || (*libc.Hashes)[0] != (cdx.Hash{Algorithm: cdx.HashAlgoSHA256, Value: sha256Hex("libc6")}) {
		t.Errorf("libc6 hashes = %+v", libc.Hashes)
	}
	express := byPURL["pkg:npm/express@4.18.2"]
	if express.Licenses == nil || (*express.Licenses)[0].License == nil || (*express.Licenses)[0].License.ID != "MIT" {
		t.Errorf("express licenses = %+v, want id MIT", express.Licenses)
	}
	if express.Hashes == nil || (*express.Hashes)[0].Algorithm != cdx.HashAlgoSHA512 || (*express.Hashes)[0].Value != sha512Hex("express@4.18.2") {
		t.Errorf("express hashes = %+v, want SHA-512 from the lockfile's integrity", express.Hashes)
	}
	if dual := byPURL["pkg:npm/dual@1.0.0"]; dual.Licenses == nil || (*dual.Licenses)[0].Expression != "(MIT OR Apache-2.0)" {
		t.Errorf("dual licenses = %+v, want the expression", dual.Licenses)
	}
	odd := byPURL["pkg:golang/example.com/odd@v1.0.0"]
	if l := odd.Licenses; l == nil || len(*l) != 2 || (*l)[0].License.ID != "BSD-3-Clause" || (*l)[1].License.Name != "Custom License" {
		t.Errorf("odd licenses = %+v, want an id and a name", odd.Licenses)
	}

	deps := map[string][]string{}
	for _, d := range *bom.Dependencies {
		if d.Dependencies != nil {
			deps[d.Ref] = *d.Dependencies
		}
	}
	if osRef == "" {
		t.Fatal("no operating-system component")
	}
	wantApp := append(directPURLs(inv), osRef)
	slices.Sort(wantApp)
	diffLists(t, "app depends on", deps[app.BOMRef], wantApp)
	diffLists(t, "OS depends on", deps[osRef], []string{
		"pkg:deb/debian/ca-certificates@20230311?arch=all&distro=debian-12",
		"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
		"pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
	})
}

func TestCycloneDXDeterministic(t *testing.T) {
	t.Parallel()
	inv := testInventory(t)
	a, err := CycloneDX(inv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := CycloneDX(shuffled(inv))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("CycloneDX of the same inventory (in another order) differs")
	}
	inv.Image = "sha256:" + sha256Hex("other")
	c, err := CycloneDX(inv)
	if err != nil {
		t.Fatal(err)
	}
	if decodeCycloneDX(t, a).SerialNumber == decodeCycloneDX(t, c).SerialNumber {
		t.Error("two images got the same serial number")
	}
}

func TestCycloneDXMinimal(t *testing.T) {
	t.Parallel()
	b, err := CycloneDX(Inventory{App: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	bom := decodeCycloneDX(t, b)
	if bom.Components != nil || bom.Metadata.Timestamp != "" || bom.Metadata.Component.PackageURL != "" {
		t.Errorf("an empty inventory gave components %v, timestamp %q, purl %q", bom.Components, bom.Metadata.Timestamp, bom.Metadata.Component.PackageURL)
	}
}
