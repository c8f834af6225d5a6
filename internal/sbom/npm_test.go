package sbom

import (
	"slices"
	"testing"
)

func TestNPMPackages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lock     string
		pkg      string // package.json beside it, "" for none
		want     []string
		licenses map[string][]string // name@version → licenses
	}{
		{
			name: "lockfile v1 with package.json", lock: "npm-v1/package-lock.json", pkg: "npm-v1/package.json",
			want: []string{
				"pkg:npm/%40fastify/ajv-compiler@3.5.0 direct",
				"pkg:npm/ajv@8.12.0",
				"pkg:npm/debug@2.6.9",
				"pkg:npm/express@4.18.2 direct",
				"pkg:npm/fast-deep-equal@3.1.3",
				"pkg:npm/lodash@4.17.21 direct", // installed as my-lodash (an alias)
				"pkg:npm/ms@2.0.0",
				"pkg:npm/ms@2.1.3", // nested under send
				"pkg:npm/send@0.18.0",
			},
		},
		{
			name: "lockfile v1 without package.json", lock: "npm-v1/package-lock.json",
			want: []string{
				"pkg:npm/%40fastify/ajv-compiler@3.5.0 direct",
				"pkg:npm/ajv@8.12.0",
				"pkg:npm/debug@2.6.9",
				"pkg:npm/express@4.18.2 direct",
				"pkg:npm/fast-deep-equal@3.1.3",
				"pkg:npm/lodash@4.17.21 direct",
				"pkg:npm/ms@2.0.0",
				"pkg:npm/ms@2.1.3",
				"pkg:npm/send@0.18.0",
			},
		},
		{
			name: "lockfile v2", lock: "npm-v2/package-lock.json",
			want: []string{
				"pkg:npm/%40esbuild/linux-x64@0.19.11", // optional, for Linux
				"pkg:npm/%40fastify/ajv-compiler@3.5.0 direct",
				"pkg:npm/ajv@8.12.0",
				"pkg:npm/debug@2.6.9",
				"pkg:npm/dual@1.0.0",
				"pkg:npm/express@4.18.2 direct",
				"pkg:npm/fast-deep-equal@3.1.3",
				"pkg:npm/ms@2.0.0",
				"pkg:npm/ms@2.1.3",
				"pkg:npm/nan@2.18.0", // devOptional: installed without dev
				"pkg:npm/send@0.18.0",
			},
			licenses: map[string][]string{"express@4.18.2": {"MIT"}, "dual@1.0.0": {"(MIT OR Apache-2.0)"}},
		},
		{
			name: "lockfile v3 with workspaces", lock: "npm-v3/package-lock.json",
			want: []string{
				"pkg:npm/express@4.17.3 direct", // packages/api/node_modules/express
				"pkg:npm/express@4.18.2 direct",
				"pkg:npm/string-width@4.2.3 direct", // alias string-width-cjs, a dependency of a workspace
				"pkg:npm/string-width@5.1.2",
				"pkg:npm/tslib@2.6.2 direct",
				"pkg:npm/wrap-ansi@8.1.0 direct",
				"pkg:npm/zod@3.22.4 direct",
			},
			licenses: map[string][]string{"tslib@2.6.2": {"0BSD"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var pkg []byte
			if tc.pkg != "" {
				pkg = readTestdata(t, tc.pkg)
			}
			cs, err := npmPackages("package-lock.json", readTestdata(t, tc.lock), pkg)
			if err != nil {
				t.Fatal(err)
			}
			diffLists(t, "components", describe(cs), tc.want)
			for _, c := range cs {
				if c.Kind != KindApp || c.Ecosystem != NPM {
					t.Errorf("%s: kind, ecosystem = %q, %q", c.PURL, c.Kind, c.Ecosystem)
				}
				if want := sha512Hex(c.Name + "@" + c.Version); c.Name != "ms" && c.Hashes["SHA-512"] != want {
					t.Errorf("%s: SHA-512 = %q, want %q", c.PURL, c.Hashes["SHA-512"], want)
				}
				if want, ok := tc.licenses[c.Name+"@"+c.Version]; ok && !slices.Equal(c.Licenses, want) {
					t.Errorf("%s: licenses = %q, want %q", c.PURL, c.Licenses, want)
				}
			}
		})
	}
}

func TestNPMSHA1Integrity(t *testing.T) {
	t.Parallel()
	cs, err := npmPackages("package-lock.json", readTestdata(t, "npm-v1/package-lock.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := find(t, cs, "ms", "2.0.0")
	if got, want := len(c.Hashes["SHA-1"]), 40; got != want {
		t.Errorf("ms@2.0.0 SHA-1 = %q, want %d hex digits", c.Hashes["SHA-1"], want)
	}
}

func TestNPMInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, lock string
		want       []string
	}{
		{"not JSON", "{\n  \"lockfileVersion\": 3,\n  \"packages\": {,}\n}", []string{"package-lock.json", "line 3"}},
		{"wrong type", "{\n\"lockfileVersion\": 3,\n\"packages\": {\"node_modules/a\": {\"version\": 1}}}", []string{"package-lock.json", "line 3", "version"}},
		{"no lockfileVersion", `{"packages": {}}`, []string{"lockfileVersion 0"}},
		{"future lockfileVersion", `{"lockfileVersion": 4, "packages": {}}`, []string{"lockfileVersion 4"}},
		{"empty package name", "{\"lockfileVersion\": 3,\n\"packages\": {\n\"node_modules/\": {\"version\": \"1.0.0\"}}}", []string{"line 3", "invalid package name"}},
		{"bad scope", `{"lockfileVersion": 3, "packages": {"node_modules/@/x": {"version": "1.0.0"}}}`, []string{"invalid package name"}},
		{"bad integrity", "{\"lockfileVersion\": 2,\n\"packages\": {\n\"node_modules/a\": {\"version\": \"1.0.0\", \"integrity\": \"sha512-nope\"}}}", []string{"line 3", "integrity"}},
		{"os not a list", `{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.0", "os": 5}}}`, []string{`"os"`}},
		{"v1 alias without version", "{\"lockfileVersion\": 1,\n\"dependencies\": {\"a\": {\"version\": \"npm:lodash\"}}}", []string{"line 2", "alias"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := npmPackages("package-lock.json", []byte(tc.lock), nil)
			wantInvalid(t, err, tc.want...)
		})
	}
}

func TestNPMRootFromPackageJSON(t *testing.T) {
	t.Parallel()
	lock := `{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.0"}, "node_modules/b": {"version": "2.0.0"}}}`
	cs, err := npmPackages("package-lock.json", []byte(lock), []byte(`{"dependencies": {"a": "^1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	diffLists(t, "components", describe(cs), []string{"pkg:npm/a@1.0.0 direct", "pkg:npm/b@2.0.0"})
}
