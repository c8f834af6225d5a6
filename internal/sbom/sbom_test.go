package sbom

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	inv := testInventory(t)
	b, err := Encode(inv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("{\n  \"version\": 1,")) {
		t.Errorf("Encode starts %q, want the format version first", b[:min(len(b), 30)])
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := inv
	want.Components = sorted(inv.Components)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(Encode(inv)) =\n%+v\nwant\n%+v", got, want)
	}
	again, err := Encode(shuffled(got))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Error("Encode of the decoded inventory differs from the first encoding")
	}
}

func TestEncodeFieldNames(t *testing.T) {
	t.Parallel()
	b, err := Encode(Inventory{
		App: "a", Image: "sha256:00", Created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
		OS: OS{ID: "debian", VersionID: "12", Arch: "arm64"}, Stack: "python",
		Components: []Component{{Kind: KindApp, Ecosystem: PyPI, Name: "flask", Version: "3.0.0", PURL: "pkg:pypi/flask@3.0.0", Licenses: []string{"BSD-3-Clause"}, Direct: true, Hashes: map[string]string{"SHA-256": "00"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"version": 1`, `"app": "a"`, `"image": "sha256:00"`, `"created": "2024-01-02T02:04:05Z"`,
		`"id": "debian"`, `"version_id": "12"`, `"arch": "arm64"`, `"stack": "python"`, `"kind": "app"`, `"ecosystem": "pypi"`,
		`"name": "flask"`, `"purl": "pkg:pypi/flask@3.0.0"`, `"licenses": [`, `"direct": true`, `"SHA-256": "00"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Encode output lacks %s:\n%s", want, b)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"not JSON", "{\n\"version\": 1,\n}", []string{"line 3"}},
		{"no version", `{"app": "a"}`, []string{"version 0"}},
		{"future version", `{"version": 2}`, []string{"version 2"}},
		{"bad kind", `{"version": 1, "components": [{"kind": "lib", "ecosystem": "npm", "name": "a"}]}`, []string{`kind "lib"`}},
		{"no name", `{"version": 1, "components": [{"kind": "app", "ecosystem": "npm"}]}`, []string{"no name"}},
		{"wrong type", "{\"version\": 1,\n\"components\": {}}", []string{"line 2", "components"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte(tc.in))
			wantInvalid(t, err, tc.want...)
		})
	}
}
