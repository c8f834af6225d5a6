package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

const noAssertion = "NOASSERTION"

// SPDX renders inv as an SPDX 2.3 JSON document. Its namespace is
// https://noops.dev/spdx/<app>/<image digest> (or, before the image
// exists, a digest of the inventory); the document DESCRIBES the app
// package, which CONTAINS the operating system and every component and
// DEPENDS_ON its direct dependencies. Packages carry purl external
// references, checksums and declared licenses. The output depends only on
// inv: package ids are derived from content, the time is inv.Created.
func SPDX(inv Inventory) ([]byte, error) {
	ns := inv.Image
	if ns == "" {
		b, err := Encode(inv)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		ns = "inventory-" + hex.EncodeToString(sum[:])
	}
	name := inv.App
	if inv.Image != "" {
		name += "@" + inv.Image
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://noops.dev/spdx/" + url.PathEscape(inv.App) + "/" + url.PathEscape(ns),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "noops"}},
			Created:  inv.Created.UTC().Format("2006-01-02T15:04:05Z"),
		},
	}

	appID := common.ElementID("App-" + spdxIDPart(inv.App))
	app := &spdx.Package{
		PackageName:               inv.App,
		PackageSPDXIdentifier:     appID,
		PackageVersion:            inv.Image,
		PackageDownloadLocation:   noAssertion,
		PrimaryPackagePurpose:     "APPLICATION",
		PackageLicenseConcluded:   noAssertion,
		PackageLicenseDeclared:    noAssertion,
		PackageCopyrightText:      noAssertion,
		IsFilesAnalyzedTagPresent: true,
	}
	if inv.Image != "" {
		app.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(purl("oci", "", strings.ToLower(inv.App), inv.Image))}
	}
	doc.Packages = append(doc.Packages, app)
	rel := func(a common.ElementID, typ string, b common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(a)), Relationship: typ, RefB: common.MakeDocElementID("", string(b)),
		})
	}
	rel("DOCUMENT", common.TypeRelationshipDescribe, appID)

	ids := map[common.ElementID]bool{appID: true}
	if inv.OS.ID != "" {
		osID := uniqueID(ids, "OS-"+spdxIDPart(inv.OS.ID+"-"+inv.OS.VersionID))
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName:               inv.OS.ID,
			PackageSPDXIdentifier:     osID,
			PackageVersion:            inv.OS.VersionID,
			PackageDownloadLocation:   noAssertion,
			PrimaryPackagePurpose:     "OPERATING-SYSTEM",
			PackageLicenseConcluded:   noAssertion,
			PackageLicenseDeclared:    noAssertion,
			PackageCopyrightText:      noAssertion,
			IsFilesAnalyzedTagPresent: true,
		})
		rel(appID, common.TypeRelationshipContains, osID)
	}
	for _, c := range sorted(inv.Components) {
		sum := sha256.Sum256([]byte(c.Kind + "\x00" + c.PURL + "\x00" + c.Ecosystem + "\x00" + c.Name + "\x00" + c.Version))
		id := uniqueID(ids, "Package-"+spdxIDPart(c.Ecosystem+"-"+c.Name)+"-"+hex.EncodeToString(sum[:6]))
		doc.Packages = append(doc.Packages, spdxPackage(c, id))
		rel(appID, common.TypeRelationshipContains, id)
		if c.Kind == KindApp && c.Direct {
			rel(appID, common.TypeRelationshipDependsOn, id)
		}
	}

	var b bytes.Buffer
	if err := spdxjson.Write(doc, &b, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("encoding SPDX SBOM of %q: %w", inv.App, err)
	}
	return b.Bytes(), nil
}

func spdxPackage(c Component, id common.ElementID) *spdx.Package {
	p := &spdx.Package{
		PackageName:               c.Name,
		PackageSPDXIdentifier:     id,
		PackageVersion:            c.Version,
		PackageDownloadLocation:   noAssertion,
		PrimaryPackagePurpose:     "LIBRARY",
		PackageLicenseConcluded:   noAssertion,
		PackageLicenseDeclared:    noAssertion,
		PackageCopyrightText:      noAssertion,
		IsFilesAnalyzedTagPresent: true,
	}
	if c.Source != "" {
		p.PackageSourceInfo = "built from source package " + c.Source
	}
	if e, ok := spdxExpression(c.Licenses); ok && len(c.Licenses) > 0 {
		p.PackageLicenseDeclared = e
	} else if len(c.Licenses) > 0 {
		p.PackageLicenseComments = "declared: " + strings.Join(c.Licenses, "; ")
	}
	algs := map[string]common.ChecksumAlgorithm{
		"MD5": common.MD5, "SHA-1": common.SHA1, "SHA-256": common.SHA256, "SHA-384": common.SHA384, "SHA-512": common.SHA512,
	}
	for _, k := range slicesSortedKeys(c.Hashes) {
		if alg, ok := algs[k]; ok {
			p.PackageChecksums = append(p.PackageChecksums, common.Checksum{Algorithm: alg, Value: c.Hashes[k]})
		}
	}
	if c.PURL != "" {
		p.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(c.PURL)}
	}
	return p
}

func purlRef(p string) *spdx.PackageExternalReference {
	return &spdx.PackageExternalReference{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: p}
}

var spdxIDBad = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxIDPart makes s usable in an SPDX identifier ([A-Za-z0-9.-]).
func spdxIDPart(s string) string {
	s = strings.Trim(spdxIDBad.ReplaceAllString(s, "-"), "-")
	if s == "" {
		return "x"
	}
	return s
}

func uniqueID(taken map[common.ElementID]bool, id string) common.ElementID {
	r := common.ElementID(id)
	for i := 2; taken[r]; i++ {
		r = common.ElementID(fmt.Sprintf("%s-%d", id, i))
	}
	taken[r] = true
	return r
}
