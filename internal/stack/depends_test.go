package stack

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDepends(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    []Alternatives
		wantErr string
	}{
		{name: "plain names", in: "libc6, zlib1g",
			want: []Alternatives{{{Name: "libc6"}}, {{Name: "zlib1g"}}}},
		{name: "alternatives", in: "debconf (>= 0.5) | debconf-2.0",
			want: []Alternatives{{{Name: "debconf", Op: ">=", Version: "0.5"}, {Name: "debconf-2.0"}}}},
		{name: "every relation", in: "a (<< 1), b (<= 2), c (= 3), d (>= 4), e (>> 5)",
			want: []Alternatives{{{Name: "a", Op: "<<", Version: "1"}}, {{Name: "b", Op: "<=", Version: "2"}},
				{{Name: "c", Op: "=", Version: "3"}}, {{Name: "d", Op: ">=", Version: "4"}}, {{Name: "e", Op: ">>", Version: "5"}}}},
		{name: "obsolete relations", in: "a (< 1), b (> 2)",
			want: []Alternatives{{{Name: "a", Op: "<=", Version: "1"}}, {{Name: "b", Op: ">=", Version: "2"}}}},
		{name: "no spaces", in: "libnode108(=18.20.4+dfsg-1~deb12u3)",
			want: []Alternatives{{{Name: "libnode108", Op: "=", Version: "18.20.4+dfsg-1~deb12u3"}}}},
		{name: "epoch version", in: "zlib1g (>= 1:1.2.0)",
			want: []Alternatives{{{Name: "zlib1g", Op: ">=", Version: "1:1.2.0"}}}},
		{name: "architecture qualifiers", in: "libc6:any, python3:native (>= 3.11), libfoo:amd64",
			want: []Alternatives{{{Name: "libc6", Arch: "any"}}, {{Name: "python3", Arch: "native", Op: ">=", Version: "3.11"}},
				{{Name: "libfoo", Arch: "amd64"}}}},
		{name: "restrictions of source packages", in: "gcc [amd64 arm64] <!nocheck>, dh (>= 13) [!hurd-any]",
			want: []Alternatives{{{Name: "gcc"}}, {{Name: "dh", Op: ">=", Version: "13"}}}},
		{name: "multi-line and empty items", in: "a,\n b ,, c,",
			want: []Alternatives{{{Name: "a"}}, {{Name: "b"}}, {{Name: "c"}}}},
		{name: "empty", in: "", want: nil},
		{name: "upper case name", in: "Foo", wantErr: "bad package name"},
		{name: "missing version", in: "a (>= )", wantErr: "bad version"},
		{name: "unknown relation", in: "a (~ 1)", wantErr: "unknown version relation"},
		{name: "unbalanced", in: "a (>= 1", wantErr: "unbalanced"},
		{name: "junk after the name", in: "a b", wantErr: "unexpected"},
		{name: "empty alternative", in: "a | , b", wantErr: "bad package name"},
		{name: "two qualifiers", in: "a:any:any", wantErr: "architecture qualifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDepends(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDepends(%q) error = %v, want one with %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDepends(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseDepends(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParseDepends checks that the parser never panics and that what it
// reads prints back into the same dependencies.
func FuzzParseDepends(f *testing.F) {
	for _, s := range []string{
		"libc6 (>= 2.34), libnode108 (= 18.20.4+dfsg-1~deb12u3)",
		"debconf (>= 0.5) | debconf-2.0, python3:any",
		"gcc [amd64] <!nocheck>",
		"a (<< 1:2~b-3)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		deps, err := ParseDepends(in)
		if err != nil {
			return
		}
		s := make([]string, len(deps))
		for i, alts := range deps {
			s[i] = alts.String()
		}
		again, err := ParseDepends(strings.Join(s, ", "))
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", strings.Join(s, ", "), in, err)
		}
		if !reflect.DeepEqual(again, deps) {
			t.Fatalf("round trip of %q: %v, then %v", in, deps, again)
		}
	})
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a, b string
		want int
	}{
		{"equal", "1.0", "1.0", 0},
		{"zero epoch is no epoch", "0:1.0", "1.0", 0},
		{"leading zeros", "1.01", "1.1", 0},
		{"numeric, not lexical", "1.2.10", "1.2.9", 1},
		{"epoch wins", "1:0.1", "2.0", 1},
		{"tilde before the end", "1.0~rc1", "1.0", -1},
		{"double tilde before tilde", "1.0~~", "1.0~", -1},
		{"letter after the end", "1.0a", "1.0", 1},
		{"plus after letters", "1.0+dfsg", "1.0a", 1},
		{"revision counts", "1.0-2", "1.0-10", -1},
		{"no revision before a revision", "1.0", "1.0-1", -1},
		{"hyphen in upstream", "1.0-beta-1", "1.0-beta-2", -1},
		{"debian security update", "2.36-9+deb12u14", "2.36-9+deb12u4", 1},
		{"backport tilde", "18.20.4+dfsg-1~deb12u3", "18.20.4+dfsg-1", -1},
		{"extra component", "1.0.0", "1.0", 1},
		{"letters", "a", "b", -1},
		{"long numbers", "20250419", "20230311", 1},
		{"huge numbers", "99999999999999999999", "100000000000000000000", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompareVersions(tc.a, tc.b); got != tc.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := CompareVersions(tc.b, tc.a); got != -tc.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

func TestSatisfies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v, op, want string
		ok          bool
	}{
		{"2.36-9", "", "", true},
		{"2.36-9", ">=", "2.34", true},
		{"2.36-9", "<<", "2.36", false},
		{"2.36-9", "<<", "2.37", true},
		{"1.0", "=", "1.0", true},
		{"1.0", "=", "1.0-1", false},
		{"1.0", ">>", "1.0", false},
		{"1.0", "<=", "1.0", true},
		{"1.0", "??", "1.0", false},
	} {
		if got := Satisfies(tc.v, tc.op, tc.want); got != tc.ok {
			t.Errorf("Satisfies(%q, %q, %q) = %v, want %v", tc.v, tc.op, tc.want, got, tc.ok)
		}
	}
}

// FuzzCompareVersions checks that the comparison is an order: reflexive
// and antisymmetric.
func FuzzCompareVersions(f *testing.F) {
	f.Add("1:2.0~rc1-3", "2.0")
	f.Add("1.0+dfsg", "1.0a")
	f.Add("", "~")
	f.Fuzz(func(t *testing.T, a, b string) {
		if c := CompareVersions(a, a); c != 0 {
			t.Fatalf("CompareVersions(%q, itself) = %d", a, c)
		}
		if x, y := CompareVersions(a, b), CompareVersions(b, a); x != -y {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed = %d", a, b, x, y)
		}
	})
}
