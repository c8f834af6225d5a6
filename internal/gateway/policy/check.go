package policy

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"noops/internal/errkind"
)

//go:embed schema.cedarschema
var schemaText []byte

// validator is the strict validator of the embedded schema, built once. The
// validator is read-only after New, so sharing it is safe.
var validator = sync.OnceValue(func() *validate.Validator {
	var s schema.Schema
	s.SetFilename("schema.cedarschema")
	if err := s.UnmarshalCedar(schemaText); err != nil {
		panic(fmt.Sprintf("policy: parsing the embedded schema: %v", err))
	}
	r, err := s.Resolve()
	if err != nil {
		panic(fmt.Sprintf("policy: resolving the embedded schema: %v", err))
	}
	return validate.New(r, validate.WithStrict())
})

// Check parses src as Cedar and validates every policy in it against the
// schema. Errors are errkind.Invalid and start with file:line:col.
func Check(file string, src []byte) error {
	_, err := parse(file, src, false)
	return err
}

// compiled is one policy of a set with the name it is reported by.
type compiled struct {
	id     cedar.PolicyID
	policy *cedar.Policy
	name   string // "admins-only (policy.cedar:3:1)"
}

// parse parses and validates src. Built-in policies are named by their @id
// alone; a file's by @id (else "policyN") and position.
func parse(file string, src []byte, builtin bool) (list []compiled, err error) {
	defer func() {
		// cedar-go's validator lives under x/exp; a panic in it must refuse
		// the file, not take the caller down.
		if p := recover(); p != nil {
			list, err = nil, errkind.Errorf(errkind.Invalid, "%s: validating policies: internal error in the Cedar validator: %v", file, p)
		}
	}()
	ps, err := cedar.NewPolicyListFromBytes(file, src)
	if err != nil {
		return nil, errkind.E(errkind.Invalid, syntaxError(file, err))
	}
	v := validator()
	var errs []error
	for i, p := range ps {
		id := cedar.PolicyID("policy" + strconv.Itoa(i))
		pos := p.Position()
		name := string(id)
		if a, ok := p.Annotations()["id"]; ok && a != "" {
			name = string(a)
		}
		if !builtin {
			name += " (" + posString(file, pos.Line, pos.Column) + ")"
		}
		list = append(list, compiled{id: id, policy: p, name: name})
		if verr := v.Policy(string(id), (*xast.Policy)(p.AST())); verr != nil {
			end := len(src)
			if i+1 < len(ps) {
				end = ps[i+1].Position().Offset
			}
			for _, msg := range validationMessages(verr) {
				line, col := locate(src, pos.Offset, end, msg)
				if line == 0 {
					line, col = pos.Line, pos.Column
				}
				errs = append(errs, fmt.Errorf("%s: %s", posString(file, line, col), msg))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errkind.E(errkind.Invalid, errors.Join(errs...))
	}
	return list, nil
}

func posString(file string, line, col int) string {
	return file + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col)
}

var parseErrRE = regexp.MustCompile(`parse error at [^:]*:(\d+):(\d+) (.*)$`)

// syntaxError rewrites cedar-go's "parser error: parse error at
// <input>:2:23 ";": invalid primary" as "file:2:23: syntax error near ";":
// invalid primary".
func syntaxError(file string, err error) error {
	m := parseErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "parser error: "))
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	return fmt.Errorf("%s: syntax error near %s", posString(file, line, col), m[3])
}

var (
	policyPrefixRE = regexp.MustCompile("^for policy `[^`]*`, ")
	forActionRE    = regexp.MustCompile(` for Action::"(?:[^"\\]|\\.)*"`)
	quotedRE       = regexp.MustCompile("`([^`]+)`")
)

// validationMessages flattens the validator's joined errors, drops the
// "for policy `policyN`, " prefix and merges the per-action copies of the
// same message ("attribute `x` in context for Action::"GET" not found").
func validationMessages(err error) []string {
	var out []string
	for _, e := range flatten(err) {
		msg := policyPrefixRE.ReplaceAllString(e.Error(), "")
		msg = forActionRE.ReplaceAllString(msg, "")
		if !slices.Contains(out, msg) {
			out = append(out, msg)
		}
	}
	// The scope complaint only repeats a more precise message.
	if len(out) > 1 {
		out = slices.DeleteFunc(out, func(m string) bool {
			return m == "unable to find an applicable action given the policy scope constraints"
		})
	}
	return out
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// locate finds, in src[start:end] outside comments, the token a validation
// message is about: the attribute, entity type or action it quotes. It
// returns 0, 0 when it cannot tell.
func locate(src []byte, start, end int, msg string) (line, col int) {
	m := quotedRE.FindStringSubmatch(msg)
	if m == nil || start < 0 || end > len(src) || start >= end {
		return 0, 0
	}
	q := m[1]
	var needles []string
	switch {
	case strings.HasPrefix(msg, "attribute "):
		attr := q[strings.LastIndexByte(q, '.')+1:]
		needles = []string{"." + attr, `["` + attr + `"]`}
	case strings.HasPrefix(msg, "unrecognized action "):
		needles = []string{q, q[strings.Index(q, "::")+2:]}
	case strings.HasPrefix(msg, "unrecognized entity type "):
		needles = []string{q}
	default:
		return 0, 0
	}
	for _, n := range needles {
		if off := find(src[start:end], n); off >= 0 {
			if n[0] == '.' {
				off++ // point at the attribute, not the dot
			}
			return lineCol(src, start+off)
		}
	}
	return 0, 0
}

// find returns the offset of the first occurrence of needle in text that is
// not inside a // comment and not part of a longer identifier.
func find(text []byte, needle string) int {
	s := string(text)
	for off := 0; off < len(s); {
		nl := strings.IndexByte(s[off:], '\n')
		lineEnd := len(s)
		if nl >= 0 {
			lineEnd = off + nl
		}
		line := s[off:lineEnd]
		if c := strings.Index(line, "//"); c >= 0 {
			line = line[:c]
		}
		for from := 0; ; {
			i := strings.Index(line[from:], needle)
			if i < 0 {
				break
			}
			at := from + i
			after := at + len(needle)
			startOK := at == 0 || !isIdent(line[at-1]) || !isIdent(needle[0])
			endOK := after >= len(line) || !isIdent(line[after]) || !isIdent(needle[len(needle)-1])
			if startOK && endOK {
				return off + at
			}
			from = at + 1
		}
		off = lineEnd + 1
	}
	return -1
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// lineCol returns the 1-based line and character column of offset off.
func lineCol(src []byte, off int) (line, col int) {
	before := src[:off]
	line = 1 + strings.Count(string(before), "\n")
	lineStart := strings.LastIndexByte(string(before), '\n') + 1
	return line, 1 + utf8.RuneCount(before[lineStart:])
}
