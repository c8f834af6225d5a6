package stack

import (
	"reflect"
	"strings"
	"testing"
)

func parseAll(s string) ([]Paragraph, error) {
	var out []Paragraph
	err := ParseControl(strings.NewReader(s), func(p Paragraph) error {
		out = append(out, p)
		return nil
	})
	return out, err
}

func TestParseControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    []Paragraph
		wantErr string
	}{
		{name: "one paragraph", in: "Package: a\nVersion: 1.0\n",
			want: []Paragraph{{{"Package", "a"}, {"Version", "1.0"}}}},
		{name: "no final newline", in: "Package: a",
			want: []Paragraph{{{"Package", "a"}}}},
		{name: "paragraphs split by blank and whitespace lines", in: "Package: a\n\n\nPackage: b\n \t\nPackage: c\n",
			want: []Paragraph{{{"Package", "a"}}, {{"Package", "b"}}, {{"Package", "c"}}}},
		{name: "continuation lines", in: "Description: short\n long line\n .\n more\nX: y\n",
			want: []Paragraph{{{"Description", "short\n long line\n .\n more"}, {"X", "y"}}}},
		{name: "empty first line", in: "Conffiles:\n /etc/a 123\n",
			want: []Paragraph{{{"Conffiles", "\n /etc/a 123"}}}},
		{name: "comments and carriage returns", in: "# c\r\nPackage: a\r\n#x\r\nVersion:  2 \r\n",
			want: []Paragraph{{{"Package", "a"}, {"Version", "2"}}}},
		{name: "colon in the value", in: "Depends: libc6:any (>= 2)\n",
			want: []Paragraph{{{"Depends", "libc6:any (>= 2)"}}}},
		{name: "empty input", in: "\n\n", want: nil},
		{name: "continuation without a field", in: " orphan\n", wantErr: "continuation line without a field"},
		{name: "line without a colon", in: "Package: a\nnonsense\n", wantErr: "line 2"},
		{name: "field name with a space", in: "Pack age: a\n", wantErr: "is not a field"},
		{name: "field name starting with a dash", in: "-X: a\n", wantErr: "is not a field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAll(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseControl(%q) error = %v, want one with %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseControl(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseControl(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParagraphGetIgnoresCase(t *testing.T) {
	t.Parallel()
	p := Paragraph{{"Package", "a"}, {"SHA256", "abc"}}
	for _, tc := range []struct{ name, field, want string }{
		{"same case", "Package", "a"},
		{"other case", "sha256", "abc"},
		{"absent", "Version", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Get(tc.field); got != tc.want {
				t.Errorf("Get(%q) = %q, want %q", tc.field, got, tc.want)
			}
		})
	}
}

// FuzzParseControl checks that the parser never panics and that what it
// reads prints back into the same paragraphs.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		"Package: a\nVersion: 1\n\nPackage: b\n",
		"Description: x\n y\n .\n z\n",
		"Conffiles:\n /etc/x 1\n",
		"# comment\nA: b\r\n",
		" bad\n",
		"A:\n\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := parseAll(in)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, p := range ps {
			b.WriteString(p.String())
			b.WriteString("\n")
		}
		again, err := parseAll(b.String())
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", b.String(), in, err)
		}
		if !reflect.DeepEqual(again, ps) {
			t.Fatalf("round trip of %q: %q, then %q", in, ps, again)
		}
	})
}
