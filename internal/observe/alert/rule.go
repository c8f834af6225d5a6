package alert

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// Kind says which Source evaluates a rule.
type Kind string

// The kinds of rules.
const (
	// KindMetric rules evaluate a PromQL expression over the metric store.
	KindMetric Kind = "metric"
	// KindMonitor rules watch uptime monitors: the Source gives 1 for a
	// failing monitor and 0 for a passing one.
	KindMonitor Kind = "monitor"
	// KindLog rules count the log lines matching a pattern over a window.
	KindLog Kind = "log"
	// KindAnomaly rules watch the anomaly detector's score of a series.
	KindAnomaly Kind = "anomaly"
)

// The severities of a rule, as notify has them.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Rule says when to alert.
type Rule struct {
	// Name is unique among the rules, and the alert's "alertname" label.
	Name string
	// App is the app the rule watches; "" watches the whole platform.
	App  string
	Kind Kind
	// Expr is what the Source evaluates. Metric: a PromQL expression.
	// Log: a pattern, a substring or /regexp/. Monitor: a monitor's name
	// or "*". Anomaly: a series name ("rate", "errors", "latency").
	Expr string
	// Op compares each sample's value with Threshold: ">", ">=", "<",
	// "<=", "==" or "!=" (default ">").
	Op        string
	Threshold float64
	// Window is how far back a log rule counts matches (default 5m).
	Window time.Duration
	// For is how long the condition must hold before the alert fires; it
	// is pending meanwhile.
	For time.Duration
	// Severity is "info", "warning" (the default) or "critical".
	Severity string
	// Labels are added to every alert of the rule. Annotations are text
	// templates (text/template) rendered for each alert with .Value,
	// .Labels, .App and .Threshold; "summary" and "description" are the
	// conventional ones.
	Labels, Annotations map[string]string
	// Repeat is how often a group that still fires, unchanged, is sent
	// again as a reminder (default 4h, at least 1m).
	Repeat time.Duration
}

// Limits on a rule, so that a rule file cannot make alerts huge.
const (
	maxName        = 100
	maxExpr        = 4096
	maxRuleLabels  = 16
	maxLabelName   = 64
	maxLabelValue  = 256 // also for sample labels; as notify keeps them
	maxAnnotations = 16
	maxTemplate    = 4096 // an annotation's template
	maxAnnotation  = 1024 // what it renders to, as notify keeps it
	maxDuration    = 7 * 24 * time.Hour
)

// The defaults of a rule.
const (
	defaultWindow = 5 * time.Minute
	defaultRepeat = 4 * time.Hour
)

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]*$`)
	labelNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	seriesRE    = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
)

// The labels the engine sets on every alert; a rule may not set them.
const (
	labelAlertname = "alertname"
	labelApp       = "app"
	labelSeverity  = "severity"
)

// Validate reports the first thing wrong with r, or nil.
func (r Rule) Validate() error {
	_, err := r.compile()
	return err
}

// compiled is a validated rule with its defaults applied and its
// annotation templates parsed.
type compiled struct {
	Rule
	tmpl map[string]*template.Template
}

func (r Rule) compile() (*compiled, error) {
	if err := r.check(); err != nil {
		if r.Name == "" || !nameRE.MatchString(r.Name) || len(r.Name) > maxName {
			return nil, fmt.Errorf("checking alert rule: %w", err)
		}
		return nil, fmt.Errorf("checking alert rule %s: %w", r.Name, err)
	}
	c := &compiled{Rule: r, tmpl: map[string]*template.Template{}}
	if c.Op == "" {
		c.Op = ">"
	}
	if c.Severity == "" {
		c.Severity = SeverityWarning
	}
	if c.Kind == KindLog && c.Window == 0 {
		c.Window = defaultWindow
	}
	if c.Repeat == 0 {
		c.Repeat = defaultRepeat
	}
	for k, text := range r.Annotations {
		t, err := parseTemplate(k, text)
		if err != nil {
			return nil, fmt.Errorf("checking alert rule %s: %w", r.Name, err)
		}
		c.tmpl[k] = t
	}
	return c, nil
}

func (r Rule) check() error {
	switch {
	case r.Name == "":
		return errors.New("the rule has no name")
	case len(r.Name) > maxName:
		return fmt.Errorf("name longer than %d bytes", maxName)
	case !nameRE.MatchString(r.Name):
		return fmt.Errorf("name %q: use letters, digits, '_', '.', ':' and '-', starting with a letter or '_'", r.Name)
	case len(r.App) > maxName || !printable(r.App):
		return fmt.Errorf("app %q is not an app name", clipped(r.App))
	case r.Expr == "":
		return errors.New("the rule has no expression")
	case len(r.Expr) > maxExpr || !utf8.ValidString(r.Expr):
		return fmt.Errorf("expression longer than %d bytes or not UTF-8", maxExpr)
	case math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0):
		return fmt.Errorf("threshold %v is not a finite number", r.Threshold)
	case r.Window < 0 || r.Window > maxDuration:
		return fmt.Errorf("window %v is not between 0 and %v", r.Window, maxDuration)
	case r.For < 0 || r.For > maxDuration:
		return fmt.Errorf("for %v is not between 0 and %v", r.For, maxDuration)
	case r.Repeat != 0 && (r.Repeat < time.Minute || r.Repeat > maxDuration):
		return fmt.Errorf("repeat %v is not between 1m and %v", r.Repeat, maxDuration)
	}
	switch r.Op {
	case "", ">", ">=", "<", "<=", "==", "!=":
	default:
		return fmt.Errorf("operator %q: use >, >=, <, <=, == or !=", clipped(r.Op))
	}
	switch r.Severity {
	case "", SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		return fmt.Errorf("severity %q: use info, warning or critical", clipped(r.Severity))
	}
	if err := r.checkExpr(); err != nil {
		return err
	}
	if len(r.Labels) > maxRuleLabels {
		return fmt.Errorf("%d labels, more than %d", len(r.Labels), maxRuleLabels)
	}
	for k, v := range r.Labels {
		switch {
		case len(k) > maxLabelName || !labelNameRE.MatchString(k):
			return fmt.Errorf("label name %q: use letters, digits and '_', at most %d", clipped(k), maxLabelName)
		case k == labelAlertname || k == labelApp || k == labelSeverity:
			return fmt.Errorf("label %s is set from the rule itself", k)
		case len(v) > maxLabelValue || !printable(v):
			return fmt.Errorf("label %s: value longer than %d bytes or not printable", k, maxLabelValue)
		}
	}
	if len(r.Annotations) > maxAnnotations {
		return fmt.Errorf("%d annotations, more than %d", len(r.Annotations), maxAnnotations)
	}
	for k := range r.Annotations {
		if len(k) > maxLabelName || !labelNameRE.MatchString(k) {
			return fmt.Errorf("annotation name %q: use letters, digits and '_', at most %d", clipped(k), maxLabelName)
		}
	}
	return nil
}

func (r Rule) checkExpr() error {
	switch r.Kind {
	case KindMetric:
	case KindLog:
		if _, err := CompilePattern(r.Expr); err != nil {
			return err
		}
	case KindMonitor:
		if !printable(r.Expr) {
			return errors.New("monitor name is not printable")
		}
	case KindAnomaly:
		if !seriesRE.MatchString(r.Expr) {
			return fmt.Errorf("series %q: use letters, digits, '_', '.', ':' and '-'", clipped(r.Expr))
		}
	default:
		return fmt.Errorf("kind %q: use metric, monitor, log or anomaly", clipped(string(r.Kind)))
	}
	return nil
}

// Pattern is a log rule's pattern: a substring, or a regular expression
// written between slashes.
type Pattern struct {
	sub string
	re  *regexp.Regexp
}

// CompilePattern parses a log rule's Expr: "/re/" is the regular
// expression re (Go's RE2 syntax, which matches in linear time), anything
// else a substring.
func CompilePattern(expr string) (*Pattern, error) {
	if expr == "" || len(expr) > maxExpr {
		return nil, fmt.Errorf("pattern is empty or longer than %d bytes", maxExpr)
	}
	if len(expr) >= 2 && strings.HasPrefix(expr, "/") && strings.HasSuffix(expr, "/") {
		re, err := regexp.Compile(expr[1 : len(expr)-1])
		if err != nil {
			return nil, fmt.Errorf("parsing pattern: %w", err)
		}
		return &Pattern{re: re}, nil
	}
	return &Pattern{sub: expr}, nil
}

// Match reports whether line matches p.
func (p *Pattern) Match(line string) bool {
	if p.re != nil {
		return p.re.MatchString(line)
	}
	return strings.Contains(line, p.sub)
}

// holds reports whether v op threshold; NaN never holds.
func holds(op string, v, threshold float64) bool {
	switch op {
	case ">":
		return v > threshold
	case ">=":
		return v >= threshold
	case "<":
		return v < threshold
	case "<=":
		return v <= threshold
	case "==":
		return v == threshold
	case "!=":
		return !math.IsNaN(v) && v != threshold
	}
	return false
}

// printable reports whether s is UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// clipped shortens a bad value for an error message.
func clipped(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
