package sbom

import (
	"slices"
	"strings"
)

// A Diff is what changes between two inventories, packages matched by
// (ecosystem, name). Each list is sorted by ecosystem then name.
type Diff struct {
	Added   []Component // in new only
	Removed []Component // in old only
	Changed []Change    // in both, with other versions
}

// A Change is a package whose version changed. When several versions of one
// package are installed side by side (npm), From and To list them all,
// sorted and separated by ", ".
type Change struct {
	Kind      string
	Ecosystem string
	Name      string
	From, To  string
}

// Empty reports whether the two inventories hold the same packages.
func (d Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// Compare returns what changes from old to new among the components of the
// given kind: KindOS, KindApp, or "" for all.
func Compare(old, new Inventory, kind string) Diff {
	before, after := group(old.Components, kind), group(new.Components, kind)
	var d Diff
	for k, o := range before {
		n, ok := after[k]
		if !ok {
			d.Removed = append(d.Removed, o...)
			continue
		}
		from, to := versions(o), versions(n)
		if from != to {
			d.Changed = append(d.Changed, Change{Kind: n[0].Kind, Ecosystem: n[0].Ecosystem, Name: n[0].Name, From: from, To: to})
		}
	}
	for k, n := range after {
		if _, ok := before[k]; !ok {
			d.Added = append(d.Added, n...)
		}
	}
	slices.SortFunc(d.Added, compare)
	slices.SortFunc(d.Removed, compare)
	slices.SortFunc(d.Changed, func(a, b Change) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		if c := strings.Compare(a.Ecosystem, b.Ecosystem); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return d
}

// group indexes components of a kind by kind, ecosystem and name.
func group(cs []Component, kind string) map[string][]Component {
	m := map[string][]Component{}
	for _, c := range cs {
		if kind == "" || c.Kind == kind {
			k := c.Kind + "\x00" + c.key()
			m[k] = append(m[k], c)
		}
	}
	return m
}

// versions lists the distinct versions of a group, sorted.
func versions(cs []Component) string {
	vs := make([]string, 0, len(cs))
	for _, c := range cs {
		vs = append(vs, c.Version)
	}
	slices.Sort(vs)
	return strings.Join(slices.Compact(vs), ", ")
}
