package stack

import (
	"fmt"
	"strings"
)

// Dep is one alternative of a dependency: a package name, the architecture
// it is qualified with ("any", "native", an architecture, or ""), and a
// version constraint (Op is "", "<<", "<=", "=", ">=" or ">>").
type Dep struct {
	Name, Arch, Op, Version string
}

func (d Dep) String() string {
	s := d.Name
	if d.Arch != "" {
		s += ":" + d.Arch
	}
	if d.Op != "" {
		s += " (" + d.Op + " " + d.Version + ")"
	}
	return s
}

// Alternatives is one comma-separated item of a dependency field: any one
// of them satisfies it ("a | b").
type Alternatives []Dep

func (a Alternatives) String() string {
	s := make([]string, len(a))
	for i, d := range a {
		s[i] = d.String()
	}
	return strings.Join(s, " | ")
}

// ParseDepends parses a dependency field (Depends, Pre-Depends, Provides,
// …): "a (>= 1.0) | b:any, c". Architecture restrictions ("[amd64]") and
// build profiles ("<!nocheck>"), which only source packages use, are
// accepted and ignored. The obsolete operators "<" and ">" mean "<=" and
// ">=", as dpkg reads them.
func ParseDepends(s string) ([]Alternatives, error) {
	var out []Alternatives
	for _, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue // "a, , b" and a trailing comma occur in the wild
		}
		var alts Alternatives
		for _, alt := range strings.Split(item, "|") {
			d, err := parseDep(alt)
			if err != nil {
				return nil, fmt.Errorf("parsing dependency %q: %w", strings.TrimSpace(item), err)
			}
			alts = append(alts, d)
		}
		out = append(out, alts)
	}
	return out, nil
}

func parseDep(s string) (Dep, error) {
	var d Dep
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, " \t([<")
	if i < 0 {
		i = len(s)
	}
	name, arch, _ := strings.Cut(s[:i], ":")
	if !validPackageName(name) {
		return d, fmt.Errorf("bad package name %q", s[:i])
	}
	if strings.Contains(arch, ":") {
		return d, fmt.Errorf("bad architecture qualifier %q", arch)
	}
	d.Name, d.Arch = name, arch
	rest := strings.TrimSpace(s[i:])
	if strings.HasPrefix(rest, "(") {
		j := strings.Index(rest, ")")
		if j < 0 {
			return d, fmt.Errorf("unbalanced version constraint in %q", s)
		}
		rel := strings.TrimSpace(rest[1:j])
		rest = strings.TrimSpace(rest[j+1:])
		v := strings.TrimLeft(rel, "<>=")
		op := rel[:len(rel)-len(v)]
		switch op {
		case "<<", "<=", "=", ">=", ">>":
		case "<":
			op = "<="
		case ">":
			op = ">="
		default:
			return d, fmt.Errorf("unknown version relation %q in %q", op, s)
		}
		v = strings.TrimSpace(v)
		if v == "" || strings.ContainsAny(v, " \t()") {
			return d, fmt.Errorf("bad version %q in %q", v, s)
		}
		d.Op, d.Version = op, v
	}
	if !restrictionOnly(rest) {
		return d, fmt.Errorf("unexpected %q after %s", rest, d)
	}
	return d, nil
}

// restrictionOnly reports whether s is a sequence of "<…>" and "[…]" groups.
func restrictionOnly(s string) bool {
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		var end string
		switch s[0] {
		case '<':
			end = ">"
		case '[':
			end = "]"
		default:
			return false
		}
		i := strings.Index(s, end)
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
	return true
}

// validPackageName: lower case letters, digits, "+", "-", ".", at least
// one character, starting with a letter or digit (Debian Policy 5.6.1,
// relaxed to one character as dpkg accepts).
func validPackageName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '+' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Satisfies reports whether version v meets the constraint op want.
func Satisfies(v, op, want string) bool {
	if op == "" {
		return true
	}
	c := CompareVersions(v, want)
	switch op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}
