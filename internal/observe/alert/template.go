package alert

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// tmplData is what an annotation template sees.
type tmplData struct {
	Value     float64
	Labels    map[string]string
	App       string
	Threshold float64
}

// tmplFuncs replaces the built-in printf with one that refuses huge
// widths and precisions ("%999999999d" would allocate a gigabyte).
var tmplFuncs = template.FuncMap{"printf": safePrintf}

// parseTemplate parses an annotation. So that a rule cannot make the
// engine loop or allocate without bound, it refuses {{define}},
// {{block}} and {{template}}, a {{range}} over anything but .Labels, and
// a {{range}} inside another; and it renders the template once with
// empty data so that errors show at Validate.
func parseTemplate(name, text string) (*template.Template, error) {
	if len(text) > maxTemplate || !utf8.ValidString(text) {
		return nil, fmt.Errorf("annotation %s: longer than %d bytes or not UTF-8", name, maxTemplate)
	}
	t, err := template.New(name).Option("missingkey=zero").Funcs(tmplFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing annotation %s: %w", name, err)
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("parsing annotation %s: define and block are not allowed", name)
	}
	if err := checkNodes(t.Root, false); err != nil {
		return nil, fmt.Errorf("parsing annotation %s: %w", name, err)
	}
	if _, err := render(t, tmplData{Labels: map[string]string{}}); err != nil {
		return nil, fmt.Errorf("rendering annotation %s: %w", name, err)
	}
	return t, nil
}

// checkNodes walks a template's tree for what parseTemplate refuses.
func checkNodes(n parse.Node, inRange bool) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNodes(c, inRange); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return errors.New("{{template}} is not allowed")
	case *parse.RangeNode:
		if inRange {
			return errors.New("{{range}} inside {{range}} is not allowed")
		}
		if !overLabels(n.Pipe) {
			return errors.New("{{range}} is allowed only over .Labels")
		}
		if err := checkNodes(n.List, true); err != nil {
			return err
		}
		return checkNodes(n.ElseList, inRange)
	case *parse.IfNode:
		if err := checkNodes(n.List, inRange); err != nil {
			return err
		}
		return checkNodes(n.ElseList, inRange)
	case *parse.WithNode:
		if err := checkNodes(n.List, inRange); err != nil {
			return err
		}
		return checkNodes(n.ElseList, inRange)
	}
	return nil
}

// overLabels reports whether p is .Labels or $.Labels, optionally
// declaring variables.
func overLabels(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return len(a.Ident) == 1 && a.Ident[0] == "Labels"
	case *parse.VariableNode:
		return len(a.Ident) == 2 && a.Ident[0] == "$" && a.Ident[1] == "Labels"
	}
	return false
}

// errFull stops a template that renders more than maxAnnotation bytes.
var errFull = errors.New("annotation too long")

type limitWriter struct{ b strings.Builder }

func (w *limitWriter) Write(p []byte) (int, error) {
	if room := maxAnnotation - w.b.Len(); len(p) > room {
		w.b.Write(p[:room])
		return room, errFull
	}
	return w.b.Write(p)
}

// render executes t on d. Output past maxAnnotation bytes is cut, not an
// error.
func render(t *template.Template, d tmplData) (string, error) {
	var w limitWriter
	err := t.Execute(&w, d)
	if errors.Is(err, errFull) {
		err = nil
	}
	return clipBytes(strings.ToValidUTF8(w.b.String(), "\uFFFD"), maxAnnotation), err
}

// renderAnnotations renders a rule's annotations for one alert. A
// template that fails renders as the error, as Prometheus does.
func renderAnnotations(c *compiled, labels map[string]string, value float64) map[string]string {
	if len(c.tmpl) == 0 {
		return nil
	}
	d := tmplData{Value: value, Labels: labels, App: labels[labelApp], Threshold: c.Threshold}
	out := make(map[string]string, len(c.tmpl))
	for k, t := range c.tmpl {
		s, err := render(t, d)
		if err != nil {
			s = clipBytes("<error expanding template: "+err.Error()+">", maxAnnotation)
		}
		out[k] = s
	}
	return out
}

// safePrintf is fmt.Sprintf for formats whose widths and precisions are
// at most three digits and not given as arguments ('*').
func safePrintf(format string, args ...any) (string, error) {
	digits := 0
	verb := false
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case !verb:
			verb = c == '%'
		case c == '*':
			return "", errors.New("printf: '*' widths are not allowed")
		case c >= '0' && c <= '9':
			if digits++; digits > 3 {
				return "", errors.New("printf: widths and precisions are limited to 999")
			}
		case c == '.' || c == '+' || c == '-' || c == '#' || c == ' ' || c == '[' || c == ']':
			digits = 0
		default:
			verb, digits = false, 0
		}
	}
	return fmt.Sprintf(format, args...), nil
}
