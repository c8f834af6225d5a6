package sbom

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRequirements(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		dir    string
		want   []string
		hashes map[string]string // name → SHA-256; "" for none
	}{
		{
			name: "includes, options, extras, markers, hashes",
			dir:  "testdata/pip",
			want: []string{
				"pkg:pypi/acme-tool direct", // -e git+…#egg=acme_tool
				"pkg:pypi/certifi@2023.11.17 direct",
				"pkg:pypi/django-rest-framework@3.14.0 direct", // ===
				"pkg:pypi/flask@3.0.0 direct",
				"pkg:pypi/gunicorn direct", // a range: no version
				"pkg:pypi/idna@3.6 direct",
				"pkg:pypi/numpy direct",  // ==1.26.* is not a pin
				"pkg:pypi/pyyaml direct", // name @ URL
				"pkg:pypi/requests@2.31.0 direct",
				"pkg:pypi/uvicorn direct",
			},
			hashes: map[string]string{
				"flask":   sha256Hex("flask-3.0.0"),
				"idna":    sha256Hex("idna-3.6"), // --hash sha256:… (with a space)
				"certifi": "",                    // two files: which one is installed is unknown
			},
		},
		{
			name: "pip-compile annotations",
			dir:  "testdata/pip-compile",
			want: []string{
				"pkg:pypi/blinker@1.7.0",
				"pkg:pypi/click@8.1.7 direct", // via -r requirements.in and flask
				"pkg:pypi/flask@3.0.0 direct",
				"pkg:pypi/itsdangerous@2.1.2",
			},
			hashes: map[string]string{"click": sha256Hex("click-8.1.7"), "blinker": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := AppDependencies(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			diffLists(t, "components", describe(cs), tc.want)
			for _, c := range cs {
				if want, ok := tc.hashes[c.Name]; ok && c.Hashes["SHA-256"] != want {
					t.Errorf("%s SHA-256 = %q, want %q", c.Name, c.Hashes["SHA-256"], want)
				}
			}
		})
	}
}

func TestRequirementLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       []string
	}{
		{"spaces and parentheses", "Foo.Bar_baz (== 1.0.post1)", []string{"pkg:pypi/foo.bar-baz@1.0.post1 direct"}},
		{"local version", "torch==2.1.0+cpu", []string{"pkg:pypi/torch@2.1.0%2Bcpu direct"}},
		{"epoch", "pkg==1!2.0", []string{"pkg:pypi/pkg@1%212.0 direct"}},
		{"marker only", "pywin32 ; sys_platform == 'win32'", []string{"pkg:pypi/pywin32 direct"}},
		{"not equal is no pin", "a!=1.0", []string{"pkg:pypi/a direct"}},
		{"compatible release", "a~=1.4.2", []string{"pkg:pypi/a direct"}},
		{"two pins", "a==1.0,==1.0", []string{"pkg:pypi/a direct"}},
		{"comment with a hash in a URL", "b @ https://x.example/b.whl#sha256=00 # a comment", []string{"pkg:pypi/b direct"}},
		{"continuation at the end of the file", "c==1.0 \\", []string{"pkg:pypi/c@1.0 direct"}},
		{"global options only", "--no-index\n--find-links ./wheels\n-i https://x\n--require-hashes", []string{}},
		{"a wheel file", "./wheels/foo-1.0-py3-none-any.whl", []string{}},
		{"duplicates fold", "a==1.0\nA==1.0", []string{"pkg:pypi/a@1.0 direct"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, _, err := parseRequirements("requirements.txt", []byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			diffLists(t, "components", describe(merge(cs)), tc.want)
		})
	}
}

func TestRequirementsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty version", "flask==", []string{"requirements.txt line 1", "specifier"}},
		{"unclosed extras", "ok==1\nflask[async==1.0", []string{"line 2", "extras"}},
		{"include without a file", "-r", []string{"line 1", "-r needs a file"}},
		{"bad hash", "a==1 --hash=sha256:zz", []string{"line 1", "sha256"}},
		{"unknown hash algorithm", "a==1 --hash=md6:00", []string{"md6"}},
		{"hash without algorithm", "a==1 --hash=00", []string{"alg:hex"}},
		{"two words", "flask gunicorn", []string{"specifier"}},
		{"missing URL", "a @ ", []string{"URL"}},
		{"not a name", "~=1.0", []string{"invalid requirement"}},
		{"line after continuation", "a==1.0 \\\n  --hash=sha256:00", []string{"line 1", "sha256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := parseRequirements("requirements.txt", []byte(tc.text))
			wantInvalid(t, err, tc.want...)
		})
	}
}

// Includes and symlinks may not reach outside the app folder: the build
// runs as root on the server and must not read its files.
func TestRequirementsStayInside(t *testing.T) {
	t.Parallel()
	outside := writeFiles(t, map[string]string{"secret.txt": "root:x:0:0\n"})
	tests := []struct {
		name  string
		files map[string]string
		link  [2]string // symlink name → target ("" for none)
		want  []string
	}{
		{"include above the folder", map[string]string{"requirements.txt": "-r ../secret.txt\n"}, [2]string{}, []string{"requirements.txt line 1", "outside the app folder"}},
		{"absolute include", map[string]string{"requirements.txt": "-r " + filepath.Join(outside, "secret.txt") + "\n"}, [2]string{}, []string{"outside the app folder"}},
		{"include of a missing file", map[string]string{"requirements.txt": "a==1\n-r missing.txt\n"}, [2]string{}, []string{"line 2", "does not exist"}},
		{"symlinked requirements", nil, [2]string{"requirements.txt", filepath.Join(outside, "secret.txt")}, []string{"requirements.txt", "escapes"}},
		{"symlinked include", map[string]string{"requirements.txt": "-r more.txt\n"}, [2]string{"more.txt", filepath.Join(outside, "secret.txt")}, []string{"more.txt", "escapes"}},
		{"symlinked go.mod", nil, [2]string{"go.mod", filepath.Join(outside, "secret.txt")}, []string{"go.mod", "escapes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			if tc.link[0] != "" {
				if err := os.Symlink(tc.link[1], filepath.Join(dir, tc.link[0])); err != nil {
					t.Fatal(err)
				}
			}
			_, err := AppDependencies(dir)
			wantInvalid(t, err, tc.want...)
		})
	}
}
