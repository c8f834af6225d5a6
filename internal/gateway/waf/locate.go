package waf

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/corazawaf/coraza/v3"
)

// locate finds the line of the first directive of text that Coraza
// refuses (Coraza's errors name the directive, not its line): it
// compiles growing prefixes of text alone, without the CRS, and returns
// the 1-based line where the first failing directive starts, or 0 when
// text compiles alone (the error comes from its meeting the CRS).
func locate(fsys fs.FS, text string) (int, error) {
	starts, ends := directives(text)
	lines := strings.Split(text, "\n")
	compile := func(n int) error { // the first n directives
		if n == 0 {
			return nil
		}
		_, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(fsys).WithDirectives(strings.Join(lines[:ends[n-1]+1], "\n")))
		return err
	}
	if compile(len(starts)) == nil {
		return 0, nil
	}
	i := sort.Search(len(starts), func(i int) bool { return compile(i+1) != nil })
	if i == len(starts) {
		return 0, nil
	}
	return starts[i] + 1, compile(i + 1)
}

// directives returns the first and last line (0-based) of each logical
// directive of text: comments and blank lines skipped, lines ending in a
// backslash continued.
func directives(text string) (starts, ends []int) {
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		start := i
		for strings.HasSuffix(strings.TrimRight(lines[i], " \t\r"), "\\") && i+1 < len(lines) {
			i++
		}
		starts, ends = append(starts, start), append(ends, i)
	}
	return starts, ends
}

// LoadError is a rule-set directive that does not load.
type LoadError struct {
	File string // the name given in Config.DirectivesName
	Line int    // 1-based; 0 when unknown
	Err  error
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }
