package sbom

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// A goRequire is one requirement of a go.mod.
type goRequire struct {
	path, version string
	indirect      bool
	line          int
}

// A goReplace is one replace directive; oldVersion "" replaces every version,
// newVersion "" means newPath is a folder.
type goReplace struct {
	oldPath, oldVersion, newPath, newVersion string
}

// goModules returns the modules a go.mod requires, after replacements, with
// hashes from go.sum (which may be nil). The main module is not listed.
// A module replaced by a folder keeps its path and loses its version: its
// code is the app's own.
func goModules(modName string, gomod []byte, sumName string, gosum []byte) ([]Component, error) {
	reqs, reps, err := parseGoMod(modName, gomod)
	if err != nil {
		return nil, err
	}
	sums, err := parseGoSum(sumName, gosum)
	if err != nil {
		return nil, err
	}
	var out []Component
	for _, r := range reqs {
		path, version := r.path, r.version
		if rep, ok := replacementFor(reps, path, version); ok {
			path, version = rep.newPath, rep.newVersion
			if version == "" {
				path = r.path
			}
		}
		c := Component{
			Kind: KindApp, Ecosystem: Golang, Name: path, Version: version,
			PURL: appPURL(Golang, path, version), Direct: !r.indirect,
		}
		if h, ok := sums[path+" "+version]; ok && version != "" {
			c.Hashes = map[string]string{"SHA-256": h}
		}
		out = append(out, c)
	}
	return merge(out), nil
}

func replacementFor(reps []goReplace, path, version string) (goReplace, bool) {
	var wild *goReplace
	for i, r := range reps {
		if r.oldPath != path {
			continue
		}
		if r.oldVersion == version {
			return r, true
		}
		if r.oldVersion == "" {
			wild = &reps[i]
		}
	}
	if wild != nil {
		return *wild, true
	}
	return goReplace{}, false
}

// parseGoMod reads the require and replace directives of a go.mod. Other
// directives, known or not, are skipped so that a newer Go's additions do
// not break the SBOM; malformed require and replace lines, stray or
// unclosed parentheses and bad quoting are errors.
func parseGoMod(name string, data []byte) ([]goRequire, []goReplace, error) {
	var (
		reqs      []goRequire
		reps      []goReplace
		block     string
		blockLine int
	)
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := i + 1
		toks, comment, err := goModTokens(string(raw))
		if err != nil {
			return nil, nil, invalid(name, line, "%v", err)
		}
		if len(toks) == 0 {
			continue
		}
		var verb string
		var args []string
		switch {
		case block != "" && toks[0] == ")":
			if len(toks) > 1 {
				return nil, nil, invalid(name, line, "unexpected %q after )", toks[1])
			}
			block = ""
			continue
		case block != "":
			verb, args = block, toks
		case len(toks) == 2 && toks[1] == "(":
			block, blockLine = toks[0], line
			if toks[0] == "(" || toks[0] == ")" {
				return nil, nil, invalid(name, line, "unexpected %q", toks[0])
			}
			continue
		default:
			verb, args = toks[0], toks[1:]
		}
		for _, t := range args {
			if t == "(" || t == ")" {
				return nil, nil, invalid(name, line, "unexpected %q", t)
			}
		}
		switch verb {
		case "(", ")":
			return nil, nil, invalid(name, line, "unexpected %q", verb)
		case "module":
			if len(args) != 1 {
				return nil, nil, invalid(name, line, "usage: module module/path")
			}
		case "require":
			if len(args) != 2 {
				return nil, nil, invalid(name, line, "usage: require module/path v1.2.3")
			}
			if err := checkGoModule(args[0], args[1]); err != nil {
				return nil, nil, invalid(name, line, "%v", err)
			}
			reqs = append(reqs, goRequire{path: args[0], version: args[1], indirect: isIndirect(comment), line: line})
		case "replace":
			r, err := parseGoReplace(args)
			if err != nil {
				return nil, nil, invalid(name, line, "%v", err)
			}
			reps = append(reps, r)
		}
	}
	if block != "" {
		return nil, nil, invalid(name, blockLine, "%s block is not closed", block)
	}
	return reqs, reps, nil
}

func parseGoReplace(args []string) (goReplace, error) {
	arrow := -1
	for i, a := range args {
		if a == "=>" {
			arrow = i
			break
		}
	}
	if arrow < 1 || arrow > 2 || len(args)-arrow-1 < 1 || len(args)-arrow-1 > 2 {
		return goReplace{}, errorString("usage: replace module/path [v1.2.3] => other/module v1.4.5 | ./folder")
	}
	r := goReplace{oldPath: args[0], newPath: args[arrow+1]}
	if arrow == 2 {
		r.oldVersion = args[1]
		if err := checkGoModule(r.oldPath, r.oldVersion); err != nil {
			return goReplace{}, err
		}
	}
	if len(args)-arrow-1 == 2 {
		r.newVersion = args[arrow+2]
		if err := checkGoModule(r.newPath, r.newVersion); err != nil {
			return goReplace{}, err
		}
	} else if !isFolderPath(r.newPath) {
		return goReplace{}, errorString("replacement module " + strconv.Quote(r.newPath) + " without version must be a folder (./ or ../ or /)")
	}
	return r, nil
}

func isFolderPath(p string) bool {
	return strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") ||
		p == "." || p == ".." || strings.HasPrefix(p, `.\`) || strings.HasPrefix(p, `..\`)
}

func checkGoModule(path, version string) error {
	if path == "" || strings.ContainsFunc(path, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return errorString("invalid module path " + strconv.Quote(path))
	}
	if len(version) < 2 || version[0] != 'v' || strings.ContainsFunc(version, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errorString("invalid version " + strconv.Quote(version) + " of " + path + ": want v1.2.3")
	}
	return nil
}

// isIndirect reports whether a requirement's comment marks it "// indirect"
// (or "// indirect; other words"), as the go command does.
func isIndirect(comment string) bool {
	f, _, _ := strings.Cut(comment, ";")
	return strings.TrimSpace(f) == "indirect"
}

// goModTokens splits a go.mod line into tokens: words, quoted strings
// (interpreted or raw), parentheses. The text after // is the comment.
func goModTokens(s string) (toks []string, comment string, err error) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(s[i:], "//"):
			return toks, strings.TrimSpace(s[i+2:]), nil
		case c == '(' || c == ')':
			toks = append(toks, s[i:i+1])
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, "", errorString("unterminated quoted string")
			}
			u, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, "", errorString("invalid quoted string " + s[i:j+1])
			}
			toks = append(toks, u)
			i = j + 1
		case c == '`':
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				return nil, "", errorString("unterminated raw string")
			}
			toks = append(toks, s[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r()\"`", rune(s[j])) && !strings.HasPrefix(s[j:], "//") {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, "", nil
}

// parseGoSum maps "path version" to the hex SHA-256 of the module's h1
// hash. Lines for go.mod files only and hashes other than h1 are skipped.
func parseGoSum(name string, data []byte) (map[string]string, error) {
	sums := map[string]string{}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(raw))
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, invalid(name, i+1, "want \"module/path version h1:hash\", got %d fields", len(f))
		}
		if strings.HasSuffix(f[1], "/go.mod") {
			continue
		}
		h, ok := strings.CutPrefix(f[2], "h1:")
		if !ok {
			continue
		}
		sum, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(sum) != 32 {
			return nil, invalid(name, i+1, "h1 hash of %s %s is not base64 of 32 bytes", f[0], f[1])
		}
		sums[f[0]+" "+f[1]] = hex.EncodeToString(sum)
	}
	return sums, nil
}

// errorString is an error with a fixed message, for parse details that
// are wrapped with the file and line by the caller.
type errorString string

func (e errorString) Error() string { return string(e) }
