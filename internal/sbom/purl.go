package sbom

import (
	"regexp"
	"slices"
	"strings"
)

// purlEscape percent-encodes s for use in a purl's namespace segment, name,
// version or qualifier value. Per the purl specification only the
// unreserved characters (A–Z a–z 0–9 . - _ ~) and the colon stay as they
// are; everything else, including '+', '@', '/', '?', '#', '%' and spaces,
// is encoded byte by byte in uppercase hex.
func purlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '-', c == '_', c == '~', c == ':':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// purl builds "pkg:type/namespace/name@version?k=v&…". Each namespace
// segment is encoded separately; qualifiers are given in pairs, sorted by
// key as the specification requires, and empty values are left out.
func purl(typ, namespace, name, version string, qualifiers ...[2]string) string {
	var b strings.Builder
	b.WriteString("pkg:")
	b.WriteString(typ)
	b.WriteByte('/')
	for seg := range strings.SplitSeq(strings.Trim(namespace, "/"), "/") {
		if seg != "" {
			b.WriteString(purlEscape(seg))
			b.WriteByte('/')
		}
	}
	b.WriteString(purlEscape(name))
	if version != "" {
		b.WriteByte('@')
		b.WriteString(purlEscape(version))
	}
	sep := byte('?')
	qs := slices.Clone(qualifiers)
	slices.SortStableFunc(qs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	for _, q := range qs {
		if q[1] == "" {
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(strings.ToLower(q[0]))
		b.WriteByte('=')
		b.WriteString(purlEscape(q[1]))
	}
	return b.String()
}

// appPURL is the purl of an app dependency. Go module paths split at the
// last slash into namespace and name; npm scopes ("@scope/name") become the
// namespace; PyPI names are normalized as the purl spec asks.
func appPURL(ecosystem, name, version string) string {
	switch ecosystem {
	case Golang, NPM:
		ns, n := "", name
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			ns, n = name[:i], name[i+1:]
		}
		return purl(ecosystem, ns, n, version)
	case PyPI:
		return purl(PyPI, "", pypiName(name), version)
	}
	return purl(ecosystem, "", name, version)
}

// pypiName normalizes a Python distribution name as the purl spec asks:
// lowercase, with underscores replaced by dashes.
func pypiName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// OSPackage returns the component of a Debian package installed in a stack:
// pkg:deb/<distro id>/<name>@<version>?arch=<arch>&distro=<id>-<version id>,
// with upstream=<source> when the package was built from a differently
// named (or versioned) source package. source is dpkg's Source field,
// "name" or "name (version)"; sha256 is the .deb's digest in hex, if known.
// An empty arch defaults to the distribution's architecture.
func OSPackage(distro OS, name, version, arch, source, sha256 string) Component {
	if arch == "" {
		arch = distro.Arch
	}
	id := strings.ToLower(distro.ID)
	if id == "" {
		id = "debian"
	}
	dist := ""
	if distro.VersionID != "" {
		dist = id + "-" + distro.VersionID
	}
	upstream := ""
	if srcName, srcVersion := splitSource(source); srcName != "" {
		switch {
		case srcVersion != "" && srcVersion != version:
			upstream = srcName + "@" + srcVersion
		case srcName != name:
			upstream = srcName
		}
	}
	c := Component{
		Kind:      KindOS,
		Ecosystem: Deb,
		Name:      name,
		Version:   version,
		PURL:      purl(Deb, id, name, version, [2]string{"arch", arch}, [2]string{"distro", dist}, [2]string{"upstream", upstream}),
		Source:    strings.TrimSpace(source),
	}
	if sha256 != "" {
		c.Hashes = map[string]string{"SHA-256": strings.ToLower(sha256)}
	}
	return c
}

var sourceRE = regexp.MustCompile(`^\s*(\S+)\s*(?:\(\s*([^()\s]+)\s*\))?\s*$`)

// splitSource splits dpkg's "glibc (2.36-9+deb12u4)" into name and version.
func splitSource(s string) (name, version string) {
	m := sourceRE.FindStringSubmatch(s)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}
