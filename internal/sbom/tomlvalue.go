package sbom

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// value reads a TOML value: a string, an array, an inline table, a boolean,
// or a number or date (kept as its text).
func (p *tomlParser) value() (any, error) {
	if p.eof() {
		return nil, p.errf("expected a value")
	}
	rest := p.s[p.pos:]
	switch c := p.peek(); {
	case strings.HasPrefix(rest, `"""`):
		return p.multilineString(`"""`)
	case strings.HasPrefix(rest, `'''`):
		return p.multilineString(`'''`)
	case c == '"':
		return p.basicString()
	case c == '\'':
		return p.literalString()
	case c == '[':
		return p.array()
	case c == '{':
		return p.inlineTable()
	}
	start := p.pos
	for !p.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(p.peek())) {
		c := p.peek()
		if !isBareKey(c) && c != '.' && c != ':' && c != '+' {
			return nil, p.errf("invalid character %q in a value", c)
		}
		p.pos++
	}
	switch tok := p.s[start:p.pos]; {
	case tok == "":
		return nil, p.errf("expected a value")
	case tok == "true":
		return true, nil
	case tok == "false":
		return false, nil
	case tok[0] == '-' || tok[0] == '+' || tok[0] >= '0' && tok[0] <= '9' || tok == "inf" || tok == "nan":
		return tok, nil // a number or a date, kept as text
	default:
		p.pos = start
		return nil, p.errf("invalid value %q (strings need quotes)", tok)
	}
}

func (p *tomlParser) nest() error {
	if p.depth++; p.depth > 64 {
		return p.errf("arrays and tables nest deeper than 64")
	}
	return nil
}

func (p *tomlParser) array() ([]any, error) {
	if err := p.nest(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	start := p.pos
	p.pos++ // [
	out := []any{}
	for {
		p.space(true)
		if p.eof() {
			p.pos = start
			return nil, p.errf("unclosed array")
		}
		if p.peek() == ']' {
			p.pos++
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space(true)
		if p.eof() {
			p.pos = start
			return nil, p.errf("unclosed array")
		}
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
		default:
			return nil, p.errf("expected , or ] in an array, found %q", p.peek())
		}
	}
}

func (p *tomlParser) inlineTable() (map[string]any, error) {
	if err := p.nest(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	start := p.pos
	p.pos++ // {
	t := map[string]any{}
	for {
		p.space(true) // newlines are TOML 1.1; accept them
		if p.eof() {
			p.pos = start
			return nil, p.errf("unclosed inline table")
		}
		if p.peek() == '}' {
			p.pos++
			return t, nil
		}
		if err := p.keyValue(t); err != nil {
			return nil, err
		}
		p.space(true)
		if p.eof() {
			p.pos = start
			return nil, p.errf("unclosed inline table")
		}
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
		default:
			return nil, p.errf("expected , or } in an inline table, found %q", p.peek())
		}
	}
}

func (p *tomlParser) literalString() (string, error) {
	p.pos++ // '
	end := strings.IndexAny(p.s[p.pos:], "'\n")
	if end < 0 || p.s[p.pos+end] != '\'' {
		return "", p.errf("unterminated string")
	}
	s := p.s[p.pos : p.pos+end]
	p.pos += end + 1
	return s, nil
}

func (p *tomlParser) basicString() (string, error) {
	p.pos++ // "
	var b strings.Builder
	for {
		if p.eof() || p.peek() == '\n' {
			return "", p.errf("unterminated string")
		}
		c := p.peek()
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\':
			if err := p.escape(&b, false); err != nil {
				return "", err
			}
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", p.errf("control character %q in a string", c)
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

// multilineString reads a multi-line string, basic or literal (delim is
// its three quotes), whose opening delimiter is next.
func (p *tomlParser) multilineString(delim string) (string, error) {
	start := p.pos
	p.pos += 3
	if strings.HasPrefix(p.s[p.pos:], "\r\n") {
		p.pos += 2
	} else if strings.HasPrefix(p.s[p.pos:], "\n") {
		p.pos++
	}
	var b strings.Builder
	for {
		if p.eof() {
			p.pos = start
			return "", p.errf("unterminated multi-line string")
		}
		if strings.HasPrefix(p.s[p.pos:], delim) {
			// Up to two more quotes belong to the content.
			n := 3
			for n < 5 && p.pos+n < len(p.s) && p.s[p.pos+n] == delim[0] {
				n++
			}
			b.WriteString(p.s[p.pos : p.pos+n-3])
			p.pos += n
			return b.String(), nil
		}
		c := p.peek()
		if c == '\\' && delim == `"""` {
			if err := p.escape(&b, true); err != nil {
				return "", err
			}
			continue
		}
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return "", p.errf("control character %q in a string", c)
		}
		b.WriteByte(c)
		p.pos++
	}
}

// escape reads a backslash escape; in a multi-line string a backslash at
// the end of a line swallows the line break and the blanks after it.
func (p *tomlParser) escape(b *strings.Builder, multiline bool) error {
	p.pos++ // \
	if p.eof() {
		return p.errf("unterminated escape")
	}
	c := p.peek()
	p.pos++
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case 'e':
		b.WriteByte(0x1b)
	case '"':
		b.WriteByte('"')
	case '\\':
		b.WriteByte('\\')
	case 'u', 'U', 'x':
		n := map[byte]int{'u': 4, 'U': 8, 'x': 2}[c]
		if p.pos+n > len(p.s) {
			return p.errf("short \\%c escape", c)
		}
		r, err := strconv.ParseUint(p.s[p.pos:p.pos+n], 16, 32)
		if err != nil || !utf8.ValidRune(rune(r)) {
			return p.errf("invalid \\%c escape %q", c, p.s[p.pos:p.pos+n])
		}
		b.WriteRune(rune(r))
		p.pos += n
	default:
		if multiline && (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			p.pos--
			rest := p.s[p.pos:]
			trimmed := strings.TrimLeft(rest, " \t\r\n")
			if !strings.Contains(rest[:len(rest)-len(trimmed)], "\n") {
				return p.errf("a line-ending backslash must end its line")
			}
			p.pos += len(rest) - len(trimmed)
			return nil
		}
		return p.errf("invalid escape \\%c", c)
	}
	return nil
}
