package sbom

import (
	"testing"
)

func TestGoModules(t *testing.T) {
	t.Parallel()
	cs, err := goModules("go.mod", readTestdata(t, "gomod/go.mod"), "go.sum", readTestdata(t, "gomod/go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	diffLists(t, "components", describe(cs), []string{
		"pkg:golang/github.com/Azure/go-autorest@v14.2.0%2Bincompatible",
		"pkg:golang/github.com/go-chi/chi/v5@v5.0.12 direct",
		"pkg:golang/github.com/google/uuid@v1.6.0 direct",
		"pkg:golang/github.com/local/thing direct", // replaced by ./thing: the app's own code
		"pkg:golang/github.com/new/lib@v1.2.0 direct",
		"pkg:golang/github.com/pkg/errors@v0.9.1",
		"pkg:golang/golang.org/x/text@v0.14.0",
	})
	for _, tc := range []struct{ name, version, hash string }{
		{"github.com/go-chi/chi/v5", "v5.0.12", sha256Hex("github.com/go-chi/chi/v5v5.0.12")},
		{"github.com/new/lib", "v1.2.0", sha256Hex("github.com/new/libv1.2.0")},
		{"github.com/Azure/go-autorest", "v14.2.0+incompatible", sha256Hex("github.com/Azure/go-autorestv14.2.0+incompatible")},
		{"github.com/local/thing", "", ""},
	} {
		c := find(t, cs, tc.name, tc.version)
		if got := c.Hashes["SHA-256"]; got != tc.hash {
			t.Errorf("%s hash = %q, want %q (from go.sum h1)", tc.name, got, tc.hash)
		}
		if c.Kind != KindApp || c.Ecosystem != Golang {
			t.Errorf("%s kind, ecosystem = %q, %q", tc.name, c.Kind, c.Ecosystem)
		}
	}
}

func TestGoModulesReplace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		gomod string
		want  []string
	}{
		{"version-specific replace wins", "module m\nrequire a.com/x v1.0.0\nreplace a.com/x => b.com/x v3.0.0\nreplace a.com/x v1.0.0 => c.com/x v2.0.0\n",
			[]string{"pkg:golang/c.com/x@v2.0.0 direct"}},
		{"replace of another version does not apply", "module m\nrequire a.com/x v1.0.0\nreplace a.com/x v0.9.0 => c.com/x v2.0.0\n",
			[]string{"pkg:golang/a.com/x@v1.0.0 direct"}},
		{"quoted paths and raw strings", "module `m`\nrequire \"a.com/x\" v1.0.0 // indirect\n",
			[]string{"pkg:golang/a.com/x@v1.0.0"}},
		{"indirect with more words", "module m\nrequire (\n\ta.com/x v1.0.0 // indirect; needed by y\n\ta.com/y v1.0.0 // not indirect\n)\n",
			[]string{"pkg:golang/a.com/x@v1.0.0", "pkg:golang/a.com/y@v1.0.0 direct"}},
		{"unknown directives and CRLF", "module m\r\nfuture thing\r\ntool a.com/t\r\nrequire a.com/x v1.0.0\r\n",
			[]string{"pkg:golang/a.com/x@v1.0.0 direct"}},
		{"no requirements", "module m\n\ngo 1.22\n", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := goModules("go.mod", []byte(tc.gomod), "go.sum", nil)
			if err != nil {
				t.Fatal(err)
			}
			diffLists(t, "components", describe(cs), tc.want)
		})
	}
}

func TestGoModInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, gomod, gosum string
		want               []string
	}{
		{"unclosed block", "module m\nrequire (\n\ta.com/x v1.0.0\n", "", []string{"go.mod line 2", "not closed"}},
		{"stray paren", "module m\n)\n", "", []string{"go.mod line 2", `")"`}},
		{"require without version", "module m\nrequire a.com/x\n", "", []string{"go.mod line 2", "usage"}},
		{"version without v", "module m\nrequire a.com/x 1.0.0\n", "", []string{"go.mod line 2", `"1.0.0"`}},
		{"replace without arrow", "module m\nreplace a.com/x v1.0.0 b.com/x v1.0.0\n", "", []string{"go.mod line 2", "usage: replace"}},
		{"replacement module without version", "module m\nreplace a.com/x => b.com/x\n", "", []string{"go.mod line 2", "must be a folder"}},
		{"unterminated quote", "module m\nrequire \"a.com/x v1.0.0\n", "", []string{"go.mod line 2", "unterminated"}},
		{"text after closing paren", "require (\n) x\n", "", []string{"go.mod line 2"}},
		{"nested open paren", "require (\n\t( x\n)\n", "", []string{"go.mod line 2"}},
		{"go.sum line with two fields", "module m\n", "a.com/x v1.0.0\n", []string{"go.sum line 1", "fields"}},
		{"go.sum bad h1", "module m\n", "a.com/x v1.0.0 h1:abc\n", []string{"go.sum line 1", "h1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := goModules("go.mod", []byte(tc.gomod), "go.sum", []byte(tc.gosum))
			wantInvalid(t, err, tc.want...)
		})
	}
}

func TestGoModulesWithoutSum(t *testing.T) {
	t.Parallel()
	cs, err := goModules("go.mod", readTestdata(t, "gomod/go.mod"), "go.sum", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 7 {
		t.Errorf("got %d modules, want 7: %v", len(cs), describe(cs))
	}
	for _, c := range cs {
		if c.Hashes != nil {
			t.Errorf("%s has hashes %v without a go.sum", c.Name, c.Hashes)
		}
	}
}
