package sbom

import (
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// poetryPackages returns the packages of a poetry.lock that a production
// install gets. Which those are depends on the lock's age:
//
//   - poetry 2 writes groups = ["main", …] on each package;
//   - poetry 1.0–1.4 write category = "main" or "dev";
//   - in between the lock does not say, so the packages reachable from the
//     main dependencies of pyproject.toml (which may be nil) are kept, or
//     all of them when pyproject.toml declares none.
//
// Folder ("directory") sources are the app's own code and are left out.
// Direct means declared in pyproject.toml or, without it, required by no
// other locked package.
func poetryPackages(name string, lock, pyproject []byte) ([]Component, error) {
	doc, err := parseTOML(name, lock)
	if err != nil {
		return nil, err
	}
	var roots map[string]bool
	if len(pyproject) > 0 {
		pp, err := parseTOML("pyproject.toml", pyproject)
		if err != nil {
			return nil, err
		}
		roots = pyprojectMainNames(pp)
	}
	pkgs, _ := doc["package"].(tomlTables)
	if doc["package"] != nil && pkgs == nil {
		return nil, invalid(name, 1, "package is not an array of tables ([[package]])")
	}
	metaFiles := map[string]any{}
	if meta, ok := doc["metadata"].(map[string]any); ok {
		if f, ok := meta["files"].(map[string]any); ok {
			metaFiles = f // poetry < 1.2 kept file hashes here
		}
	}

	type locked struct {
		c        Component
		deps     []string
		main     bool
		declared bool // groups or category present
		local    bool
	}
	var all []locked
	byName := map[string][]int{}
	declared := false
	for _, p := range pkgs {
		line, _ := p[tomlLineKey].(int)
		pname, _ := p["name"].(string)
		version, _ := p["version"].(string)
		if pname == "" || version == "" {
			return nil, invalid(name, line, "[[package]] needs a name and a version")
		}
		files, _ := p["files"].([]any)
		if files == nil {
			files, _ = metaFiles[pname].([]any)
		}
		var hashes []string
		for _, f := range files {
			if ft, ok := f.(map[string]any); ok {
				if h, ok := ft["hash"].(string); ok {
					hashes = append(hashes, h)
				}
			}
		}
		c, err := pypiComponent(pname, version, hashes)
		if err != nil {
			return nil, invalid(name, line, "package %q: %v", pname, err)
		}
		l := locked{c: c, main: true}
		if src, ok := p["source"].(map[string]any); ok && src["type"] == "directory" {
			l.local = true // the app's own code: not listed, but its dependencies are
		}
		if g, ok := p["groups"].([]any); ok {
			l.declared, l.main = true, slices.Contains(g, any("main"))
		} else if cat, ok := p["category"].(string); ok {
			l.declared, l.main = true, cat == "main"
		}
		declared = declared || l.declared
		if deps, ok := p["dependencies"].(map[string]any); ok {
			for d := range deps {
				l.deps = append(l.deps, canonPy(d))
			}
		}
		byName[canonPy(pname)] = append(byName[canonPy(pname)], len(all))
		all = append(all, l)
	}

	required := map[string]bool{}
	for _, l := range all {
		for _, d := range l.deps {
			required[d] = true
		}
	}
	if !declared && len(roots) > 0 {
		// Keep what the main dependencies reach.
		keep := map[int]bool{}
		var visit func(n string)
		visit = func(n string) {
			for _, i := range byName[n] {
				if !keep[i] {
					keep[i] = true
					for _, d := range all[i].deps {
						visit(d)
					}
				}
			}
		}
		for r := range roots {
			visit(r)
		}
		for i := range all {
			all[i].main = keep[i]
		}
	}
	var out []Component
	for _, l := range all {
		if !l.main || l.local {
			continue
		}
		n := canonPy(l.c.Name)
		if roots != nil {
			l.c.Direct = roots[n]
		} else {
			l.c.Direct = !required[n]
		}
		out = append(out, l.c)
	}
	return merge(out), nil
}

// canonPy is a Python distribution name normalized per PEP 503.
func canonPy(n string) string {
	return strings.ToLower(pyRunRE.ReplaceAllString(n, "-"))
}

var pyRunRE = regexp.MustCompile(`[-_.]+`)

// pyprojectMainNames returns the normalized names of the main (production)
// dependencies that pyproject.toml declares, from [project] dependencies and
// [tool.poetry.dependencies], folders included; nil when it declares none.
func pyprojectMainNames(pp map[string]any) map[string]bool {
	names := map[string]bool{}
	if project, ok := pp["project"].(map[string]any); ok {
		deps, _ := project["dependencies"].([]any)
		for _, d := range deps {
			if s, ok := d.(string); ok {
				if n := reqNameRE.FindString(strings.TrimSpace(s)); n != "" {
					names[canonPy(n)] = true
				}
			}
		}
	}
	tool, _ := pp["tool"].(map[string]any)
	poetry, _ := tool["poetry"].(map[string]any)
	deps, _ := poetry["dependencies"].(map[string]any)
	for d := range deps {
		if !strings.EqualFold(d, "python") {
			names[canonPy(d)] = true
		}
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

// pyprojectPackages lists the main dependencies of a pyproject.toml that
// has no lock: versions only where pinned exactly.
func pyprojectPackages(name string, data []byte) ([]Component, error) {
	pp, err := parseTOML(name, data)
	if err != nil {
		return nil, err
	}
	cs, err := pyprojectRequirements(name, data, pp)
	if err != nil {
		return nil, err
	}
	return merge(cs), nil
}

var poetryExactRE = regexp.MustCompile(`^\s*(?:==\s*)?([0-9][A-Za-z0-9.+!_-]*)\s*$`)

// pyprojectRequirements reads project.dependencies (PEP 508 strings) and
// tool.poetry.dependencies (poetry constraints; a bare version is exact).
// data, when given, is searched to name the line of a bad entry.
func pyprojectRequirements(name string, data []byte, pp map[string]any) ([]Component, error) {
	var out []Component
	if project, ok := pp["project"].(map[string]any); ok && project["dependencies"] != nil {
		deps, ok := project["dependencies"].([]any)
		if !ok {
			return nil, invalid(name, lineOfText(data, "dependencies"), "project.dependencies is not a list")
		}
		for _, d := range deps {
			s, ok := d.(string)
			if !ok {
				return nil, invalid(name, lineOfText(data, "dependencies"), "project.dependencies holds a non-string")
			}
			c, ok, err := parseRequirementLine(strings.TrimSpace(s))
			if err != nil {
				return nil, invalid(name, lineOfText(data, s), "%v", err)
			}
			if ok {
				out = append(out, c)
			}
		}
	}
	tool, _ := pp["tool"].(map[string]any)
	poetry, _ := tool["poetry"].(map[string]any)
	deps, _ := poetry["dependencies"].(map[string]any)
	for _, dep := range slicesSortedKeys(deps) {
		if strings.EqualFold(dep, "python") {
			continue
		}
		constraint := ""
		switch v := deps[dep].(type) {
		case string:
			constraint = v
		case map[string]any:
			if v["path"] != nil {
				continue // a folder: the app's own code
			}
			constraint, _ = v["version"].(string)
		}
		version := ""
		if m := poetryExactRE.FindStringSubmatch(constraint); m != nil {
			version = m[1]
		}
		if reqNameRE.FindString(dep) != dep {
			return nil, invalid(name, lineOfText(data, dep), "invalid dependency name %s", strconv.Quote(dep))
		}
		c, err := pypiComponent(dep, version, nil)
		if err != nil {
			return nil, invalid(name, lineOfText(data, dep), "%v", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// lineOfText is the line where s first appears in data, or 1.
func lineOfText(data []byte, s string) int {
	i := bytes.Index(data, []byte(s))
	if i < 0 || s == "" {
		return 1
	}
	line, _ := lineCol(data, i)
	return line
}
