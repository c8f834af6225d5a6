package stack

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func TestCopySources(t *testing.T) {
	t.Parallel()
	host, dir := t.TempDir(), t.TempDir()
	files := map[string]string{
		"sources.list":                                       "deb http://deb.debian.org/debian bookworm main\n",
		"sources.list.d/debian.sources":                      "Types: deb\n",
		"sources.list.d/extra.list":                          "deb http://example.org/ x main\n",
		"sources.list.d/nodesource.sources.disabled-by-farm": "Types: deb\n",
		"sources.list.d/google.list.disabled":                "deb x\n",
		"sources.list.d/old.list.save":                       "deb x\n",
		"sources.list.d/.hidden.list":                        "deb x\n",
		"sources.list.d/README":                              "x\n",
	}
	for n, b := range files {
		p := filepath.Join(host, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A stale copy of a source the host no longer has goes away.
	if err := os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sources.list.d", "gone.list"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copySources(host, dir); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(filepath.Join(dir, "sources.list.d"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if want := []string{"debian.sources", "extra.list"}; !reflect.DeepEqual(got, want) {
		t.Errorf("copied sources %v, want %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sources.list")); string(b) != files["sources.list"] {
		t.Errorf("sources.list = %q", b)
	}
}

func TestCopySourcesWithoutHostSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copySources(t.TempDir(), dir); err != nil {
		t.Fatalf("copySources from an empty /etc/apt: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sources.list")); err != nil || len(b) != 0 {
		t.Errorf("sources.list = %q, %v; want an empty file", b, err)
	}
}

func TestIndexTargets(t *testing.T) {
	t.Parallel()
	dump := `Acquire::IndexTargets "";
Acquire::IndexTargets::deb "";
Acquire::IndexTargets::deb::Packages "";
Acquire::IndexTargets::deb::Packages::MetaKey "$(COMPONENT)/binary-$(ARCHITECTURE)/Packages";
Acquire::IndexTargets::deb::Translations "";
Acquire::IndexTargets::deb::DEP-11 "";
Acquire::IndexTargets::deb-src::Sources "";
APT::Architecture "amd64";`
	want := []string{"deb-src::Sources", "deb::DEP-11", "deb::Packages", "deb::Translations"}
	if got := indexTargets(dump); !reflect.DeepEqual(got, want) {
		t.Errorf("indexTargets = %v, want %v", got, want)
	}
}

func TestBaseConfKeepsTheHostUntouched(t *testing.T) {
	t.Parallel()
	a := &apt{dir: "/data/stacks/apt", arch: "arm64"}
	conf := a.baseConf()
	for _, want := range []string{
		`Dir::State "/data/stacks/apt/state";`,
		`Dir::State::status "/data/stacks/apt/state/status";`,
		`Dir::Cache "/data/stacks/apt/cache";`,
		`Dir::Etc::SourceParts "/data/stacks/apt/sources.list.d";`,
		`Dir::Etc::PreferencesParts "/data/stacks/apt/preferences.d";`,
		`APT::Architecture "arm64";`,
		`#clear APT::Update::Post-Invoke;`,
		`#clear DPkg::Post-Invoke;`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("apt.conf lacks %s", want)
		}
	}
	for _, line := range strings.Split(conf, "\n") {
		if strings.Contains(line, "/var/") || strings.Contains(line, "/etc/apt") {
			t.Errorf("apt.conf points at the host's state: %s", line)
		}
	}
}

func TestSourceFile(t *testing.T) {
	t.Parallel()
	var got []string
	for _, n := range []string{"a.list", "b.sources", "c.list.disabled", "d.sources.disabled-by-farm", "e.conf", ".f.list", "g.list~"} {
		if sourceFile(n) {
			got = append(got, n)
		}
	}
	if want := []string{"a.list", "b.sources"}; !slices.Equal(got, want) {
		t.Errorf("source files %v, want %v", got, want)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"short", "E: x", 100, "E: x"},
		{"from a line start", "W: one\nE: two\nE: three", 14, "…E: three"},
		{"one long line", strings.Repeat("x", 10), 4, "…xxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tail(tc.in, tc.n); got != tc.want {
				t.Errorf("tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestMissingToolIsUnavailable(t *testing.T) {
	t.Parallel()
	err := tools("apt-get", "noops-no-such-program")
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "noops-no-such-program") ||
		!strings.Contains(errkind.HintOf(err), "apt-get install") {
		t.Errorf("tools with a missing program: %v (hint %q), want unavailable naming it, with a hint", err, errkind.HintOf(err))
	}
}

func TestAptFailure(t *testing.T) {
	t.Parallel()
	stderr := "W: Download is performed unsandboxed as root as file 'x' couldn't be accessed by user '_apt'.\nE: Failed to fetch http://h/x  Connection refused\n"
	err := aptFailure("apt-get", []string{"-q", "update"}, stderr, errors.New("exit status 100"))
	want := "apt-get -q update: exit status 100: E: Failed to fetch http://h/x  Connection refused"
	if err.Error() != want {
		t.Errorf("aptFailure = %q, want %q", err, want)
	}
	long := aptFailure("apt-get", strings.Fields("download a b c d e f g"), "", errors.New("x"))
	if want := "apt-get download a b c d e …: x"; long.Error() != want {
		t.Errorf("aptFailure = %q, want %q", long, want)
	}
}
