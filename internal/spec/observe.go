package spec

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// Monitor is an uptime check of the manifest's monitors section, besides
// the one every app gets on its health path. Exactly one of HTTP, Path,
// TCP, TLS and Push says what is checked.
type Monitor struct {
	Name string `yaml:"name" json:"name"`
	// HTTP is a URL to fetch; Path a path of this app, fetched through the
	// gateway as a client would.
	HTTP string `yaml:"http" json:"http,omitempty"`
	Path string `yaml:"path" json:"path,omitempty"`
	// TCP and TLS are HOST:PORT: a connection, or a TLS handshake whose
	// certificate must stay valid for CertMinDays more days.
	TCP string `yaml:"tcp" json:"tcp,omitempty"`
	TLS string `yaml:"tls" json:"tls,omitempty"`
	// Push makes a dead-man's switch: down when nothing calls its push URL
	// for Interval plus Grace.
	Push bool `yaml:"push" json:"push,omitempty"`

	Interval Duration `yaml:"interval" json:"interval,omitempty"`
	Timeout  Duration `yaml:"timeout" json:"timeout,omitempty"`
	Grace    Duration `yaml:"grace" json:"grace,omitempty"`
	// HTTP conditions: the accepted statuses ("200", "2xx"), text the body
	// must contain or match, the slowest acceptable answer.
	Method       string            `yaml:"method" json:"method,omitempty"`
	Headers      map[string]string `yaml:"headers" json:"headers,omitempty"`
	Status       []string          `yaml:"status" json:"status,omitempty"`
	Body         string            `yaml:"body" json:"body,omitempty"`
	BodyRegexp   string            `yaml:"body_regexp" json:"body_regexp,omitempty"`
	MaxLatency   Duration          `yaml:"max_latency" json:"max_latency,omitempty"`
	CertMinDays  int               `yaml:"cert_min_days" json:"cert_min_days,omitempty"`
	FailAfter    int               `yaml:"fail_after" json:"fail_after,omitempty"`
	SuccessAfter int               `yaml:"success_after" json:"success_after,omitempty"`
}

// Alert is a rule of the manifest's alerts section. Exactly one of
// Metric (a PromQL expression over the metric history), Log (a text, or
// /regexp/, counted in the app's logs over Window), Monitor (a monitor's
// name, or "*" for all of the app's) and Anomaly ("rate", "errors" or
// "latency") says what is watched.
type Alert struct {
	Name    string `yaml:"name" json:"name"`
	Metric  string `yaml:"metric" json:"metric,omitempty"`
	Log     string `yaml:"log" json:"log,omitempty"`
	Monitor string `yaml:"monitor" json:"monitor,omitempty"`
	Anomaly string `yaml:"anomaly" json:"anomaly,omitempty"`
	// Op and Threshold compare the value (metric, log count); default
	// "> 0".
	Op        string   `yaml:"op" json:"op,omitempty"`
	Threshold float64  `yaml:"threshold" json:"threshold,omitempty"`
	Window    Duration `yaml:"window" json:"window,omitempty"`
	// For is how long the condition must hold before the alert fires.
	For      Duration `yaml:"for" json:"for,omitempty"`
	Severity string   `yaml:"severity" json:"severity,omitempty"`
	Summary  string   `yaml:"summary" json:"summary,omitempty"`
	Repeat   Duration `yaml:"repeat" json:"repeat,omitempty"`
}

// Anomaly series an alert may watch.
var anomalySeries = map[string]bool{"rate": true, "errors": true, "latency": true}

var obsName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// monitorName is lowercase: monitors are named APP.NAME.
var monitorName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// validateMonitors checks the monitors section.
func validateMonitors(ms []Monitor) []string {
	var errs []string
	seen := map[string]bool{}
	for i, m := range ms {
		where := fmt.Sprintf("monitors[%d]", i)
		if !monitorName.MatchString(m.Name) {
			errs = append(errs, where+": name must be 1 to 63 lowercase letters, digits, '.', '_' or '-'")
		} else if seen[m.Name] {
			errs = append(errs, where+": the name "+m.Name+" is used twice")
		}
		seen[m.Name] = true
		kinds := 0
		for _, set := range []bool{m.HTTP != "", m.Path != "", m.TCP != "", m.TLS != "", m.Push} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			errs = append(errs, where+": give exactly one of http, path, tcp, tls and push")
		}
		if m.HTTP != "" {
			if u, err := url.Parse(m.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, where+": http must be an http:// or https:// URL")
			}
		}
		if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
			errs = append(errs, where+": path must start with /")
		}
		for _, hp := range []string{m.TCP, m.TLS} {
			if hp == "" {
				continue
			}
			if h, p, err := net.SplitHostPort(hp); err != nil || h == "" || !validPort(p) {
				errs = append(errs, where+": "+hp+" is not HOST:PORT")
			}
		}
		if m.Interval != 0 && (time.Duration(m.Interval) < time.Second || time.Duration(m.Interval) > 7*24*time.Hour) {
			errs = append(errs, where+": interval must be between 1s and 168h")
		}
		if m.Timeout < 0 || m.Interval != 0 && m.Timeout > m.Interval {
			errs = append(errs, where+": timeout must be positive and at most the interval")
		}
		if m.BodyRegexp != "" {
			if _, err := regexp.Compile(m.BodyRegexp); err != nil {
				errs = append(errs, where+": body_regexp: "+err.Error())
			}
		}
		for _, s := range m.Status {
			if !validStatusPattern(s) {
				errs = append(errs, where+": status "+strconv.Quote(s)+" must be a code like 200 or a class like 2xx")
			}
		}
		if m.CertMinDays < 0 || m.FailAfter < 0 || m.SuccessAfter < 0 || m.FailAfter > 100 || m.SuccessAfter > 100 {
			errs = append(errs, where+": cert_min_days, fail_after and success_after must be small positive numbers")
		}
	}
	return errs
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

func validStatusPattern(s string) bool {
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return false
	}
	if strings.ToLower(s[1:]) == "xx" {
		return true
	}
	_, err := strconv.Atoi(s)
	return err == nil
}

// validateAlerts checks the alerts section: monitors names the rules'
// monitor fields may refer to.
func validateAlerts(as []Alert, monitors []Monitor) []string {
	var errs []string
	seen := map[string]bool{}
	mons := map[string]bool{"*": true, "health": true}
	for _, m := range monitors {
		mons[m.Name] = true
	}
	for i, a := range as {
		where := fmt.Sprintf("alerts[%d]", i)
		if !obsName.MatchString(a.Name) {
			errs = append(errs, where+": name must be 1 to 63 letters, digits, '.', '_' or '-'")
		} else if seen[a.Name] {
			errs = append(errs, where+": the name "+a.Name+" is used twice")
		}
		seen[a.Name] = true
		kinds := 0
		for _, s := range []string{a.Metric, a.Log, a.Monitor, a.Anomaly} {
			if s != "" {
				kinds++
			}
		}
		if kinds != 1 {
			errs = append(errs, where+": give exactly one of metric, log, monitor and anomaly")
		}
		if a.Metric != "" {
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(a.Metric); err != nil {
				errs = append(errs, where+": metric is not a PromQL expression: "+err.Error())
			}
		}
		if a.Log != "" && len(a.Log) > 2 && strings.HasPrefix(a.Log, "/") && strings.HasSuffix(a.Log, "/") {
			if _, err := regexp.Compile(a.Log[1 : len(a.Log)-1]); err != nil {
				errs = append(errs, where+": log: "+err.Error())
			}
		}
		if a.Monitor != "" && !mons[a.Monitor] {
			errs = append(errs, where+": no monitor named "+a.Monitor+" (use health, * or a name from monitors)")
		}
		if a.Anomaly != "" && !anomalySeries[a.Anomaly] {
			errs = append(errs, where+": anomaly must be rate, errors or latency")
		}
		switch a.Op {
		case "", ">", ">=", "<", "<=", "==", "!=":
		default:
			errs = append(errs, where+": op must be one of > >= < <= == !=")
		}
		switch a.Severity {
		case "", "info", "warning", "critical":
		default:
			errs = append(errs, where+": severity must be info, warning or critical")
		}
		if a.For < 0 || a.Window < 0 || a.Repeat < 0 || time.Duration(a.For) > 24*time.Hour || time.Duration(a.Window) > 24*time.Hour {
			errs = append(errs, where+": for and window must be between 0 and 24h, repeat positive")
		}
	}
	return errs
}
