package stack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Field is one field of a Debian control paragraph. Value keeps the
// continuation lines of a multi-line field, joined with "\n" and with their
// leading space.
type Field struct {
	Name, Value string
}

// Paragraph is one record of a Debian control file (a Packages index entry,
// a package's control file, a dpkg status record), its fields in order.
type Paragraph []Field

// Get returns the value of the field named name (case-insensitively), or "".
func (p Paragraph) Get(name string) string {
	for _, f := range p {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// String formats p as a control paragraph, without the blank line that ends it.
func (p Paragraph) String() string {
	var b strings.Builder
	for _, f := range p {
		b.WriteString(f.Name)
		b.WriteString(":")
		if f.Value != "" && !strings.HasPrefix(f.Value, "\n") {
			b.WriteString(" ")
		}
		b.WriteString(f.Value)
		b.WriteString("\n")
	}
	return b.String()
}

// maxLine bounds one line of a control file; Packages indexes have lines of
// a few kilobytes at most.
const maxLine = 1 << 20

// ParseControl reads the Debian control paragraphs in r (RFC 822 style:
// "Name: value" fields, continuation lines starting with a space or a tab,
// paragraphs separated by blank lines, "#" comment lines ignored) and
// calls fn with each. An error from fn stops the reading and is returned.
func ParseControl(r io.Reader, fn func(Paragraph) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var p Paragraph
	line := 0
	flush := func() error {
		if len(p) == 0 {
			return nil
		}
		q := p
		p = nil
		return fn(q)
	}
	for sc.Scan() {
		line++
		b := bytes.TrimRight(sc.Bytes(), "\r")
		switch {
		case len(bytes.TrimSpace(b)) == 0:
			if err := flush(); err != nil {
				return err
			}
		case b[0] == '#':
		case b[0] == ' ' || b[0] == '\t':
			if len(p) == 0 {
				return fmt.Errorf("control line %d: continuation line without a field", line)
			}
			p[len(p)-1].Value += "\n" + string(b)
		default:
			name, value, ok := bytes.Cut(b, []byte(":"))
			if !ok || len(name) == 0 || !validFieldName(name) {
				return fmt.Errorf("control line %d: %q is not a field", line, truncate(string(b), 40))
			}
			p = append(p, Field{Name: string(name), Value: string(bytes.TrimSpace(value))})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("control line %d: longer than %d bytes", line+1, maxLine)
		}
		return err
	}
	return flush()
}

// validFieldName: printable ASCII without space or colon, not starting
// with "#" or "-" (Debian Policy 5.1).
func validFieldName(b []byte) bool {
	if b[0] == '#' || b[0] == '-' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
