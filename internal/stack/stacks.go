package stack

import (
	"path"
	"strings"
)

// The two kinds of stack image.
const (
	KindRun   = "run"   // what an app runs on: no shell, no package manager
	KindBuild = "build" // what an app's build steps run in, where a build needs tools
)

// definition is a built-in stack: the packages its images are made of, as
// Depends fields (so that a definition may constrain versions).
type definition struct {
	name     string
	run      string
	build    string   // "" when builds need no tools of the stack (static)
	runEnv   []string // added to the run image's environment
	buildEnv []string // added to the build image's environment
}

// common is what every image holds: CA certificates, the time zone
// database, /etc/services and /etc/protocols, and base-files for
// /etc/os-release (see baseFilesKept).
const common = "base-files, ca-certificates, netbase, tzdata"

// buildTools are the essential tools a build image adds, since npm and pip
// run scripts through sh and scripts use cp, mkdir, rm.
const buildTools = "coreutils, dash"

// definitions are the built-in stacks, in the order they are listed.
var definitions = []definition{
	{name: "static", run: common},
	{name: "node", run: common + ", nodejs", build: common + ", " + buildTools + ", nodejs, npm"},
	{name: "python", run: common + ", python3, python3-gunicorn",
		build: common + ", " + buildTools + ", python3, python3-venv, python3-pip",
		// Apps run on a read-only root: do not try to write bytecode
		// next to the sources. Logs go out unbuffered. Builds may
		// write bytecode, so that apps start faster.
		runEnv:   []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"},
		buildEnv: []string{"PYTHONUNBUFFERED=1"}},
}

// Names returns the names of the built-in stacks, in order.
func Names() []string {
	names := make([]string, len(definitions))
	for i, d := range definitions {
		names[i] = d.name
	}
	return names
}

func lookup(name string) (definition, bool) {
	for _, d := range definitions {
		if d.name == name {
			return d, true
		}
	}
	return definition{}, false
}

func (d definition) env(kind string) []string {
	if kind == KindBuild {
		return d.buildEnv
	}
	return d.runEnv
}

func (d definition) packages(kind string) string {
	if kind == KindBuild {
		return d.build
	}
	return d.run
}

// excludedRun are the packages a run image never holds, even when a kept
// package depends on them: they are needed only by maintainer scripts
// (which never run: images are unpacked, not installed), or they would put
// a shell, a package manager or user-management tools in the image. The
// dependency closure does not descend into them, so what only they need is
// left out too. Where a kept package needs one of them at run time, the
// image breaks: the tests run each stack's runtime to catch that.
var excludedRun = setOf(
	// package management and its keys
	"apt", "libapt-pkg6.0", "dpkg", "debconf", "debconf-2.0", "cdebconf", "debconf-i18n",
	"gpgv", "gpgv1", "gpgv2", "debian-archive-keyring", "ucf", "install-info",
	// shells and the essential command-line tools
	"bash", "dash", "coreutils", "debianutils", "sed", "grep", "findutils",
	"diffutils", "tar", "gzip", "hostname", "ncurses-bin", "bsdutils",
	"sensible-utils", "perl-base", "perl", "perl-modules-5.36",
	"awk", "mawk", "gawk", "original-awk",
	// system administration, init, users and logins
	"libc-bin", "util-linux", "util-linux-extra", "mount", "login", "passwd",
	"adduser", "base-passwd", "init-system-helpers", "lsb-base", "sysvinit-utils",
	"procps", "systemd", "systemd-sysv",
	// data only read by programs that are left out
	"readline-common",
	// openssl's command is only needed by ca-certificates' maintainer
	// script (update-ca-certificates); the bundle is generated instead.
	"openssl",
)

// excludedBuild are the packages a build image never holds: those of a
// run image except the shell and the basic tools that builds run.
var excludedBuild = without(excludedRun,
	"dash", "coreutils", "sed", "grep", "findutils", "diffutils", "tar", "gzip", "debianutils")

func excluded(kind string) map[string]bool {
	if kind == KindBuild {
		return excludedBuild
	}
	return excludedRun
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func without(m map[string]bool, names ...string) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// droppedTrees are folders no image keeps: documentation (except each
// package's copyright file, see keepFile), manual pages, translations,
// Debian's packaging checks and bug-report scripts.
var droppedTrees = []string{
	"usr/share/doc", "usr/share/doc-base", "usr/share/man", "usr/share/info",
	"usr/share/locale", "usr/share/lintian", "usr/share/bug", "usr/share/gtk-doc",
}

// baseFilesKept is all an image takes from base-files: the operating
// system's identity (which scanners read to match vulnerabilities) and the
// licences that copyright files refer to. base-files' other files are a
// login environment (profile, dot files, motd) that images do not need.
var baseFilesKept = []string{
	"etc/os-release", "usr/lib/os-release", "etc/debian_version",
	"usr/share/common-licenses", "usr/share/doc/base-files",
}

// keepFile reports whether the file name (clean, relative, after the
// merged-/usr mapping) of package pkg goes into an image.
func keepFile(pkg, name string) bool {
	if pkg == "base-files" && !underAny(name, baseFilesKept) && !isParentOfAny(name, baseFilesKept) {
		return false
	}
	if rest, ok := strings.CutPrefix(name, "usr/share/doc/"); ok {
		// usr/share/doc/<pkg>, a folder or a link to another
		// package's, and usr/share/doc/<pkg>/copyright stay.
		return !strings.Contains(rest, "/") || path.Base(rest) == "copyright" && strings.Count(rest, "/") == 1
	}
	if name == "usr/share/doc" {
		return true
	}
	return !underAny(name, droppedTrees)
}

// underAny reports whether name is one of trees or inside one.
func underAny(name string, trees []string) bool {
	for _, t := range trees {
		if name == t || strings.HasPrefix(name, t+"/") {
			return true
		}
	}
	return false
}

// isParentOfAny reports whether name is a folder above one of trees.
func isParentOfAny(name string, trees []string) bool {
	for _, t := range trees {
		if strings.HasPrefix(t, name+"/") {
			return true
		}
	}
	return false
}
