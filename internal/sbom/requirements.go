package sbom

import (
	"encoding/hex"
	"path"
	"regexp"
	"strconv"
	"strings"

	"noops/internal/errkind"
)

// requirements reads a pip requirements file and the files it includes
// with -r (relative to the including file, inside the app folder).
func requirements(src source, name string) ([]Component, error) {
	seen := map[string]bool{}
	var out []Component
	// read reads name, included by from at line (from "" for the top file).
	var read func(name, from string, line, depth int) error
	read = func(name, from string, line, depth int) error {
		if seen[name] {
			return nil // included twice, or a cycle
		}
		seen[name] = true
		data, ok, err := src.read(name)
		switch {
		case err != nil:
			return err
		case !ok && from == "":
			return errkind.Errorf(errkind.Invalid, "reading %s: file does not exist", name)
		case !ok:
			return invalid(from, line, "included file %s does not exist", name)
		}
		reqs, includes, err := parseRequirements(name, data)
		if err != nil {
			return err
		}
		out = append(out, reqs...)
		for _, inc := range includes {
			target := path.Join(path.Dir(name), inc.file)
			if path.IsAbs(inc.file) || target == ".." || strings.HasPrefix(target, "../") {
				return invalid(name, inc.line, "include %q is outside the app folder", inc.file)
			}
			if depth >= 32 {
				return invalid(name, inc.line, "includes nest deeper than 32 files")
			}
			if err := read(target, name, inc.line, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := read(name, "", 0, 0); err != nil {
		return nil, err
	}
	return merge(out), nil
}

type include struct {
	file string
	line int
}

// parseRequirements parses one requirements file. It returns its
// requirements and the files it includes with -r/--requirement; constraint
// files (-c) are not installs and are not read. Global options (--index-url,
// --find-links…) are skipped. pip-compile's "# via" annotations decide
// whether a requirement is direct: one that is only "via" other packages is
// indirect; without annotations every listed requirement is direct.
func parseRequirements(name string, data []byte) ([]Component, []include, error) {
	var (
		out             []Component
		includes        []include
		viaPkg, viaFile = map[int]bool{}, map[int]bool{}
		cur             = -1 // the requirement "# via" lines are about
		inVia           bool // inside a multi-line "# via" list
	)
	via := func(entries []string) {
		for _, e := range entries {
			if strings.HasPrefix(e, "-") {
				viaFile[cur] = true
			} else {
				viaPkg[cur] = true
			}
		}
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimRight(lines[i], "\r")
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) { // continuation
			i++
			line = strings.TrimSuffix(line, `\`) + strings.TrimRight(lines[i], "\r")
		}
		line = strings.TrimSuffix(line, `\`)

		text, comment := splitComment(line)
		text = strings.TrimSpace(text)
		if text == "" {
			c := strings.TrimSpace(comment)
			switch entries, ok := viaList(c); {
			case cur >= 0 && ok:
				inVia = true
				via(entries)
			case cur >= 0 && inVia && c != "" && (strings.HasPrefix(comment, " ") || strings.HasPrefix(comment, "\t")):
				via(strings.Fields(c)[:1])
			case c == "":
				inVia, cur = false, -1 // a blank line ends what follows a requirement
			default:
				inVia = false
			}
			continue
		}
		inVia, cur = false, -1
		if strings.HasPrefix(text, "-") {
			opt, val := splitOption(text)
			switch opt {
			case "-r", "--requirement":
				if val == "" {
					return nil, nil, invalid(name, lineNo, "%s needs a file name", opt)
				}
				includes = append(includes, include{file: val, line: lineNo})
			case "-e", "--editable":
				if egg := eggName(val); egg != "" {
					c, err := pypiComponent(egg, "", nil)
					if err != nil {
						return nil, nil, invalid(name, lineNo, "%v", err)
					}
					out = append(out, c)
				}
			}
			continue
		}
		c, ok, err := parseRequirementLine(text)
		if err != nil {
			return nil, nil, invalid(name, lineNo, "%v", err)
		}
		if ok {
			out = append(out, c)
			cur = len(out) - 1
			if entries, ok := viaList(strings.TrimSpace(comment)); ok { // "flask==3.0  # via -r in"
				inVia = true
				via(entries)
			}
		}
	}
	for i := range out {
		out[i].Direct = viaFile[i] || !viaPkg[i]
	}
	return out, includes, nil
}

// splitComment splits at a # that starts the line or follows whitespace,
// as pip does (a # inside a URL fragment is not a comment).
func splitComment(line string) (text, comment string) {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i], line[i+1:]
		}
	}
	return line, ""
}

// viaList reads pip-compile's "via x, y" (or a bare "via" that opens a list).
func viaList(c string) ([]string, bool) {
	rest, ok := strings.CutPrefix(c, "via")
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return nil, false
	}
	return strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }), true
}

// splitOption splits "-r file", "-rfile", "--requirement=file" or
// "--requirement file" into the option and its value.
func splitOption(text string) (opt, val string) {
	if strings.HasPrefix(text, "--") {
		opt, val, ok := strings.Cut(text, "=")
		if !ok {
			f := strings.Fields(text)
			opt, val = f[0], strings.TrimSpace(strings.TrimPrefix(text, f[0]))
		}
		return strings.TrimSpace(opt), strings.TrimSpace(val)
	}
	if len(text) > 2 && text[2] != ' ' && text[2] != '\t' {
		return text[:2], strings.TrimSpace(text[2:])
	}
	return text[:min(2, len(text))], strings.TrimSpace(text[min(2, len(text)):])
}

var eggRE = regexp.MustCompile(`#egg=([A-Za-z0-9][A-Za-z0-9._-]*)`)

func eggName(s string) string {
	if m := eggRE.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

var (
	reqNameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?`)
	specRE    = regexp.MustCompile(`^\s*(===|==|~=|!=|<=|>=|<|>)\s*([A-Za-z0-9_.*+!-]+)\s*$`)
)

// parseRequirementLine parses a PEP 508 requirement with pip's per-line
// options: name[extras] (specifiers) ; marker --hash=alg:hex. It returns
// ok false for lines that name no package (a local folder or a URL without
// #egg=). The version is set only for an exact pin (== or ===, no
// wildcard); markers are kept out of the decision (the package is listed).
func parseRequirementLine(text string) (Component, bool, error) {
	// Per-requirement options start at the first " -" or " --" token.
	var opts []string
	fields := strings.Fields(text)
	for i, f := range fields {
		if strings.HasPrefix(f, "-") {
			opts = fields[i:]
			text = strings.Join(fields[:i], " ")
			break
		}
	}
	var hashes []string
	for i := 0; i < len(opts); i++ {
		o := opts[i]
		if o == "--hash" && i+1 < len(opts) {
			i++
			o = "--hash=" + opts[i]
		}
		if h, ok := strings.CutPrefix(o, "--hash="); ok {
			hashes = append(hashes, h)
		}
	}
	if strings.HasPrefix(text, ".") || strings.HasPrefix(text, "/") || strings.Contains(strings.SplitN(text, " ", 2)[0], "://") {
		if egg := eggName(text); egg != "" {
			c, err := pypiComponent(egg, "", hashes)
			return c, err == nil, err
		}
		return Component{}, false, nil // a local folder, archive or URL
	}
	req, _, _ := strings.Cut(text, ";") // the marker is not evaluated
	req = strings.TrimSpace(req)
	name := reqNameRE.FindString(req)
	if name == "" {
		return Component{}, false, errorString("invalid requirement " + strconv.Quote(text))
	}
	rest := strings.TrimSpace(req[len(name):])
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return Component{}, false, errorString("unclosed extras in " + strconv.Quote(text))
		}
		rest = strings.TrimSpace(rest[end+1:])
	}
	version := ""
	switch {
	case rest == "":
	case strings.HasPrefix(rest, "@"):
		if strings.TrimSpace(rest[1:]) == "" {
			return Component{}, false, errorString("missing URL after @ in " + strconv.Quote(text))
		}
	default:
		rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(rest, "("), ")"))
		specs := strings.Split(rest, ",")
		for _, s := range specs {
			m := specRE.FindStringSubmatch(s)
			if m == nil {
				return Component{}, false, errorString("invalid version specifier " + strconv.Quote(strings.TrimSpace(s)) + " in " + strconv.Quote(text))
			}
			if len(specs) == 1 && (m[1] == "==" || m[1] == "===") && !strings.Contains(m[2], "*") {
				version = m[2]
			}
		}
	}
	c, err := pypiComponent(name, version, hashes)
	return c, err == nil, err
}

// pypiComponent builds a PyPI component; hashes are pip's "alg:hex". A
// digest is recorded only when there is one per algorithm: with several
// (one per wheel) it is not known which file was installed.
func pypiComponent(name, version string, hashes []string) (Component, error) {
	n := pypiName(name)
	c := Component{Kind: KindApp, Ecosystem: PyPI, Name: n, Version: version, PURL: appPURL(PyPI, n, version), Direct: true}
	algs := map[string]string{"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512", "md5": "MD5", "sha1": "SHA-1"}
	sizes := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64, "md5": 16, "sha1": 20}
	count := map[string]int{}
	for _, h := range hashes {
		alg, digest, ok := strings.Cut(h, ":")
		if !ok {
			return Component{}, errorString("invalid hash " + strconv.Quote(h) + ": want alg:hex")
		}
		alg = strings.ToLower(alg)
		cdx, known := algs[alg]
		if !known {
			return Component{}, errorString("unknown hash algorithm " + strconv.Quote(alg))
		}
		b, err := hex.DecodeString(digest)
		if err != nil || len(b) != sizes[alg] {
			return Component{}, errorString("invalid " + alg + " hash " + strconv.Quote(digest))
		}
		count[cdx]++
		if c.Hashes == nil {
			c.Hashes = map[string]string{}
		}
		c.Hashes[cdx] = strings.ToLower(digest)
	}
	for alg, n := range count {
		if n > 1 {
			delete(c.Hashes, alg)
		}
	}
	if len(c.Hashes) == 0 {
		c.Hashes = nil
	}
	return c, nil
}
