package sbom

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// CycloneDX renders inv as a CycloneDX 1.6 JSON BOM. metadata.component is
// the app (type application, version = image digest, purl pkg:oci/…); the
// distribution is an operating-system component; every package is a
// library with its purl, licenses and hashes. The dependency graph says
// app → its direct dependencies and the OS, OS → its packages. The serial
// number is derived from the inventory, so equal inventories give equal
// bytes.
func CycloneDX(inv Inventory) ([]byte, error) {
	serial, err := serialUUID(inv)
	if err != nil {
		return nil, err
	}
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + serial
	app := appComponent(inv)
	bom.Metadata = &cdx.Metadata{
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "noops"}}},
		Component: &app,
	}
	if !inv.Created.IsZero() {
		bom.Metadata.Timestamp = inv.Created.UTC().Format(time.RFC3339)
	}

	var comps []cdx.Component
	var appDeps, osDeps []string
	osRef := ""
	if inv.OS.ID != "" {
		osRef = "noops:os/" + inv.OS.ID + "@" + inv.OS.VersionID
		comps = append(comps, cdx.Component{BOMRef: osRef, Type: cdx.ComponentTypeOS, Name: inv.OS.ID, Version: inv.OS.VersionID})
		appDeps = append(appDeps, osRef)
	}
	refs := map[string]bool{app.BOMRef: true, osRef: true}
	for _, c := range sorted(inv.Components) {
		ref := uniqueRef(refs, componentRef(c))
		comps = append(comps, cdxComponent(c, ref))
		switch {
		case c.Kind == KindOS && osRef != "":
			osDeps = append(osDeps, ref)
		case c.Kind == KindApp && c.Direct:
			appDeps = append(appDeps, ref)
		}
	}
	if len(comps) > 0 {
		bom.Components = &comps
	}
	deps := []cdx.Dependency{{Ref: app.BOMRef, Dependencies: sortedRefs(appDeps)}}
	if osRef != "" {
		deps = append(deps, cdx.Dependency{Ref: osRef, Dependencies: sortedRefs(osDeps)})
	}
	bom.Dependencies = &deps

	var b bytes.Buffer
	enc := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("encoding CycloneDX SBOM of %q: %w", inv.App, err)
	}
	return b.Bytes(), nil
}

func appComponent(inv Inventory) cdx.Component {
	c := cdx.Component{
		BOMRef:  "noops:app/" + inv.App,
		Type:    cdx.ComponentTypeApplication,
		Name:    inv.App,
		Version: inv.Image,
	}
	if inv.Image != "" {
		c.PackageURL = purl("oci", "", strings.ToLower(inv.App), inv.Image)
	}
	var props []cdx.Property
	if inv.Stack != "" {
		props = append(props, cdx.Property{Name: "noops:stack", Value: inv.Stack})
	}
	if inv.OS.Arch != "" {
		props = append(props, cdx.Property{Name: "noops:arch", Value: inv.OS.Arch})
	}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

func cdxComponent(c Component, ref string) cdx.Component {
	out := cdx.Component{
		BOMRef:     ref,
		Type:       cdx.ComponentTypeLibrary,
		Name:       c.Name,
		Version:    c.Version,
		PackageURL: c.PURL,
		Licenses:   cdxLicenses(c.Licenses),
	}
	if c.Kind == KindApp {
		out.Scope = cdx.ScopeRequired
	}
	if len(c.Hashes) > 0 {
		var hs []cdx.Hash
		for _, alg := range slicesSortedKeys(c.Hashes) {
			hs = append(hs, cdx.Hash{Algorithm: cdx.HashAlgorithm(alg), Value: c.Hashes[alg]})
		}
		out.Hashes = &hs
	}
	props := []cdx.Property{{Name: "noops:kind", Value: c.Kind}}
	if c.Direct {
		props = append(props, cdx.Property{Name: "noops:direct", Value: "true"})
	}
	if c.Source != "" {
		props = append(props, cdx.Property{Name: "noops:source-package", Value: c.Source})
	}
	out.Properties = &props
	return out
}

var spdxIDRE = regexp.MustCompile(`^[A-Za-z0-9.+-]+$`)

// isLicenseExpression tells an SPDX expression ("MIT OR Apache-2.0") from a
// single identifier.
func isLicenseExpression(s string) bool {
	return strings.ContainsAny(s, "()") || strings.Contains(s, " AND ") || strings.Contains(s, " OR ") || strings.Contains(s, " WITH ")
}

// cdxLicenses: identifiers become license ids, other names license names;
// an expression (CycloneDX allows one, alone) joins them all.
func cdxLicenses(ls []string) *cdx.Licenses {
	if len(ls) == 0 {
		return nil
	}
	if slices.ContainsFunc(ls, isLicenseExpression) {
		if e, ok := spdxExpression(ls); ok {
			return &cdx.Licenses{{Expression: e}}
		}
	}
	var out cdx.Licenses
	for _, l := range ls {
		if spdxIDRE.MatchString(l) {
			out = append(out, cdx.LicenseChoice{License: &cdx.License{ID: l}})
		} else {
			out = append(out, cdx.LicenseChoice{License: &cdx.License{Name: l}})
		}
	}
	return &out
}

// spdxExpression joins licenses into one SPDX expression, or says it cannot
// because one of them is neither an identifier nor an expression.
func spdxExpression(ls []string) (string, bool) {
	if len(ls) == 1 {
		return ls[0], spdxIDRE.MatchString(ls[0]) || isLicenseExpression(ls[0])
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		switch {
		case spdxIDRE.MatchString(l):
			parts[i] = l
		case isLicenseExpression(l):
			parts[i] = "(" + l + ")"
		default:
			return "", false
		}
	}
	return strings.Join(parts, " AND "), true
}

func componentRef(c Component) string {
	if c.PURL != "" {
		return c.PURL
	}
	return "noops:" + c.Kind + "/" + c.Ecosystem + "/" + c.Name + "@" + c.Version
}

// uniqueRef returns ref, or ref with a counter if it is taken, and takes it.
func uniqueRef(taken map[string]bool, ref string) string {
	r := ref
	for i := 2; taken[r]; i++ {
		r = fmt.Sprintf("%s#%d", ref, i)
	}
	taken[r] = true
	return r
}

func sortedRefs(refs []string) *[]string {
	if len(refs) == 0 {
		return nil
	}
	out := slices.Clone(refs)
	slices.Sort(out)
	return &out
}

// serialUUID derives a UUID (version 5 layout) from the inventory's
// neutral form: the same inventory always gets the same serial number.
func serialUUID(inv Inventory) (string, error) {
	b, err := Encode(inv)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]), nil
}
