package alert

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := []Rule{
		rule("HighErrorRate"),
		{Name: "panics", Kind: KindLog, Expr: "/panic: .*/", Window: time.Minute},
		{Name: "down", Kind: KindMonitor, Expr: "*", Severity: SeverityCritical},
		{Name: "odd.latency:p99", App: "api", Kind: KindAnomaly, Expr: "latency", Op: ">=", Threshold: 3, Repeat: time.Hour},
		rule("T", func(r *Rule) {
			r.Labels = map[string]string{"team": "payments"}
			r.Annotations = map[string]string{
				"summary":     `{{printf "%.2f" .Value}} on {{.Labels.instance}} of {{.App}} (over {{.Threshold}})`,
				"description": `{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}{{with .App}}app {{.}}{{end}}`,
			}
		}),
	}
	for _, r := range ok {
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v, want nil", r.Name, err)
		}
	}
	bad := []struct {
		name string
		r    Rule
		want string
	}{
		{"no name", Rule{Kind: KindMetric, Expr: "up"}, "no name"},
		{"name with a space", rule("High errors"), "name \"High errors\""},
		{"long name", rule(strings.Repeat("a", 101)), "longer than 100"},
		{"app with a newline", rule("R", func(r *Rule) { r.App = "a\nb" }), "not an app name"},
		{"no kind", Rule{Name: "R", Expr: "up"}, `kind ""`},
		{"unknown kind", Rule{Name: "R", Kind: "trace", Expr: "up"}, `kind "trace"`},
		{"no expr", Rule{Name: "R", Kind: KindMetric}, "no expression"},
		{"huge expr", rule("R", func(r *Rule) { r.Expr = strings.Repeat("x", maxExpr+1) }), "longer than"},
		{"bad regexp", Rule{Name: "R", Kind: KindLog, Expr: "/a(/"}, "parsing pattern"},
		{"bad series", Rule{Name: "R", Kind: KindAnomaly, Expr: "rate of errors"}, "series"},
		{"bad op", rule("R", func(r *Rule) { r.Op = "=>" }), "operator"},
		{"NaN threshold", rule("R", func(r *Rule) { r.Threshold = math.NaN() }), "finite"},
		{"infinite threshold", rule("R", func(r *Rule) { r.Threshold = math.Inf(1) }), "finite"},
		{"negative for", rule("R", forDur(-time.Second)), "for -1s"},
		{"negative window", rule("R", func(r *Rule) { r.Window = -1 }), "window"},
		{"tiny repeat", rule("R", func(r *Rule) { r.Repeat = time.Second }), "repeat"},
		{"bad severity", rule("R", func(r *Rule) { r.Severity = "page" }), "severity"},
		{"reserved label", rule("R", func(r *Rule) { r.Labels = map[string]string{"severity": "x"} }), "severity is set from the rule"},
		{"bad label name", rule("R", func(r *Rule) { r.Labels = map[string]string{"a-b": "x"} }), "label name"},
		{"long label value", rule("R", func(r *Rule) { r.Labels = map[string]string{"a": strings.Repeat("x", 300)} }), "label a"},
		{"bad annotation name", rule("R", func(r *Rule) { r.Annotations = map[string]string{"a b": "x"} }), "annotation name"},
		{"template syntax", ann("{{.Value"), "parsing annotation summary"},
		{"unknown field", ann("{{.Nope}}"), "rendering annotation summary"},
		{"define", ann(`{{define "x"}}{{end}}`), "define and block"},
		{"template", ann(`{{template "summary" .}}`), "{{template}}"},
		{"range over a number", ann(`{{range 1000000000}}{{end}}`), "only over .Labels"},
		{"nested range", ann(`{{range .Labels}}{{range $.Labels}}{{end}}{{end}}`), "inside"},
		{"nested range in if", ann(`{{range .Labels}}{{if .}}{{range $.Labels}}{{end}}{{end}}{{end}}`), "inside"},
		{"huge width", ann(`{{printf "%999999999d" 1}}`), "limited to 999"},
		{"star width", ann(`{{printf "%*d" 1000000000 1}}`), "not allowed"},
		{"huge template", ann(strings.Repeat("x", maxTemplate+1)), "longer than"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func ann(text string) Rule {
	return rule("R", func(r *Rule) { r.Annotations = map[string]string{"summary": text} })
}

func TestDefaults(t *testing.T) {
	c, err := Rule{Name: "L", Kind: KindLog, Expr: "panic"}.compile()
	if err != nil {
		t.Fatal(err)
	}
	if c.Op != ">" || c.Severity != SeverityWarning || c.Window != 5*time.Minute || c.Repeat != 4*time.Hour {
		t.Errorf("defaults: op %q severity %q window %v repeat %v", c.Op, c.Severity, c.Window, c.Repeat)
	}
	src := newSource()
	f := newFixture(t, Config{Sources: map[Kind]Source{KindLog: src}})
	f.setRules(Rule{Name: "L", Kind: KindLog, Expr: "panic"})
	f.step(0)
	if len(src.asked) != 1 || src.asked[0].Window != 5*time.Minute || src.asked[0].Op != ">" {
		t.Errorf("Source asked %+v, want the rule with its defaults", src.asked)
	}
}

func TestRenderAnnotations(t *testing.T) {
	c, err := rule("R", func(r *Rule) {
		r.Annotations = map[string]string{
			"summary": `{{printf "%.1f%%" .Value}} errors on {{.Labels.instance}}{{.Labels.missing}}`,
			"long":    `{{range .Labels}}{{.}}{{end}}`,
			"fails":   `{{if .Labels.instance}}{{slice .Labels.instance 5}}{{end}}`,
		}
	}).compile()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"instance": "a", "big": strings.Repeat("x", 3000)}
	got := renderAnnotations(c, labels, 7.25)
	if got["summary"] != "7.2% errors on a" {
		t.Errorf("summary = %q", got["summary"])
	}
	if len(got["long"]) != maxAnnotation {
		t.Errorf("long annotation rendered to %d bytes, want cut at %d", len(got["long"]), maxAnnotation)
	}
	if !strings.HasPrefix(got["fails"], "<error expanding template:") {
		t.Errorf("failing template rendered %q, want the error", got["fails"])
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		expr, line string
		want       bool
	}{
		{"panic", "goroutine 1: panic: boom", true},
		{"panic", "PANIC", false},
		{"/(?i)panic/", "PANIC", true},
		{"/^GET .* 5\\d\\d$/", "GET /x 503", true},
		{"/^GET .* 5\\d\\d$/", "GET /x 404", false},
		{"/", "a/b", true}, // one slash is a substring
	}
	for _, tc := range tests {
		p, err := CompilePattern(tc.expr)
		if err != nil {
			t.Fatalf("CompilePattern(%q) = %v", tc.expr, err)
		}
		if got := p.Match(tc.line); got != tc.want {
			t.Errorf("CompilePattern(%q).Match(%q) = %v, want %v", tc.expr, tc.line, got, tc.want)
		}
	}
}

// FuzzRule checks that no rule text panics Validate, and that a valid
// rule's annotations render within bounds whatever the labels.
func FuzzRule(f *testing.F) {
	f.Add("summary", `{{printf "%.2f" .Value}} {{.Labels.a}}`, "/a+b/", "a", "x")
	f.Add("d", `{{range $k, $v := .Labels}}{{$k}}{{$v}}{{end}}`, "panic", "", "")
	f.Add("s", `{{with .App}}{{len .}}{{end}}{{index .Labels "a"}}{{html .App}}{{js .App}}`, "/(/", "a", "\xff")
	f.Add("s", `{{printf "%[1]*d" 5 1}}{{printf "%-99.99f" .Value}}`, "x", "", "")
	f.Fuzz(func(t *testing.T, name, text, pattern, label, value string) {
		r := Rule{Name: "F", Kind: KindLog, Expr: pattern, Annotations: map[string]string{name: text}}
		c, err := r.compile()
		if err != nil {
			return
		}
		out := renderAnnotations(c, map[string]string{"a": value, label: value}, 1.5)
		if len(out[name]) > maxAnnotation {
			t.Fatalf("annotation rendered to %d bytes", len(out[name]))
		}
		p, _ := CompilePattern(pattern)
		p.Match(value)
	})
}
