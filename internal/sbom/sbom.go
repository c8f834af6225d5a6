// Package sbom says what an image contains. It gathers an Inventory (the
// OS packages of the stack plus the app's dependencies read from go.mod,
// package-lock.json, requirements.txt, poetry.lock or pyproject.toml),
// stores it in a small versioned JSON form kept with each release, renders it
// as CycloneDX 1.6 or SPDX 2.3 JSON, and compares two inventories so that a
// rebase can see which packages it adds, removes or changes.
//
// Every output is deterministic: the same inventory gives the same bytes.
package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"noops/internal/errkind"
)

// Component kinds.
const (
	KindOS  = "os"  // a package of the base (stack) image
	KindApp = "app" // a dependency of the app
)

// Ecosystems, which are also the purl types of their components.
const (
	Deb    = "deb"
	Golang = "golang"
	NPM    = "npm"
	PyPI   = "pypi"
)

// An Inventory is what an image contains: OS packages (from the stack's
// lock) and the app's dependencies.
type Inventory struct {
	App        string
	Image      string    // image digest "sha256:…"; may be empty while building
	Created    time.Time // passed in, never read from the clock
	OS         OS
	Stack      string // "node", "python", "static"…
	Components []Component
}

// OS names the distribution an image's packages come from, as in
// /etc/os-release, and the image's architecture.
type OS struct {
	ID        string // "debian"
	VersionID string // "12"
	Arch      string // "amd64"
}

// A Component is one package in an image.
type Component struct {
	Kind      string // KindOS or KindApp
	Ecosystem string // Deb, Golang, NPM or PyPI
	Name      string
	Version   string // empty when the source only gives a range
	PURL      string // package URL, https://github.com/package-url/purl-spec
	Licenses  []string
	Direct    bool // a direct dependency of the app (app components)
	// Hashes maps a CycloneDX algorithm name ("SHA-1", "SHA-256",
	// "SHA-384", "SHA-512") to a lowercase hex digest. For Go modules
	// "SHA-256" is the go.sum h1 hash (SHA-256 of the module's file-tree
	// summary) in hex; for npm it is the lockfile's integrity in hex.
	Hashes map[string]string
	Source string // a deb's source package, "name" or "name (version)"
}

func (c Component) key() string { return c.Ecosystem + "\x00" + c.Name }

// compare orders components by kind, ecosystem, name, version, purl.
func compare(a, b Component) int {
	for _, p := range [][2]string{{a.Kind, b.Kind}, {a.Ecosystem, b.Ecosystem}, {a.Name, b.Name}, {a.Version, b.Version}, {a.PURL, b.PURL}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

// sorted returns the components in a stable order, without modifying cs.
func sorted(cs []Component) []Component {
	out := slices.Clone(cs)
	slices.SortStableFunc(out, compare)
	return out
}

// formatVersion is the version of the neutral JSON form.
const formatVersion = 1

type inventoryJSON struct {
	Version    int             `json:"version"`
	App        string          `json:"app"`
	Image      string          `json:"image,omitempty"`
	Created    time.Time       `json:"created"`
	OS         osJSON          `json:"os"`
	Stack      string          `json:"stack,omitempty"`
	Components []componentJSON `json:"components"`
}

type osJSON struct {
	ID        string `json:"id,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	Arch      string `json:"arch,omitempty"`
}

type componentJSON struct {
	Kind      string            `json:"kind"`
	Ecosystem string            `json:"ecosystem"`
	Name      string            `json:"name"`
	Version   string            `json:"version,omitempty"`
	PURL      string            `json:"purl,omitempty"`
	Licenses  []string          `json:"licenses,omitempty"`
	Direct    bool              `json:"direct,omitempty"`
	Hashes    map[string]string `json:"hashes,omitempty"`
	Source    string            `json:"source,omitempty"`
}

// Encode returns the neutral JSON form of inv that is stored with a release:
// {"version":1,"app":…,"components":[…]}, components sorted.
func Encode(inv Inventory) ([]byte, error) {
	j := inventoryJSON{
		Version: formatVersion, App: inv.App, Image: inv.Image, Created: inv.Created.UTC(),
		OS:         osJSON{ID: inv.OS.ID, VersionID: inv.OS.VersionID, Arch: inv.OS.Arch},
		Stack:      inv.Stack,
		Components: []componentJSON{},
	}
	for _, c := range sorted(inv.Components) {
		j.Components = append(j.Components, componentJSON(c))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return nil, fmt.Errorf("encoding inventory of %q: %w", inv.App, err)
	}
	return b.Bytes(), nil
}

// Decode reads what Encode wrote. Unknown fields are ignored so that a newer
// writer's additions do not break an older reader; an unknown version is
// refused.
func Decode(b []byte) (Inventory, error) {
	var j inventoryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Inventory{}, errkind.Errorf(errkind.Invalid, "decoding inventory: %s", jsonErrorAt(b, err))
	}
	if j.Version != formatVersion {
		return Inventory{}, errkind.Errorf(errkind.Invalid, "decoding inventory: version %d, want %d", j.Version, formatVersion)
	}
	inv := Inventory{
		App: j.App, Image: j.Image, Created: j.Created, Stack: j.Stack,
		OS: OS{ID: j.OS.ID, VersionID: j.OS.VersionID, Arch: j.OS.Arch},
	}
	for i, c := range j.Components {
		if c.Kind != KindOS && c.Kind != KindApp {
			return Inventory{}, errkind.Errorf(errkind.Invalid, "decoding inventory: component %d (%q) has kind %q, want %q or %q", i, c.Name, c.Kind, KindOS, KindApp)
		}
		if c.Name == "" || c.Ecosystem == "" {
			return Inventory{}, errkind.Errorf(errkind.Invalid, "decoding inventory: component %d has no name or ecosystem", i)
		}
		inv.Components = append(inv.Components, Component(c))
	}
	return inv, nil
}

// jsonErrorAt describes a JSON decoding error with the line and column
// where it happened.
func jsonErrorAt(data []byte, err error) string {
	var off int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
		if e.Field != "" {
			err = fmt.Errorf("field %s: %s value where %s was expected", e.Field, e.Value, e.Type)
		} else {
			err = fmt.Errorf("%s value where %s was expected", e.Value, e.Type)
		}
	}
	if off < 0 {
		return err.Error()
	}
	line, col := lineCol(data, int(off))
	return fmt.Sprintf("line %d column %d: %v", line, col, err)
}

// lineCol converts a byte offset into a 1-based line and column.
func lineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = off - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
