package unpack

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	maxComponent = 255  // bytes in one sanitized path component
	maxName      = 1024 // bytes in a sanitized name
)

// sanitize turns an archive entry name into a relative slash-separated
// path that cannot leave the directory it is written under: backslashes
// become slashes, empty, "." and ".." components and leading slashes are
// dropped, control characters, NUL and invalid UTF-8 become '_', and long
// components and names are cut. An empty result is "unnamed".
func sanitize(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	var parts []string
	for p := range strings.SplitSeq(name, "/") {
		if p == "" || p == "." || p == ".." {
			continue
		}
		p = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				return '_'
			}
			return r
		}, p)
		parts = append(parts, cut(p, maxComponent))
	}
	s := strings.Join(parts, "/")
	if len(s) > maxName {
		s = cut(s, maxName)
	}
	if s == "" {
		return "unnamed"
	}
	return s
}

// cut shortens s to at most n bytes without splitting a rune.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// hostile reports whether an entry name tries to escape (absolute, "..")
// or hides characters, so that its sanitizing deserves a warning.
func hostile(name string) bool {
	n := strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(n, "/") || (len(n) >= 2 && n[1] == ':') {
		return true
	}
	for p := range strings.SplitSeq(n, "/") {
		if p == ".." {
			return true
		}
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return true
		}
	}
	return !utf8.ValidString(name)
}

// stripSuffix derives a decompressed object's name from its container's:
// x.tar.gz → x.tar, x.tgz → x.tar, x.gz → x; without a known suffix the
// name gets ".out".
func stripSuffix(name string, suffixes map[string]string) string {
	lower := strings.ToLower(name)
	for suf, repl := range suffixes {
		if strings.HasSuffix(lower, suf) && len(name) > len(suf) {
			return name[:len(name)-len(suf)] + repl
		}
	}
	return name + ".out"
}

var (
	gzipSuffixes  = map[string]string{".tgz": ".tar", ".taz": ".tar", ".gz": "", ".gzip": "", "-gz": "", ".z": ""}
	bzip2Suffixes = map[string]string{".tbz2": ".tar", ".tbz": ".tar", ".bz2": "", ".bz": "", ".bzip2": ""}
)

// human formats a byte count: "300 B", "12.0 KiB", "1.0 GiB".
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
