package sbom

import (
	"reflect"
	"testing"
)

// stripLines removes the header lines parseTOML records in array tables.
func stripLines(v any) any {
	switch v := v.(type) {
	case map[string]any:
		delete(v, tomlLineKey)
		for _, e := range v {
			stripLines(e)
		}
	case tomlTables:
		for _, e := range v {
			stripLines(e)
		}
	case []any:
		for _, e := range v {
			stripLines(e)
		}
	}
	return v
}

func TestTOML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		want      map[string]any
	}{
		{"strings", `a = "x\ty\u00e9\"" # comment
b = 'C:\path'
c = """
one \
   two"""
d = '''
raw \n'''
e = """quote: "" """
`, map[string]any{"a": "x\tyé\"", "b": `C:\path`, "c": "one two", "d": `raw \n`, "e": `quote: "" `}},
		{"scalars kept as text", "n = -12\nf = 3.5\nt = true\nf2 = false\nd = 2024-01-02T03:04:05Z\n",
			map[string]any{"n": "-12", "f": "3.5", "t": true, "f2": false, "d": "2024-01-02T03:04:05Z"}},
		{"arrays over lines with comments", "a = [\n  1, # one\n  \"two\",\n  [3],\n]\nempty = []\n",
			map[string]any{"a": []any{"1", "two", []any{"3"}}, "empty": []any{}}},
		{"inline tables and dotted keys", "x = {version = \"1\", markers = 'a == \"b\"'}\nsite.\"google.com\".ok = true\n",
			map[string]any{"x": map[string]any{"version": "1", "markers": `a == "b"`}, "site": map[string]any{"google.com": map[string]any{"ok": true}}}},
		{"tables and arrays of tables", "[[package]]\nname = \"a\"\n[package.dependencies]\nb = \"*\"\n\n[[package]]\nname = \"b\"\n\n[metadata.files]\na = []\n",
			map[string]any{
				"package":  tomlTables{{"name": "a", "dependencies": map[string]any{"b": "*"}}, {"name": "b"}},
				"metadata": map[string]any{"files": map[string]any{"a": []any{}}},
			}},
		{"CRLF", "[t]\r\nk = \"v\"\r\n", map[string]any{"t": map[string]any{"k": "v"}}},
		{"empty", "", map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseTOML("x.toml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if stripLines(got); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseTOML(%q)\n = %#v\nwant %#v", tc.doc, got, tc.want)
			}
		})
	}
}

func TestTOMLHeaderLines(t *testing.T) {
	t.Parallel()
	got, err := parseTOML("x.toml", []byte("# lock\n\n[[p]]\nn = 1\n\n[[p]]\n"))
	if err != nil {
		t.Fatal(err)
	}
	ps := got["p"].(tomlTables)
	if ps[0][tomlLineKey] != 3 || ps[1][tomlLineKey] != 6 {
		t.Errorf("header lines = %v, %v, want 3, 6", ps[0][tomlLineKey], ps[1][tomlLineKey])
	}
}

func TestTOMLInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, want string
	}{
		{"bare string", "a = b\n", "x.toml line 1"},
		{"unterminated string", "a = 1\nb = \"x\n", "x.toml line 2"},
		{"unterminated multi-line string", "a = \"\"\"x\n\n", "line 1"},
		{"bad escape", "a = \"\\q\"\n", "line 1"},
		{"duplicate key", "a = 1\na = 2\n", "line 2"},
		{"missing equals", "a 1\n", "line 1"},
		{"two values on a line", "a = 1 2\n", "line 1"},
		{"unclosed array", "a = [1, 2\n\n", "line 1: unclosed array"},
		{"array without comma", "a = [1 2]\n", "line 1"},
		{"unclosed header", "[a\n", "line 1"},
		{"table over a value", "a = 1\n[a]\n", "line 2"},
		{"array of tables over a table", "[a]\n[[a]]\n", "line 2"},
		{"dotted key into an array of tables", "[[t.a]]\n[t]\na.x = 1\n", "line 3"},
		{"control character", "a = \"\x01\"\n", "line 1"},
		{"too deep", "a = " + repeat("[", 100) + repeat("]", 100) + "\n", "deeper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseTOML("x.toml", []byte(tc.doc))
			wantInvalid(t, err, tc.want)
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
