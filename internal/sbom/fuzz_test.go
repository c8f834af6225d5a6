package sbom

import (
	"strings"
	"testing"

	"noops/internal/errkind"
)

// checkParsed holds for every parser: an error is Invalid and names the
// file; a result has names and purls.
func checkParsed(t *testing.T, file string, cs []Component, err error) {
	t.Helper()
	if err != nil {
		if !errkind.Is(err, errkind.Invalid) {
			t.Fatalf("err = %v (kind %v), want invalid", err, errkind.Of(err))
		}
		if !strings.Contains(err.Error(), file) {
			t.Fatalf("err = %q does not name %s", err, file)
		}
		return
	}
	for _, c := range cs {
		if c.Name == "" || !strings.HasPrefix(c.PURL, "pkg:"+c.Ecosystem+"/") || c.Kind != KindApp {
			t.Fatalf("parsed component %+v lacks a name, purl or kind", c)
		}
	}
}

func FuzzPackageLock(f *testing.F) {
	for _, name := range []string{"npm-v1/package-lock.json", "npm-v2/package-lock.json", "npm-v3/package-lock.json"} {
		f.Add(readTestdata(f, name), []byte(nil))
	}
	f.Add(readTestdata(f, "npm-v1/package-lock.json"), readTestdata(f, "npm-v1/package.json"))
	f.Add([]byte(`{"lockfileVersion": 3, "packages": {"node_modules/a/node_modules/@s/b": {"version": "1", "os": ["!linux"], "integrity": "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}`), []byte(`{}`))
	f.Add([]byte(`{"lockfileVersion": 1, "dependencies": {"x": {"version": "npm:@a/b@1", "requires": true, "dependencies": {"y": {}}}}}`), []byte(nil))
	f.Fuzz(func(t *testing.T, lock, pkg []byte) {
		cs, err := npmPackages("package-lock.json", lock, pkg)
		if err != nil && strings.Contains(err.Error(), "package.json") {
			return // the package.json was the bad one
		}
		checkParsed(t, "package-lock.json", cs, err)
	})
}

func FuzzRequirements(f *testing.F) {
	for _, name := range []string{"pip/requirements.txt", "pip/requirements/base.txt", "pip/requirements/common.txt", "pip-compile/requirements.txt"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("a[b,c] (>=1, <2) ; python_version < '3' --hash sha256:00\n-e .#egg=x\\\n"))
	f.Add([]byte("x==1  # via\n    #   y\n    #   -r in\n--requirement=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, _, err := parseRequirements("requirements.txt", data)
		checkParsed(t, "requirements.txt", cs, err)
	})
}

func FuzzPoetryLock(f *testing.F) {
	for _, dir := range []string{"poetry-1.1", "poetry-1.8", "poetry-2"} {
		f.Add(readTestdata(f, dir+"/poetry.lock"), []byte(nil))
	}
	f.Add(readTestdata(f, "poetry-1.8/poetry.lock"), readTestdata(f, "poetry-1.8/pyproject.toml"))
	f.Add([]byte("[[package]]\nname = 'a'\nversion = \"1\"\ngroups = [\"dev\"]\n[package.source]\ntype = \"directory\"\n"), readTestdata(f, "pyproject/pyproject.toml"))
	f.Add([]byte("a = \"\"\"\\\n  x\\u00e9\"\"\"\nb = {c = [1, {d = 'e'}]}\n[[x.y]]\n[x.y.z]\n"), []byte(nil))
	f.Fuzz(func(t *testing.T, lock, pyproject []byte) {
		cs, err := poetryPackages("poetry.lock", lock, pyproject)
		if err != nil && strings.Contains(err.Error(), "pyproject.toml") {
			return
		}
		checkParsed(t, "poetry.lock", cs, err)
	})
}

func FuzzPyproject(f *testing.F) {
	for _, dir := range []string{"pyproject", "poetry-1.1", "poetry-1.8"} {
		f.Add(readTestdata(f, dir+"/pyproject.toml"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := pyprojectPackages("pyproject.toml", data)
		checkParsed(t, "pyproject.toml", cs, err)
	})
}

func FuzzGoMod(f *testing.F) {
	f.Add(readTestdata(f, "gomod/go.mod"), readTestdata(f, "gomod/go.sum"))
	f.Add([]byte("module \"m\"\nrequire (\n\t`a` v1 // indirect\n)\nreplace a v1 => ../b\n"), []byte("a v1 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Fuzz(func(t *testing.T, gomod, gosum []byte) {
		cs, err := goModules("go.mod", gomod, "go.sum", gosum)
		if err != nil && strings.Contains(err.Error(), "go.sum") {
			return
		}
		checkParsed(t, "go.mod", cs, err)
	})
}

func FuzzDecode(f *testing.F) {
	// A small seed keeps each run (and the fuzzer's minimization) quick.
	deb := OS{ID: "debian", VersionID: "12", Arch: "amd64"}
	b, err := Encode(Inventory{App: "a", Image: "sha256:00", OS: deb, Components: []Component{
		OSPackage(deb, "libc6", "2.36-9+deb12u4", "", "glibc", "00"),
		{Kind: KindApp, Ecosystem: NPM, Name: "@s/a", Version: "1.0.0", PURL: "pkg:npm/%40s/a@1.0.0", Direct: true, Licenses: []string{"MIT OR ISC"}, Hashes: map[string]string{"SHA-512": "00"}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version": 1, "components": [{"kind": "os", "ecosystem": "deb", "name": "x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Decode(data)
		if err != nil {
			if !errkind.Is(err, errkind.Invalid) {
				t.Fatalf("err = %v, want invalid", err)
			}
			return
		}
		// What decodes renders.
		if _, err := CycloneDX(inv); err != nil {
			t.Fatalf("CycloneDX of a decoded inventory: %v", err)
		}
		if _, err := SPDX(inv); err != nil {
			t.Fatalf("SPDX of a decoded inventory: %v", err)
		}
	})
}
