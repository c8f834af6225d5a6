package sbom

import (
	"fmt"
	"strings"
)

// This is a small TOML reader, enough for poetry.lock and pyproject.toml:
// tables, arrays of tables, dotted and quoted keys, the four string forms,
// booleans, arrays and inline tables. Numbers and dates are kept as their
// text. It exists so that reading a lockfile needs no new dependency.

// tomlLineKey holds, in each table of an array of tables, the line of its
// header, so that errors about an entry can name it. No TOML key has it.
const tomlLineKey = "\x00line"

// tomlTables is an array of tables ([[name]]), distinct from a value array.
type tomlTables []map[string]any

type tomlParser struct {
	s     string
	pos   int
	depth int
	// counted: the line at offset countedPos, for line() to go on from.
	counted, countedPos int
}

// line returns the 1-based line of the current position.
func (p *tomlParser) line() int {
	if p.countedPos > p.pos {
		p.counted, p.countedPos = 1, 0
	}
	if p.counted == 0 {
		p.counted = 1
	}
	p.counted += strings.Count(p.s[p.countedPos:p.pos], "\n")
	p.countedPos = p.pos
	return p.counted
}

type tomlError struct {
	pos int
	msg string
}

func (e *tomlError) Error() string { return e.msg }

// parseTOML parses data; errors are errkind.Invalid naming file and line.
func parseTOML(name string, data []byte) (map[string]any, error) {
	p := &tomlParser{s: string(data)}
	doc, err := p.document()
	if err != nil {
		te := err.(*tomlError)
		line, _ := lineCol(data, te.pos)
		return nil, invalid(name, line, "%s", te.msg)
	}
	return doc, nil
}

func (p *tomlParser) errf(format string, args ...any) error {
	return &tomlError{pos: p.pos, msg: fmt.Sprintf(format, args...)}
}

func (p *tomlParser) eof() bool  { return p.pos >= len(p.s) }
func (p *tomlParser) peek() byte { return p.s[p.pos] }

// space skips blanks; with newlines also line breaks and comments.
func (p *tomlParser) space(newlines bool) {
	for !p.eof() {
		switch c := p.peek(); {
		case c == ' ' || c == '\t':
			p.pos++
		case newlines && (c == '\n' || c == '\r'):
			p.pos++
		case newlines && c == '#':
			for !p.eof() && p.peek() != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

// endOfLine accepts blanks, a comment, then a line break or the end.
func (p *tomlParser) endOfLine() error {
	p.space(false)
	if !p.eof() && p.peek() == '#' {
		for !p.eof() && p.peek() != '\n' {
			p.pos++
		}
	}
	if !p.eof() && p.peek() == '\r' {
		p.pos++
	}
	if p.eof() || p.peek() == '\n' {
		return nil
	}
	return p.errf("unexpected %q at the end of a line", p.s[p.pos:min(p.pos+10, len(p.s))])
}

func (p *tomlParser) document() (map[string]any, error) {
	root := map[string]any{}
	cur := root
	for {
		p.space(true)
		if p.eof() {
			return root, nil
		}
		var err error
		if strings.HasPrefix(p.s[p.pos:], "[[") {
			p.pos += 2
			var keys []string
			if keys, err = p.keys(); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(p.s[p.pos:], "]]") {
				return nil, p.errf("expected ]] to close a table array header")
			}
			p.pos += 2
			if cur, err = p.arrayTable(root, keys); err != nil {
				return nil, err
			}
		} else if p.peek() == '[' {
			p.pos++
			var keys []string
			if keys, err = p.keys(); err != nil {
				return nil, err
			}
			if p.eof() || p.peek() != ']' {
				return nil, p.errf("expected ] to close a table header")
			}
			p.pos++
			if cur, err = p.table(root, keys, true); err != nil {
				return nil, err
			}
		} else if err = p.keyValue(cur); err != nil {
			return nil, err
		}
		if err = p.endOfLine(); err != nil {
			return nil, err
		}
	}
}

func (p *tomlParser) keyValue(t map[string]any) error {
	keys, err := p.keys()
	if err != nil {
		return err
	}
	if p.eof() || p.peek() != '=' {
		return p.errf("expected = after key %q", strings.Join(keys, "."))
	}
	p.pos++
	p.space(false)
	v, err := p.value()
	if err != nil {
		return err
	}
	parent, err := p.table(t, keys[:len(keys)-1], false)
	if err != nil {
		return err
	}
	last := keys[len(keys)-1]
	if _, dup := parent[last]; dup {
		return p.errf("duplicate key %q", strings.Join(keys, "."))
	}
	parent[last] = v
	return nil
}

// keys reads a dotted key: bare, "basic" or 'literal' parts.
func (p *tomlParser) keys() ([]string, error) {
	var keys []string
	for {
		p.space(false)
		if p.eof() {
			return nil, p.errf("expected a key")
		}
		var k string
		switch c := p.peek(); {
		case c == '"':
			s, err := p.basicString()
			if err != nil {
				return nil, err
			}
			k = s
		case c == '\'':
			s, err := p.literalString()
			if err != nil {
				return nil, err
			}
			k = s
		default:
			start := p.pos
			for !p.eof() && isBareKey(p.peek()) {
				p.pos++
			}
			if p.pos == start {
				return nil, p.errf("expected a key, found %q", c)
			}
			k = p.s[start:p.pos]
		}
		keys = append(keys, k)
		p.space(false)
		if p.eof() || p.peek() != '.' {
			return keys, nil
		}
		p.pos++
	}
}

func isBareKey(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// table walks to (creating) the table at keys. Through an array of tables
// it enters the last one, as [package.dependencies] after [[package]] does.
func (p *tomlParser) table(t map[string]any, keys []string, header bool) (map[string]any, error) {
	for i, k := range keys {
		switch v := t[k].(type) {
		case nil:
			n := map[string]any{}
			t[k] = n
			t = n
		case map[string]any:
			t = v
		case tomlTables:
			if !header {
				return nil, p.errf("key %q is an array of tables", strings.Join(keys[:i+1], "."))
			}
			t = v[len(v)-1]
		default:
			return nil, p.errf("key %q is a value, not a table", strings.Join(keys[:i+1], "."))
		}
	}
	return t, nil
}

func (p *tomlParser) arrayTable(root map[string]any, keys []string) (map[string]any, error) {
	parent, err := p.table(root, keys[:len(keys)-1], true)
	if err != nil {
		return nil, err
	}
	last := keys[len(keys)-1]
	n := map[string]any{tomlLineKey: p.line()}
	switch v := parent[last].(type) {
	case nil:
		parent[last] = tomlTables{n}
	case tomlTables:
		parent[last] = append(v, n)
	default:
		return nil, p.errf("key %q is not an array of tables", strings.Join(keys, "."))
	}
	return n, nil
}
