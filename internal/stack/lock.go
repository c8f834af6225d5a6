package stack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"noops/internal/errkind"
)

// Lock records exactly what a stack image is made of, so that building it
// again gives the same image until the stack is updated.
type Lock struct {
	Stack   string    `json:"stack"`
	Kind    string    `json:"kind"`   // KindRun or KindBuild
	Distro  string    `json:"distro"` // ID-VERSION_ID of its os-release: "debian-12"
	Arch    string    `json:"arch"`   // Debian architecture: "amd64", "arm64"
	Created time.Time `json:"created"`
	// Requested is the stack definition's package list the packages
	// were resolved from; a lock of another definition is out of date.
	Requested string    `json:"requested"`
	Packages  []Package `json:"packages"` // sorted by name
	// Excluded are the packages the dependency closure reached and left
	// out (see excludedRun), for the record.
	Excluded []string `json:"excluded,omitempty"`
}

// Package is one Debian package in a stack image.
type Package struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Arch          string `json:"arch"`
	Source        string `json:"source"`         // source package name
	SourceVersion string `json:"source_version"` // which security trackers match
	SHA256        string `json:"sha256"`         // of the .deb file
	Filename      string `json:"filename"`       // in the archive's pool
	Size          int64  `json:"size"`           // of the .deb file
}

// Change is one package that differs between two locks: From is "" for
// an added package, To is "" for a removed one.
type Change struct {
	Package string `json:"package"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// encode is the lock's file contents; its digest labels the image.
func (l Lock) encode() ([]byte, error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Digest is "sha256:" and the hex SHA-256 of the lock's file contents.
func (l Lock) Digest() (string, error) {
	b, err := l.encode()
	if err != nil {
		return "", fmt.Errorf("encoding lock of %s %s: %w", l.Stack, l.Kind, err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// samePackages reports whether a and b pin the same files.
func samePackages(a, b []Package) bool {
	return slices.Equal(a, b)
}

// diff lists what changed from the packages of old to those of new.
func diff(old, new []Package) []Change {
	was := map[string]string{}
	for _, p := range old {
		was[p.Name] = p.Version
	}
	var out []Change
	for _, p := range new {
		v, ok := was[p.Name]
		delete(was, p.Name)
		if !ok || v != p.Version {
			out = append(out, Change{Package: p.Name, From: v, To: p.Version})
		}
	}
	for n, v := range was {
		out = append(out, Change{Package: n, From: v})
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Package, b.Package) })
	return out
}

func lockPath(dir, stack, kind string) string {
	return filepath.Join(dir, "locks", stack+"-"+kind+".json")
}

// readLock reads the lock of stack's kind; errkind.NotFound when there is none.
func readLock(dir, stack, kind string) (Lock, error) {
	p := lockPath(dir, stack, kind)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Lock{}, errkind.Errorf(errkind.NotFound, "stack %s has no %s lock yet", stack, kind)
	}
	if err != nil {
		return Lock{}, fmt.Errorf("reading lock %s: %w", p, err)
	}
	var l Lock
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		return Lock{}, errkind.WithHint(errkind.Invalid, fmt.Errorf("reading lock %s: %w", p, err),
			fmt.Sprintf("run `noops stack update %s` to write a new one", stack))
	}
	if l.Stack != stack || l.Kind != kind {
		return Lock{}, errkind.Errorf(errkind.Invalid, "reading lock %s: it is the lock of %s %s", p, l.Stack, l.Kind)
	}
	return l, nil
}

// writeLock writes l atomically: a crash leaves the old lock or the new one.
func writeLock(dir string, l Lock) error {
	p := lockPath(dir, l.Stack, l.Kind)
	b, err := l.encode()
	if err != nil {
		return fmt.Errorf("writing lock %s: %w", p, err)
	}
	if err := writeFileAtomic(p, b); err != nil {
		return fmt.Errorf("writing lock %s: %w", p, err)
	}
	return nil
}

// tmpPrefix starts the names of files being written; they are renamed
// into place when whole.
const tmpPrefix = ".tmp-"

func writeFileAtomic(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), tmpPrefix)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
