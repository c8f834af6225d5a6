package sbom

import (
	"fmt"
	"testing"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	deb := OS{ID: "debian", VersionID: "12", Arch: "amd64"}
	pkg := func(name, version string) Component { return OSPackage(deb, name, version, "amd64", "", "") }
	npm := func(name, version string) Component {
		return Component{Kind: KindApp, Ecosystem: NPM, Name: name, Version: version, PURL: appPURL(NPM, name, version)}
	}
	inv := func(cs ...Component) Inventory { return Inventory{App: "a", OS: deb, Components: cs} }
	show := func(d Diff) string {
		s := ""
		for _, c := range d.Added {
			s += "+" + c.Name + "@" + c.Version + " "
		}
		for _, c := range d.Removed {
			s += "-" + c.Name + "@" + c.Version + " "
		}
		for _, c := range d.Changed {
			s += fmt.Sprintf("~%s/%s:%s>%s ", c.Kind, c.Name, c.From, c.To)
		}
		return s
	}
	tests := []struct {
		name     string
		old, new Inventory
		kind     string
		want     string
	}{
		{"same", inv(pkg("libc6", "1"), npm("a", "1")), inv(npm("a", "1"), pkg("libc6", "1")), "", ""},
		{"patched OS package", inv(pkg("libc6", "1"), pkg("tzdata", "1")), inv(pkg("libc6", "2"), pkg("tzdata", "1")), KindOS, "~os/libc6:1>2 "},
		{"added and removed", inv(pkg("libc6", "1"), pkg("old", "1")), inv(pkg("libc6", "1"), pkg("new", "1")), "", "+new@1 -old@1 "},
		{"kind filters", inv(pkg("libc6", "1"), npm("a", "1")), inv(pkg("libc6", "2"), npm("a", "2"), npm("b", "1")), KindApp, "+b@1 ~app/a:1>2 "},
		{"os kind ignores app changes", inv(npm("a", "1")), inv(npm("a", "2")), KindOS, ""},
		{"several versions side by side", inv(npm("ms", "2.0.0"), npm("ms", "2.1.3")), inv(npm("ms", "2.1.3"), npm("ms", "2.1.3"), npm("ms", "2.0.1")), "", "~app/ms:2.0.0, 2.1.3>2.0.1, 2.1.3 "},
		{"same name in two ecosystems", inv(pkg("yaml", "1")), inv(pkg("yaml", "1"), Component{Kind: KindApp, Ecosystem: PyPI, Name: "yaml", Version: "1"}), "", "+yaml@1 "},
		{"sorted output", inv(), inv(npm("b", "1"), pkg("z", "1"), npm("a", "1")), "", "+a@1 +b@1 +z@1 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := Compare(tc.old, tc.new, tc.kind)
			if got := show(d); got != tc.want {
				t.Errorf("Compare(…, %q) = %q, want %q", tc.kind, got, tc.want)
			}
			if d.Empty() != (tc.want == "") {
				t.Errorf("Empty() = %v for %q", d.Empty(), tc.want)
			}
		})
	}
}
