package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"noops/internal/errkind"
)

// apt runs Debian's apt-get and apt-cache on a private apt state: its own
// package lists, caches, status file (empty: nothing is installed),
// preferences (none) and a copy of the host's source lists. The host's
// apt configuration is read (proxies, keys, index options) but its hooks
// are cleared, and nothing of the host's apt state is changed.
type apt struct {
	dir     string // DIR/apt
	arch    string // Debian architecture
	hostEtc string // the host's /etc/apt, whose sources are used
	log     *slog.Logger

	// mu is held for writing while the lists are updated and for reading
	// while they are used.
	mu sync.RWMutex
}

const aptHint = "noops assembles stacks with Debian's apt: run it on Debian (or a derivative) with apt-get, apt-cache and dpkg-deb on PATH (apt-get install apt dpkg)"

// tools checks that the programs stacks are built with are there.
func tools(names ...string) error {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return errkind.WithHint(errkind.Unavailable, fmt.Errorf("building stacks: %s is not installed", n), aptHint)
		}
	}
	return nil
}

func (a *apt) conf() string { return filepath.Join(a.dir, "apt.conf") }

// configure writes the private configuration and copies the host's
// sources. Every index target but the Packages files is disabled (the
// host may add translations, AppStream metadata, source indexes).
func (a *apt) configure(ctx context.Context) error {
	if strings.ContainsAny(a.dir, "\"\n\\") {
		return errkind.Errorf(errkind.Invalid, "configuring apt: the stacks folder %q has a quote or a newline in its name", a.dir)
	}
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return fmt.Errorf("configuring apt: %w", err)
		}
	}
	status := filepath.Join(a.dir, "state", "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		return fmt.Errorf("configuring apt: %w", err)
	}
	if err := copySources(a.hostEtc, a.dir); err != nil {
		return fmt.Errorf("configuring apt: copying the host's sources: %w", err)
	}
	base := a.baseConf()
	if err := writeFileAtomic(a.conf(), []byte(base)); err != nil {
		return fmt.Errorf("configuring apt: %w", err)
	}
	var out bytes.Buffer
	if err := a.run(ctx, "", &out, "apt-config", "dump"); err != nil {
		return fmt.Errorf("configuring apt: %w", err)
	}
	var b strings.Builder
	b.WriteString(base)
	for _, t := range indexTargets(out.String()) {
		if t != "deb::Packages" {
			fmt.Fprintf(&b, "Acquire::IndexTargets::%s::DefaultEnabled \"false\";\n", t)
		}
	}
	if err := writeFileAtomic(a.conf(), []byte(b.String())); err != nil {
		return fmt.Errorf("configuring apt: %w", err)
	}
	return nil
}

func (a *apt) baseConf() string {
	p := func(rel string) string { return filepath.Join(a.dir, rel) }
	return fmt.Sprintf(`// Written by noops: a private apt state for assembling stacks.
Dir::State "%s";
Dir::State::status "%s";
Dir::Cache "%s";
Dir::Cache::pkgcache "pkgcache.bin";
Dir::Cache::srcpkgcache "srcpkgcache.bin";
Dir::Etc::SourceList "%s";
Dir::Etc::SourceParts "%s";
Dir::Etc::Preferences "%s";
Dir::Etc::PreferencesParts "%s";
APT::Architecture "%s";
#clear APT::Architectures;
APT::Architectures { "%s"; };
Acquire::Languages "none";
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Pre-Invoke;
#clear DPkg::Post-Invoke;
#clear DPkg::Pre-Install-Pkgs;
`, p("state"), p("state/status"), p("cache"), p("sources.list"), p("sources.list.d"),
		p("preferences"), p("preferences.d"), a.arch, a.arch)
}

// indexTargets lists the index targets ("deb::Packages") in apt-config's dump.
func indexTargets(dump string) []string {
	var out []string
	for _, line := range strings.Split(dump, "\n") {
		name, _, ok := strings.Cut(line, " ")
		rest, found := strings.CutPrefix(name, "Acquire::IndexTargets::")
		if !ok || !found || strings.Count(rest, "::") != 1 {
			continue
		}
		out = append(out, rest)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// copySources copies the host's sources.list and the *.list and *.sources
// files of its sources.list.d into dir, leaving out files whose name says
// they are disabled. The private copy changes only when the lists are
// updated, so that the lists always match their sources.
func copySources(hostEtc, dir string) error {
	list := filepath.Join(dir, "sources.list")
	b, err := os.ReadFile(filepath.Join(hostEtc, "sources.list"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := writeFileAtomic(list, b); err != nil {
		return err
	}
	parts := filepath.Join(dir, "sources.list.d")
	old, err := os.ReadDir(parts)
	if err != nil {
		return err
	}
	for _, de := range old {
		if err := os.Remove(filepath.Join(parts, de.Name())); err != nil {
			return err
		}
	}
	des, err := os.ReadDir(filepath.Join(hostEtc, "sources.list.d"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, de := range des {
		n := de.Name()
		if !sourceFile(n) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(hostEtc, "sources.list.d", n))
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(parts, n), b); err != nil {
			return err
		}
	}
	return nil
}

// sourceFile reports whether apt reads a file so named in sources.list.d
// and it is not marked disabled.
func sourceFile(name string) bool {
	if strings.HasPrefix(name, ".") || strings.Contains(name, ".disabled") {
		return false
	}
	return strings.HasSuffix(name, ".list") || strings.HasSuffix(name, ".sources")
}

// hasLists reports whether the private state has package lists.
func (a *apt) hasLists() bool {
	m, _ := filepath.Glob(filepath.Join(a.dir, "state", "lists", "*_Packages*"))
	_, err := os.Stat(a.conf())
	return len(m) > 0 && err == nil
}

// update refreshes the private package lists from the host's sources.
// Any source that fails to download fails the update.
func (a *apt) update(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.updateLocked(ctx)
}

func (a *apt) updateLocked(ctx context.Context) error {
	if err := tools("apt-get", "apt-cache", "apt-config"); err != nil {
		return err
	}
	if err := a.configure(ctx); err != nil {
		return err
	}
	if err := a.run(ctx, "", io.Discard, "apt-get", "-q", "update", "--error-on=any"); err != nil {
		return errkind.WithHint(errkind.Unavailable, fmt.Errorf("updating package lists: %w", err),
			"check the machine's apt sources (/etc/apt/sources.list.d) and that the package archive is reachable")
	}
	if !a.hasLists() {
		return errkind.WithHint(errkind.Unavailable, errors.New("updating package lists: the machine's apt sources list no package archive"),
			"add a Debian archive to /etc/apt/sources.list.d")
	}
	return nil
}

// ensureLists updates the lists when there are none yet, and returns with
// the read lock held; the caller calls the returned release.
func (a *apt) ensureLists(ctx context.Context) (func(), error) {
	a.mu.RLock()
	if a.hasLists() {
		return a.mu.RUnlock, nil
	}
	a.mu.RUnlock()
	a.mu.Lock()
	if !a.hasLists() {
		if err := a.updateLocked(ctx); err != nil {
			a.mu.Unlock()
			return nil, err
		}
	}
	a.mu.Unlock()
	return a.ensureLists(ctx)
}

// run runs an apt program with the private configuration in dir (""
// for any), writing its standard output to stdout. A failure carries the
// end of what the program wrote to its standard error.
func (a *apt) run(ctx context.Context, dir string, stdout io.Writer, prog string, args ...string) error {
	if err := tools(prog); err != nil {
		return err
	}
	args = append([]string{"-c", a.conf()}, args...)
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(s string) bool {
		return strings.HasPrefix(s, "APT_CONFIG=") || strings.HasPrefix(s, "LC_ALL=") || strings.HasPrefix(s, "LANG=")
	}), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	a.log.Debug("running apt", "command", prog, "args", args[2:])
	err := cmd.Run()
	if err == nil {
		if s := strings.TrimSpace(stderr.String()); s != "" {
			a.log.Debug("apt said", "command", prog, "stderr", tail(s, 2000))
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return aptFailure(prog, args[2:], stderr.String(), err)
}

// aptFailure names a failed apt command and adds the end of what it
// said, without its notice that it downloads as root: the private state is
// in the data folder, which apt's _apt user may not enter.
func aptFailure(prog string, args []string, stderr string, err error) error {
	what := prog + " " + strings.Join(args[:min(len(args), 6)], " ")
	if len(args) > 6 {
		what += " …"
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.Contains(l, "Download is performed unsandboxed") {
			lines = append(lines, l)
		}
	}
	if s := strings.TrimSpace(strings.Join(lines, "\n")); s != "" {
		return fmt.Errorf("%s: %w: %s", what, err, tail(s, 2000))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// tail is the end of s, at most n bytes, from a line start when it can.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "…" + s
}

// index reads the candidate version of every package. The caller holds
// the lists (ensureLists).
func (a *apt) index(ctx context.Context) (*Index, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := a.run(ctx, "", pw, "apt-cache", "dumpavail")
		pw.CloseWithError(err)
		done <- err
	}()
	ix, err := ReadIndex(pr, a.arch)
	pr.CloseWithError(errors.New("index read"))
	runErr := <-done
	if err != nil {
		return nil, err // it carries runErr when apt-cache failed
	}
	if runErr != nil {
		return nil, fmt.Errorf("reading the package index: %w", runErr)
	}
	if ix.Len() == 0 {
		return nil, errkind.WithHint(errkind.Unavailable, fmt.Errorf("reading the package index: it lists no packages for %s", a.arch),
			"check the machine's apt sources, then run `noops stack update`")
	}
	return ix, nil
}

// show returns the archive's index entries of exactly these package
// versions, by name; versions the archive no longer has are missing from
// the result. The caller holds the lists.
func (a *apt) show(ctx context.Context, pkgs []Package) (map[string]*record, error) {
	args := []string{"show", "--no-all-versions"}
	for _, p := range pkgs {
		args = append(args, p.Name+"="+p.Version)
	}
	var out bytes.Buffer
	// apt-cache exits 0 when a version is not found, and 100 when a
	// package is: either way, what it found is on stdout.
	runErr := a.run(ctx, "", &out, "apt-cache", args...)
	want := map[string]string{}
	for _, p := range pkgs {
		want[p.Name] = p.Version
	}
	found := map[string]*record{}
	err := ParseControl(&out, func(p Paragraph) error {
		rec, err := recordOf(p)
		if err != nil {
			return err
		}
		if want[rec.Name] == rec.Version && (rec.Arch == a.arch || rec.Arch == "all") && found[rec.Name] == nil {
			found[rec.Name] = rec
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading apt-cache show: %w", err)
	}
	if runErr != nil && len(found) == 0 && !strings.Contains(runErr.Error(), "Unable to locate") && !strings.Contains(runErr.Error(), "No packages found") {
		return nil, runErr
	}
	return found, nil
}
