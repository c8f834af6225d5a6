package sbom

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

func decodeSPDX(t *testing.T, b []byte) *spdx.Document {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding SPDX: %v\n%s", err, b)
	}
	return doc
}

func TestSPDX(t *testing.T) {
	t.Parallel()
	inv := testInventory(t)
	b, err := SPDX(inv)
	if err != nil {
		t.Fatal(err)
	}
	doc := decodeSPDX(t, b)
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("version, data license, id = %q, %q, %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	if want := "https://noops.dev/spdx/hello/" + testDigest; doc.DocumentNamespace != want {
		t.Errorf("namespace = %q, want %q", doc.DocumentNamespace, want)
	}
	if ci := doc.CreationInfo; ci == nil || ci.Created != "2024-05-06T07:08:09Z" || len(ci.Creators) != 1 || ci.Creators[0] != (common.Creator{CreatorType: "Tool", Creator: "noops"}) {
		t.Errorf("creation info = %+v", doc.CreationInfo)
	}

	byID := map[common.ElementID]*spdx.Package{}
	idRE := regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
	var app *spdx.Package
	var got []string
	purlOf := map[common.ElementID]string{}
	for _, p := range doc.Packages {
		if byID[p.PackageSPDXIdentifier] != nil {
			t.Errorf("SPDX id %q is used twice", p.PackageSPDXIdentifier)
		}
		if !idRE.MatchString(string(p.PackageSPDXIdentifier)) {
			t.Errorf("SPDX id %q has characters SPDX does not allow", p.PackageSPDXIdentifier)
		}
		byID[p.PackageSPDXIdentifier] = p
		switch p.PrimaryPackagePurpose {
		case "APPLICATION":
			app = p
		case "LIBRARY":
			if len(p.PackageExternalReferences) != 1 || p.PackageExternalReferences[0].Category != "PACKAGE-MANAGER" || p.PackageExternalReferences[0].RefType != "purl" {
				t.Errorf("package %s external refs = %+v, want one purl", p.PackageName, p.PackageExternalReferences)
				continue
			}
			got = append(got, p.PackageExternalReferences[0].Locator)
			purlOf[p.PackageSPDXIdentifier] = p.PackageExternalReferences[0].Locator
		}
	}
	slices.Sort(got)
	diffLists(t, "package purls", got, purls(inv))
	if app == nil || app.PackageName != "hello" || app.PackageVersion != testDigest {
		t.Fatalf("app package = %+v", app)
	}

	var describes []string
	contains := map[string]bool{}
	var dependsOn []string
	for _, r := range doc.Relationships {
		a, b := r.RefA.ElementRefID, r.RefB.ElementRefID
		switch r.Relationship {
		case "DESCRIBES":
			describes = append(describes, string(a)+" "+string(b))
		case "CONTAINS":
			if a != app.PackageSPDXIdentifier {
				t.Errorf("%s CONTAINS %s, want only the app to contain", a, b)
			}
			contains[string(b)] = true
		case "DEPENDS_ON":
			dependsOn = append(dependsOn, purlOf[b])
		default:
			t.Errorf("unexpected relationship %s %s %s", a, r.Relationship, b)
		}
	}
	diffLists(t, "DESCRIBES", describes, []string{"DOCUMENT " + string(app.PackageSPDXIdentifier)})
	for id := range byID {
		if id != app.PackageSPDXIdentifier && !contains[string(id)] {
			t.Errorf("the app does not CONTAIN %s", id)
		}
	}
	slices.Sort(dependsOn)
	diffLists(t, "DEPENDS_ON", dependsOn, directPURLs(inv))

	for _, p := range doc.Packages {
		switch p.PackageName {
		case "libc6":
			if len(p.PackageChecksums) != 1 || p.PackageChecksums[0] != (common.Checksum{Algorithm: common.SHA256, Value: sha256Hex("libc6")}) {
				t.Errorf("libc6 checksums = %+v", p.PackageChecksums)
			}
			if !strings.Contains(p.PackageSourceInfo, "glibc") {
				t.Errorf("libc6 source info = %q, want glibc", p.PackageSourceInfo)
			}
		case "dual":
			if p.PackageLicenseDeclared != "(MIT OR Apache-2.0)" {
				t.Errorf("dual license = %q", p.PackageLicenseDeclared)
			}
		case "example.com/odd":
			if p.PackageLicenseDeclared != "NOASSERTION" || !strings.Contains(p.PackageLicenseComments, "Custom License") {
				t.Errorf("odd license = %q, comments %q: a name that is no SPDX id cannot be declared", p.PackageLicenseDeclared, p.PackageLicenseComments)
			}
		}
	}
}

func TestSPDXDeterministic(t *testing.T) {
	t.Parallel()
	inv := testInventory(t)
	a, err := SPDX(inv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SPDX(shuffled(inv))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("SPDX of the same inventory (in another order) differs")
	}
}

func TestSPDXWithoutImage(t *testing.T) {
	t.Parallel()
	inv := testInventory(t)
	inv.Image = ""
	b, err := SPDX(inv)
	if err != nil {
		t.Fatal(err)
	}
	doc := decodeSPDX(t, b)
	if !regexp.MustCompile(`^https://noops\.dev/spdx/hello/inventory-[0-9a-f]{64}$`).MatchString(doc.DocumentNamespace) {
		t.Errorf("namespace = %q, want one derived from the inventory", doc.DocumentNamespace)
	}
	inv.Components = inv.Components[1:]
	c, err := SPDX(inv)
	if err != nil {
		t.Fatal(err)
	}
	if decodeSPDX(t, c).DocumentNamespace == doc.DocumentNamespace {
		t.Error("two inventories got the same namespace")
	}
}
