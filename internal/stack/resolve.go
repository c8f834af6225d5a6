package stack

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"noops/internal/errkind"
)

// record is what resolution needs of a package's index entry.
type record struct {
	Package
	Priority string
	depends  string // Pre-Depends and Depends, raw
	provides string
}

// recordOf reads an index entry. It fails on entries that lack what a
// lock needs.
func recordOf(p Paragraph) (*record, error) {
	r := &record{Package: Package{
		Name:     p.Get("Package"),
		Version:  p.Get("Version"),
		Arch:     p.Get("Architecture"),
		SHA256:   p.Get("SHA256"),
		Filename: p.Get("Filename"),
	}, Priority: p.Get("Priority"), provides: p.Get("Provides")}
	if r.Name == "" || r.Version == "" || r.Arch == "" {
		return nil, fmt.Errorf("index entry %q lacks Package, Version or Architecture", truncate(p.String(), 60))
	}
	r.Source, r.SourceVersion = r.Name, r.Version
	if s := p.Get("Source"); s != "" {
		name, v, ok := strings.Cut(s, "(")
		r.Source = strings.TrimSpace(name)
		if ok {
			r.SourceVersion = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), ")"))
		}
	}
	if s := p.Get("Size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("index entry %s %s: bad Size %q", r.Name, r.Version, s)
		}
		r.Size = n
	}
	deps := []string{p.Get("Pre-Depends"), p.Get("Depends")}
	r.depends = strings.Join(slices.DeleteFunc(deps, func(s string) bool { return s == "" }), ", ")
	return r, nil
}

// provider is a package that provides a virtual name, at version (or at
// no version).
type provider struct {
	rec     *record
	version string
}

// Index is the archive's candidate version of every package for one
// architecture, as `apt-cache dumpavail` lists them.
type Index struct {
	arch      string
	pkgs      map[string]*record
	providers map[string][]provider
	skipped   int // entries that could not be read
}

// ReadIndex reads index entries (a Packages file, `apt-cache dumpavail`)
// for architecture arch: entries of other architectures are skipped, and
// when a package appears twice the higher version wins.
func ReadIndex(r io.Reader, arch string) (*Index, error) {
	ix := &Index{arch: arch, pkgs: map[string]*record{}, providers: map[string][]provider{}}
	err := ParseControl(r, func(p Paragraph) error {
		rec, err := recordOf(p)
		if err != nil {
			ix.skipped++ // a broken entry only hides itself
			return nil
		}
		if rec.Arch != arch && rec.Arch != "all" {
			return nil
		}
		if old, ok := ix.pkgs[rec.Name]; ok && CompareVersions(old.Version, rec.Version) >= 0 {
			return nil
		}
		ix.pkgs[rec.Name] = rec
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the package index: %w", err)
	}
	for _, rec := range ix.pkgs {
		if rec.provides == "" {
			continue
		}
		provs, err := ParseDepends(rec.provides)
		if err != nil {
			continue // a broken Provides only hides what it provides
		}
		for _, alts := range provs {
			d := alts[0]
			if len(alts) != 1 || (d.Op != "" && d.Op != "=") {
				continue
			}
			ix.providers[d.Name] = append(ix.providers[d.Name], provider{rec: rec, version: d.Version})
		}
	}
	for _, ps := range ix.providers {
		slices.SortFunc(ps, func(a, b provider) int { return strings.Compare(a.rec.Name, b.rec.Name) })
	}
	return ix, nil
}

// Len is the number of packages in the index.
func (ix *Index) Len() int { return len(ix.pkgs) }

// Resolution is the outcome of Resolve.
type Resolution struct {
	Packages []Package // sorted by name
	Excluded []string  // excluded packages the closure reached, sorted
}

// Resolve computes the dependency closure of the packages that request
// names (a Depends field): Pre-Depends and Depends, never Recommends or
// Suggests; of "a | b" the first alternative the archive can satisfy
// unless one already chosen satisfies the item; a virtual package by
// its provider (one already chosen, else the one of highest Priority,
// then by name). It does not descend into packages in exclude, nor into
// an item whose chosen alternative is excluded. A requested or needed
// package the archive cannot satisfy is errkind.Unavailable.
func (ix *Index) Resolve(request string, exclude map[string]bool) (Resolution, error) {
	top, err := ParseDepends(request)
	if err != nil {
		return Resolution{}, errkind.E(errkind.Invalid, err)
	}
	r := &resolver{ix: ix, exclude: exclude, chosen: map[string]*record{}, excluded: map[string]bool{}}
	for _, alts := range top {
		if err := r.satisfy(alts, ""); err != nil {
			return Resolution{}, err
		}
	}
	for len(r.queue) > 0 {
		rec := r.queue[0]
		r.queue = r.queue[1:]
		deps, err := ParseDepends(rec.depends)
		if err != nil {
			return Resolution{}, fmt.Errorf("resolving %s %s: %w", rec.Name, rec.Version, err)
		}
		for _, alts := range deps {
			if err := r.satisfy(alts, rec.Name); err != nil {
				return Resolution{}, err
			}
		}
	}
	var res Resolution
	for _, rec := range r.chosen {
		res.Packages = append(res.Packages, rec.Package)
	}
	slices.SortFunc(res.Packages, func(a, b Package) int { return strings.Compare(a.Name, b.Name) })
	for n := range r.excluded {
		res.Excluded = append(res.Excluded, n)
	}
	slices.Sort(res.Excluded)
	return res, nil
}

type resolver struct {
	ix       *Index
	exclude  map[string]bool
	chosen   map[string]*record
	excluded map[string]bool
	queue    []*record // chosen, dependencies not yet followed
}

// satisfy chooses a package for one dependency item of by ("" for the
// request itself).
func (r *resolver) satisfy(alts Alternatives, by string) error {
	for _, d := range alts {
		for _, c := range r.candidates(d) {
			if r.chosen[c.Name] != nil {
				return nil
			}
		}
	}
	for _, d := range alts {
		if r.exclude[d.Name] {
			r.excluded[d.Name] = true
			return nil
		}
		cands := r.candidates(d)
		if len(cands) == 0 {
			continue
		}
		for _, c := range cands {
			if r.exclude[c.Name] {
				r.excluded[c.Name] = true
				return nil
			}
		}
		c := cands[0]
		r.chosen[c.Name] = c
		r.queue = append(r.queue, c)
		return nil
	}
	if by == "" {
		return errkind.Errorf(errkind.Unavailable, "package %s is not in the package archive", alts)
	}
	return errkind.Errorf(errkind.Unavailable, "%s needs %s, which no package in the package archive provides", by, alts)
}

// candidates lists the packages that satisfy d, best first: the real
// package of that name, else its providers by Priority and name.
func (r *resolver) candidates(d Dep) []*record {
	switch d.Arch {
	case "", "any", "native", r.ix.arch:
	default:
		return nil // another architecture: this index has none
	}
	if rec := r.ix.pkgs[d.Name]; rec != nil && Satisfies(rec.Version, d.Op, d.Version) {
		return []*record{rec}
	}
	var out []*record
	for _, p := range r.ix.providers[d.Name] {
		if d.Op == "" || p.version != "" && Satisfies(p.version, d.Op, d.Version) {
			out = append(out, p.rec)
		}
	}
	slices.SortStableFunc(out, func(a, b *record) int { return priorityRank(a.Priority) - priorityRank(b.Priority) })
	return out
}

func priorityRank(p string) int {
	switch p {
	case "required":
		return 0
	case "important":
		return 1
	case "standard":
		return 2
	case "optional":
		return 3
	case "extra":
		return 4
	}
	return 5
}
