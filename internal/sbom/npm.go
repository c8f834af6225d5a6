package sbom

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"noops/internal/errkind"
)

type npmLock struct {
	LockfileVersion int                   `json:"lockfileVersion"`
	Packages        map[string]npmPackage `json:"packages"`     // lockfileVersion 2 and 3
	Dependencies    map[string]npmDepV1   `json:"dependencies"` // lockfileVersion 1 (and 2)
}

// npmPackage is an entry of "packages", keyed by its folder.
type npmPackage struct {
	Name                 string            `json:"name"` // set for aliases and workspace folders
	Version              string            `json:"version"`
	Integrity            string            `json:"integrity"`
	Dev                  bool              `json:"dev"`
	Link                 bool              `json:"link"`
	License              json.RawMessage   `json:"license"`
	OS                   json.RawMessage   `json:"os"`
	Dependencies         map[string]string `json:"dependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
}

// npmDepV1 is an entry of lockfileVersion 1's nested "dependencies".
type npmDepV1 struct {
	Version      string              `json:"version"`
	Integrity    string              `json:"integrity"`
	Dev          bool                `json:"dev"`
	Requires     json.RawMessage     `json:"requires"` // an object; true in npm 5's root
	Dependencies map[string]npmDepV1 `json:"dependencies"`
}

type packageJSON struct {
	Dependencies         map[string]string `json:"dependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
}

// npmPackages returns the production packages of a package-lock.json (or
// npm-shrinkwrap.json). pkg, the package.json beside it, may be nil; it
// tells which packages are direct when the lockfile does not.
//
// Dev dependencies are left out. Links and workspace folders are the app's
// own code and are left out too (their dependencies are not). Packages that
// declare an "os" list without Linux cannot be installed and are left out.
func npmPackages(name string, data, pkg []byte) ([]Component, error) {
	var lock npmLock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "parsing %s: %s", name, jsonErrorAt(data, err))
	}
	var direct map[string]bool
	if len(pkg) > 0 {
		var p packageJSON
		if err := json.Unmarshal(pkg, &p); err != nil {
			return nil, errkind.Errorf(errkind.Invalid, "parsing package.json: %s", jsonErrorAt(pkg, err))
		}
		direct = depNames(p.Dependencies, p.OptionalDependencies, p.PeerDependencies)
	}
	switch {
	case lock.LockfileVersion < 1 || lock.LockfileVersion > 3:
		return nil, errkind.Errorf(errkind.Invalid, "parsing %s: lockfileVersion %d is not 1, 2 or 3", name, lock.LockfileVersion)
	case lock.Packages != nil:
		return npmPackagesV2(name, data, lock.Packages, direct)
	default:
		return npmPackagesV1(name, data, lock.Dependencies, direct)
	}
}

func depNames(maps ...map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, m := range maps {
		for k := range m {
			out[k] = true
		}
	}
	return out
}

func npmPackagesV2(name string, data []byte, pkgs map[string]npmPackage, rootDirect map[string]bool) ([]Component, error) {
	// Owners are the root and the workspace folders: what they depend on
	// and install in their own node_modules is direct. The root's list
	// comes from package.json when the lockfile has no "" entry.
	owners := map[string]map[string]bool{"": rootDirect}
	for path, p := range pkgs {
		if path == "" || (!p.Link && !strings.Contains("/"+path, "/node_modules/")) {
			owners[path] = depNames(p.Dependencies, p.OptionalDependencies, p.PeerDependencies)
		}
	}
	directNames := map[string]bool{}
	for _, names := range owners {
		for n := range names {
			directNames[n] = true
		}
	}
	var out []Component
	for _, path := range slicesSortedKeys(pkgs) {
		p := pkgs[path]
		if _, owner := owners[path]; owner || p.Link || p.Dev {
			continue
		}
		i := strings.LastIndex("/"+path, "/node_modules/")
		parent, folderName := strings.TrimSuffix(path[:i], "/"), path[i+len("node_modules/"):]
		pkgName := folderName
		if p.Name != "" {
			pkgName = p.Name // an alias: "node_modules/foo" installs "bar"
		}
		if err := checkNPMName(pkgName); err != nil {
			return nil, invalid(name, lineOfKey(data, path), "package %q: %v", path, err)
		}
		ok, err := npmOSAllowsLinux(p.OS)
		if err != nil {
			return nil, invalid(name, lineOfKey(data, path), "package %q: %v", path, err)
		}
		if !ok {
			continue
		}
		_, parentIsOwner := owners[parent]
		c, err := npmComponent(pkgName, p.Version, p.Integrity, parentIsOwner && directNames[folderName])
		if err != nil {
			return nil, invalid(name, lineOfKey(data, path), "package %q: %v", path, err)
		}
		c.Licenses = npmLicense(p.License)
		out = append(out, c)
	}
	return merge(out), nil
}

func npmPackagesV1(name string, data []byte, deps map[string]npmDepV1, direct map[string]bool) ([]Component, error) {
	if direct == nil {
		// Without package.json, the top-level packages nothing requires
		// must be the app's own dependencies.
		required := map[string]bool{}
		var walk func(map[string]npmDepV1)
		walk = func(ds map[string]npmDepV1) {
			for _, d := range ds {
				var req map[string]string
				if json.Unmarshal(d.Requires, &req) == nil {
					for n := range req {
						required[n] = true
					}
				}
				walk(d.Dependencies)
			}
		}
		walk(deps)
		direct = map[string]bool{}
		for n := range deps {
			direct[n] = !required[n]
		}
	}
	var out []Component
	var walk func(ds map[string]npmDepV1, top bool) error
	walk = func(ds map[string]npmDepV1, top bool) error {
		for _, folderName := range slicesSortedKeys(ds) {
			d := ds[folderName]
			if d.Dev {
				continue
			}
			if err := walk(d.Dependencies, false); err != nil {
				return err
			}
			pkgName, version := folderName, d.Version
			if alias, ok := strings.CutPrefix(version, "npm:"); ok {
				at := strings.LastIndexByte(alias, '@')
				if at <= 0 {
					return invalid(name, lineOfKey(data, folderName), "package %q: alias %q has no version", folderName, d.Version)
				}
				pkgName, version = alias[:at], alias[at+1:]
			}
			if strings.HasPrefix(version, "file:") || strings.HasPrefix(version, "link:") {
				continue // the app's own code
			}
			if err := checkNPMName(pkgName); err != nil {
				return invalid(name, lineOfKey(data, folderName), "package %q: %v", folderName, err)
			}
			c, err := npmComponent(pkgName, version, d.Integrity, top && direct[folderName])
			if err != nil {
				return invalid(name, lineOfKey(data, folderName), "package %q: %v", folderName, err)
			}
			out = append(out, c)
		}
		return nil
	}
	if err := walk(deps, true); err != nil {
		return nil, err
	}
	return merge(out), nil
}

func npmComponent(name, version, integrity string, direct bool) (Component, error) {
	c := Component{
		Kind: KindApp, Ecosystem: NPM, Name: name, Version: version,
		PURL: appPURL(NPM, name, version), Direct: direct,
	}
	h, err := sriHashes(integrity)
	if err != nil {
		return Component{}, err
	}
	c.Hashes = h
	return c, nil
}

// checkNPMName accepts "name" and "@scope/name" (without further slashes).
func checkNPMName(n string) error {
	bad := n == "" || strings.ContainsAny(n, " \t\r\n\\") || strings.HasPrefix(n, ".")
	if scope, rest, ok := strings.Cut(n, "/"); ok {
		bad = bad || !strings.HasPrefix(scope, "@") || len(scope) < 2 || rest == "" || strings.Contains(rest, "/")
	} else {
		bad = bad || strings.HasPrefix(n, "@")
	}
	if bad {
		return errorString("invalid package name " + strconv.Quote(n))
	}
	return nil
}

// sriHashes decodes a Subresource Integrity string ("sha512-BASE64 sha1-…")
// into hex digests keyed by CycloneDX algorithm names.
func sriHashes(integrity string) (map[string]string, error) {
	algs := map[string]string{"sha1": "SHA-1", "sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512"}
	sizes := map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
	var out map[string]string
	for _, f := range strings.Fields(integrity) {
		alg, b64, ok := strings.Cut(f, "-")
		if !ok {
			return nil, errorString("invalid integrity " + strconv.Quote(f))
		}
		name, known := algs[alg]
		if !known {
			continue
		}
		b64, _, _ = strings.Cut(b64, "?") // SRI options
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sum) != sizes[alg] {
			return nil, errorString("invalid " + alg + " integrity " + strconv.Quote(b64))
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = hex.EncodeToString(sum)
	}
	return out, nil
}

// npmLicense reads "license": "MIT" (or the older {"type": "MIT"}).
func npmLicense(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var o struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &o) != nil {
			return nil
		}
		s = o.Type
	}
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	return []string{s}
}

// npmOSAllowsLinux reads a package's "os" list ("linux", "!win32"…).
func npmOSAllowsLinux(raw json.RawMessage) (bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return true, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return false, errorString("\"os\" is not a list of strings")
		}
		list = []string{one}
	}
	if len(list) == 0 {
		return true, nil
	}
	allowed := true // only negations: everything else is allowed
	for _, o := range list {
		switch {
		case o == "linux":
			return true, nil
		case o == "!linux":
			return false, nil
		case !strings.HasPrefix(o, "!"):
			allowed = false
		}
	}
	return allowed, nil
}

// lineOfKey finds the line where the JSON key k first appears, or 1.
func lineOfKey(data []byte, k string) int {
	q, _ := json.Marshal(k)
	i := bytes.Index(data, append(q, ':'))
	if i < 0 {
		i = bytes.Index(data, q)
	}
	if i < 0 {
		return 1
	}
	line, _ := lineCol(data, i)
	return line
}

func slicesSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
