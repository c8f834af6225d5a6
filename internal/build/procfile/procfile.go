// Package procfile is the buildpack for a Procfile: it joins a language
// buildpack's group and declares the app's process types from the file
// (web is routed, worker runs unrouted, release runs once before a release
// goes live). Commands run without a shell, so the file's commands are
// split into arguments here and shell syntax is refused with a clear error.
// Importing it registers it with package build.
package procfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"noops/internal/build"
	"noops/internal/errkind"
)

func init() { build.Register(Buildpack{}) }

// Buildpack reads Procfiles.
type Buildpack struct{}

// Name and Expects describe the buildpack to package build.
func (Buildpack) Name() string    { return "procfile" }
func (Buildpack) Expects() string { return "Procfile" }

// Detect passes when the source has a Procfile at its root.
func (Buildpack) Detect(src string) (build.Detection, error) {
	fi, err := os.Stat(filepath.Join(src, "Procfile"))
	if errors.Is(err, os.ErrNotExist) {
		return build.Detection{}, nil
	}
	if err != nil {
		return build.Detection{}, err
	}
	return build.Detection{Pass: fi.Mode().IsRegular(), Reason: "Procfile"}, nil
}

// Build declares the Procfile's processes, replacing those of the same
// type that an earlier buildpack declared.
func (Buildpack) Build(_ context.Context, bc *build.Context) error {
	b, err := os.ReadFile(filepath.Join(bc.Src, "Procfile"))
	if err != nil {
		return fmt.Errorf("reading Procfile: %w", err)
	}
	procs, err := Parse(string(b), bc.Port)
	if err != nil {
		return err
	}
	types := make([]string, 0, len(procs))
	for t := range procs {
		types = append(types, t)
	}
	sort.Strings(types)
	// The language buildpack's environment (a venv's PATH, NODE_ENV)
	// stays: the Procfile changes only what runs.
	env := bc.Processes["web"].Env
	for _, t := range types {
		fmt.Fprintf(bc.Log, "Procfile: %s: %s\n", t, strings.Join(procs[t], " "))
		p := bc.Processes[t]
		if p.Env == nil {
			p.Env = env
		}
		p.Command = procs[t]
		bc.SetProcess(t, p)
	}
	return nil
}

// Parse reads a Procfile ("type: command" per line, # comments) into each
// type's arguments. $PORT and ${PORT} become port; any other shell syntax
// (pipes, redirections, variables, command substitution, &&) is refused,
// since processes run without a shell.
func Parse(text string, port int) (map[string][]string, error) {
	procs := map[string][]string{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		typ, cmd, ok := strings.Cut(line, ":")
		if !ok {
			return nil, invalid(n, "%q is not \"type: command\"", line)
		}
		typ = strings.TrimSpace(typ)
		if !known(typ) {
			return nil, invalid(n, "process type %q is not one noops runs (%s)", typ, strings.Join(build.ProcessTypes, ", "))
		}
		if _, dup := procs[typ]; dup {
			return nil, invalid(n, "process type %s appears twice", typ)
		}
		args, err := split(strings.TrimSpace(cmd), port)
		if err != nil {
			return nil, invalid(n, "%s: %v", typ, err)
		}
		if len(args) == 0 {
			return nil, invalid(n, "process type %s has no command", typ)
		}
		procs[typ] = args
	}
	if len(procs) == 0 {
		return nil, errkind.Errorf(errkind.Invalid, "Procfile declares no process")
	}
	return procs, nil
}

func invalid(line int, format string, args ...any) error {
	return errkind.WithHint(errkind.Invalid, fmt.Errorf("Procfile line %d: %s", line, fmt.Sprintf(format, args...)),
		"write one \"type: command\" per line, e.g. \"web: node server.js\"; commands run without a shell")
}

func known(typ string) bool {
	for _, t := range build.ProcessTypes {
		if t == typ {
			return true
		}
	}
	return false
}

// split splits a command into words as a shell would for plain words,
// single and double quotes and backslashes, and refuses the rest.
func split(s string, port int) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("a backslash ends the command")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("a single quote is not closed")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				switch {
				case s[j] == '\\' && j+1 < len(s):
					j++
					cur.WriteByte(s[j])
				case s[j] == '$':
					n, err := expand(s[j:], port, &cur)
					if err != nil {
						return nil, err
					}
					j += n - 1
				case s[j] == '`':
					return nil, errors.New("command substitution (`) needs a shell, which processes do not run in")
				default:
					cur.WriteByte(s[j])
				}
			}
			if j >= len(s) {
				return nil, errors.New("a double quote is not closed")
			}
			i = j
			inWord = true
		case c == '$':
			n, err := expand(s[i:], port, &cur)
			if err != nil {
				return nil, err
			}
			i += n - 1
			inWord = true
		case strings.IndexByte("|&;<>()`*?[]{}~#", c) >= 0:
			return nil, fmt.Errorf("%q is shell syntax; processes run without a shell: run a script or your program directly", string(c))
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// expand writes the port for $PORT or ${PORT} at the start of s and says
// how many bytes it read; other variables are refused.
func expand(s string, port int, w *strings.Builder) (int, error) {
	for _, form := range []string{"${PORT}", "$PORT"} {
		if strings.HasPrefix(s, form) {
			rest := s[len(form):]
			if form == "$PORT" && rest != "" && isName(rest[0]) {
				break
			}
			w.WriteString(strconv.Itoa(port))
			return len(form), nil
		}
	}
	return 0, fmt.Errorf("variables other than $PORT need a shell, which processes do not run in; read %s from the environment in your program", varName(s))
}

func isName(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func varName(s string) string {
	end := 1
	for end < len(s) && (isName(s[end]) || s[end] == '{' || s[end] == '}') {
		end++
	}
	return s[:end]
}
