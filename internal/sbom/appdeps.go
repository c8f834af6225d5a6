package sbom

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"

	"noops/internal/errkind"
)

// maxFileSize bounds what is read of one dependency file.
const maxFileSize = 32 << 20

// AppDependencies detects the dependency files at the top of the app folder
// dir and returns the app's dependencies, sorted, as KindApp components:
//
//   - go.mod, with hashes from go.sum; the main module is not listed,
//     replacements are followed, "// indirect" marks indirect ones;
//   - npm-shrinkwrap.json or package-lock.json (lockfileVersion 1, 2, 3),
//     without dev dependencies, workspace members or links;
//   - poetry.lock (main group only when pyproject.toml says which that
//     is), else requirements.txt (following -r includes), else the
//     project.dependencies or tool.poetry.dependencies of pyproject.toml.
//
// Unpinned requirements are listed with an empty version. Files are read
// through an os.Root: an include or symlink that leaves dir is refused. A
// malformed file is an errkind.Invalid error naming the file and line.
func AppDependencies(dir string) ([]Component, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errkind.Errorf(errkind.NotFound, "reading app dependencies: %w", err)
		}
		return nil, fmt.Errorf("reading app dependencies: %w", err)
	}
	defer root.Close()
	src := source{root: root}
	var all []Component

	if gomod, ok, err := src.read("go.mod"); err != nil {
		return nil, err
	} else if ok {
		gosum, _, err := src.read("go.sum")
		if err != nil {
			return nil, err
		}
		cs, err := goModules("go.mod", gomod, "go.sum", gosum)
		if err != nil {
			return nil, err
		}
		all = append(all, cs...)
	}

	for _, lock := range []string{"npm-shrinkwrap.json", "package-lock.json"} {
		data, ok, err := src.read(lock)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		pkg, _, err := src.read("package.json")
		if err != nil {
			return nil, err
		}
		cs, err := npmPackages(lock, data, pkg)
		if err != nil {
			return nil, err
		}
		all = append(all, cs...)
		break
	}

	cs, err := pythonPackages(src)
	if err != nil {
		return nil, err
	}
	all = append(all, cs...)
	return merge(all), nil
}

// pythonPackages reads poetry.lock, else requirements.txt, else pyproject.toml.
func pythonPackages(src source) ([]Component, error) {
	pyproject, hasPyproject, err := src.read("pyproject.toml")
	if err != nil {
		return nil, err
	}
	if lock, ok, err := src.read("poetry.lock"); err != nil {
		return nil, err
	} else if ok {
		return poetryPackages("poetry.lock", lock, pyproject)
	}
	if _, ok, err := src.read("requirements.txt"); err != nil {
		return nil, err
	} else if ok {
		return requirements(src, "requirements.txt")
	}
	if hasPyproject {
		return pyprojectPackages("pyproject.toml", pyproject)
	}
	return nil, nil
}

// source reads dependency files from inside the app folder only.
type source struct{ root *os.Root }

// read returns the contents of name, or ok false when it does not exist.
func (s source) read(name string) (data []byte, ok bool, err error) {
	f, err := s.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, errkind.Errorf(errkind.Invalid, "reading %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, errkind.Errorf(errkind.Invalid, "reading %s: not a regular file", name)
	}
	data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxFileSize {
		return nil, false, errkind.Errorf(errkind.Invalid, "reading %s: larger than %d MiB", name, maxFileSize>>20)
	}
	return data, true, nil
}

// invalid reports a malformed dependency file at a line.
func invalid(file string, line int, format string, args ...any) error {
	return errkind.Errorf(errkind.Invalid, "parsing %s line %d: %s", file, line, fmt.Sprintf(format, args...))
}

// merge sorts components and folds duplicates (same kind, ecosystem, name
// and version) into one: direct if any was, licenses and hashes united.
func merge(cs []Component) []Component {
	cs = sorted(cs)
	out := cs[:0]
	for _, c := range cs {
		if n := len(out); n > 0 && out[n-1].Kind == c.Kind && out[n-1].key() == c.key() && out[n-1].Version == c.Version {
			last := &out[n-1]
			last.Direct = last.Direct || c.Direct
			last.Licenses = slices.Clip(last.Licenses) // never append into a caller's array
			for _, l := range c.Licenses {
				if !slices.Contains(last.Licenses, l) {
					last.Licenses = append(last.Licenses, l)
				}
			}
			if len(c.Hashes) > 0 {
				h := maps.Clone(last.Hashes)
				if h == nil {
					h = map[string]string{}
				}
				for k, v := range c.Hashes {
					if _, ok := h[k]; !ok {
						h[k] = v
					}
				}
				last.Hashes = h
			}
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
