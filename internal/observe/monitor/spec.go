package monitor

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"noops/internal/errkind"
)

// Kind is what a monitor checks.
type Kind string

// The kinds of monitor.
const (
	HTTP Kind = "http" // an HTTP(S) request whose status, body and latency must match
	TCP  Kind = "tcp"  // a TCP connection that must open
	TLS  Kind = "tls"  // a TLS handshake whose certificate must verify and not expire soon
	Push Kind = "push" // a dead-man's switch: something must call Push every Interval
)

// Defaults and limits of a Spec.
const (
	DefaultInterval    = 30 * time.Second
	DefaultTimeout     = 10 * time.Second
	MinInterval        = time.Second
	DefaultCertMinDays = 14

	maxNameLen    = 100
	maxHeaders    = 50
	maxHeaderLen  = 4096
	maxRegexpLen  = 4096
	maxBodyNeedle = 4096
	maxStatuses   = 20
	maxThreshold  = 100
	maxInterval   = 7 * 24 * time.Hour
	maxCertDays   = 3650
)

// Spec describes one monitor. The zero value of a field takes its default;
// Validate says which fields are wrong.
type Spec struct {
	// Name is unique among monitors: [a-z0-9][a-z0-9._-]*, at most 100
	// bytes. The default monitor of an app is named "app:<app>"; a name
	// with that prefix is only accepted when App is <app>.
	Name string
	// App is the app the monitor belongs to, "" for a standalone monitor.
	App  string
	Kind Kind
	// Target is an http(s) URL for http, host:port for tcp and tls, and
	// empty for push.
	Target string
	// Interval is the time between checks (default 30s, at least 1s); for
	// push, the time within which a push is expected.
	Interval time.Duration
	// Timeout bounds one check (default 10s, or Interval when shorter);
	// at most Interval. Push monitors have none.
	Timeout time.Duration
	// RetryInterval is the time to the next check after a failure that
	// does not yet reach FailAfter, so that a failure is confirmed quickly
	// (default Interval/FailAfter, at least 1s; at most Interval).
	RetryInterval time.Duration

	// HTTP conditions; all must hold.

	Method  string            // default GET
	Headers map[string]string // extra request headers; not Host (see Host)
	// Status lists the accepted statuses: "200", "2xx", "200-399"
	// (default 2xx).
	Status       []string
	BodyContains string // the first 1 MiB of the body contains this
	BodyRegexp   string // the first 1 MiB of the body matches this RE2
	// MaxLatency fails a check slower than this (0 = no limit): for http
	// from the request to the end of the body, for tcp and tls the
	// connection (and handshake).
	MaxLatency      time.Duration
	FollowRedirects bool // else a 3xx is the response judged
	// Insecure skips TLS certificate verification (http and tls).
	Insecure bool
	// Host overrides the Host header and the TLS server name (SNI and
	// verification) of http and tls monitors, e.g. to probe an app through
	// the local gateway. It applies to every connection of a check,
	// including followed redirects.
	Host string

	// CertMinDays is, for tls, the fewest days the leaf certificate must
	// remain valid (default 14).
	CertMinDays int

	// Grace is, for push, the extra time after Interval before a missing
	// push is a failure.
	Grace time.Duration

	// FailAfter is the number of consecutive failures before the monitor
	// is down (default 2 for http, tcp and tls, 1 for push).
	FailAfter int
	// SuccessAfter is the number of consecutive successes before a down
	// monitor is up again (default 1).
	SuccessAfter int
}

// compiled is what a check needs from a valid Spec, parsed once.
type compiled struct {
	statuses []statusRange
	bodyRe   *regexp.Regexp
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// AppPrefix starts the name of the default monitor of an app.
const AppPrefix = "app:"

// Validate checks s and returns an errkind.Invalid error naming every
// field that is wrong.
func (s Spec) Validate() error {
	_, _, err := s.normalize()
	return err
}

// normalize returns s with its defaults filled in, the parsed conditions,
// or an error naming each bad field.
func (s Spec) normalize() (Spec, *compiled, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	c := &compiled{}
	s.Headers, s.Status = maps.Clone(s.Headers), slices.Clone(s.Status) // the caller keeps its own

	if err := validName(s.Name, s.App); err != "" {
		bad("%s", err)
	}
	if s.App != "" && !nameRe.MatchString(s.App) || len(s.App) > maxNameLen {
		bad("app %q is not a valid app name", clip(s.App, 64))
	}
	switch s.Kind {
	case HTTP, TCP, TLS, Push:
	case "":
		bad("kind is missing: use http, tcp, tls or push")
	default:
		bad("kind %q is not one of http, tcp, tls, push", clip(string(s.Kind), 32))
	}

	// Intervals.
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	switch {
	case s.Interval < MinInterval:
		bad("interval %s is below the minimum of %s", s.Interval, MinInterval)
	case s.Interval > maxInterval:
		bad("interval %s is above the maximum of %s", s.Interval, maxInterval)
	}
	if s.Kind == Push {
		if s.Timeout != 0 {
			bad("timeout does not apply to push monitors")
		}
	} else {
		if s.Timeout == 0 {
			s.Timeout = max(min(DefaultTimeout, s.Interval), 0)
		}
		switch {
		case s.Timeout == 0: // the interval is wrong, and said so
		case s.Timeout < 0:
			bad("timeout %s is negative", s.Timeout)
		case s.Timeout > s.Interval:
			bad("timeout %s is longer than the interval %s", s.Timeout, s.Interval)
		}
	}

	// Thresholds.
	if s.FailAfter == 0 {
		s.FailAfter = 2
		if s.Kind == Push {
			s.FailAfter = 1
		}
	}
	if s.SuccessAfter == 0 {
		s.SuccessAfter = 1
	}
	if s.FailAfter < 1 || s.FailAfter > maxThreshold {
		bad("fail_after %d is not between 1 and %d", s.FailAfter, maxThreshold)
	}
	if s.SuccessAfter < 1 || s.SuccessAfter > maxThreshold {
		bad("success_after %d is not between 1 and %d", s.SuccessAfter, maxThreshold)
	}
	if s.Kind == Push {
		if s.RetryInterval != 0 {
			bad("retry_interval does not apply to push monitors")
		}
	} else {
		if s.RetryInterval == 0 {
			n := time.Duration(min(max(s.FailAfter, 1), maxThreshold))
			s.RetryInterval = min(max(MinInterval, s.Interval/n), s.Interval)
		} else if s.RetryInterval < MinInterval || s.RetryInterval > s.Interval {
			bad("retry_interval %s is not between %s and the interval %s", s.RetryInterval, MinInterval, s.Interval)
		}
	}

	// The target.
	switch s.Kind {
	case HTTP:
		if err := validHTTPTarget(s.Target); err != "" {
			bad("%s", err)
		}
	case TCP, TLS:
		if err := validHostPort(s.Target); err != "" {
			bad("target: %s", err)
		}
	case Push:
		if s.Target != "" {
			bad("target does not apply to push monitors (leave it empty)")
		}
	}

	// HTTP conditions.
	httpOnly := func(field string, set bool) {
		if set && s.Kind != HTTP && s.Kind != "" {
			bad("%s applies to http monitors only", field)
		}
	}
	httpOnly("method", s.Method != "")
	httpOnly("headers", len(s.Headers) > 0)
	httpOnly("status", len(s.Status) > 0)
	httpOnly("body_contains", s.BodyContains != "")
	httpOnly("body_regexp", s.BodyRegexp != "")
	httpOnly("follow_redirects", s.FollowRedirects)
	if s.Kind == HTTP {
		if s.Method == "" {
			s.Method = "GET"
		}
		if !isToken(s.Method) || len(s.Method) > 32 {
			bad("method %q is not an HTTP method", clip(s.Method, 32))
		}
		if len(s.Headers) > maxHeaders {
			bad("headers: %d headers, at most %d", len(s.Headers), maxHeaders)
		}
		for k, v := range s.Headers {
			switch {
			case !isToken(k) || len(k) > 256:
				bad("headers: %q is not a header name", clip(k, 64))
			case strings.EqualFold(k, "Host"):
				bad("headers: set the Host header with host")
			case len(v) > maxHeaderLen || strings.ContainsAny(v, "\r\n\x00"):
				bad("headers: the value of %s is not a valid header value", k)
			}
		}
		if len(s.Status) == 0 {
			s.Status = []string{"2xx"}
		}
		if len(s.Status) > maxStatuses {
			bad("status: %d patterns, at most %d", len(s.Status), maxStatuses)
		} else {
			for _, p := range s.Status {
				r, err := parseStatus(p)
				if err != nil {
					bad("status: %v", err)
					continue
				}
				c.statuses = append(c.statuses, r)
			}
		}
		if len(s.BodyContains) > maxBodyNeedle {
			bad("body_contains is %d bytes, at most %d", len(s.BodyContains), maxBodyNeedle)
		}
		if len(s.BodyRegexp) > maxRegexpLen {
			bad("body_regexp is %d bytes, at most %d", len(s.BodyRegexp), maxRegexpLen)
		} else if s.BodyRegexp != "" {
			re, err := regexp.Compile(s.BodyRegexp)
			if err != nil {
				bad("body_regexp: %v", err)
			}
			c.bodyRe = re
		}
	}
	if s.MaxLatency < 0 {
		bad("max_latency %s is negative", s.MaxLatency)
	}
	if s.MaxLatency != 0 && s.Kind == Push {
		bad("max_latency does not apply to push monitors")
	}
	if s.Insecure && s.Kind != HTTP && s.Kind != TLS && s.Kind != "" {
		bad("insecure applies to http and tls monitors only")
	}
	if s.Host != "" {
		if s.Kind != HTTP && s.Kind != TLS && s.Kind != "" {
			bad("host applies to http and tls monitors only")
		} else if err := validHost(s.Host); err != "" {
			bad("host: %s", err)
		}
	}

	// TLS.
	if s.Kind == TLS {
		if s.CertMinDays == 0 {
			s.CertMinDays = DefaultCertMinDays
		}
		if s.CertMinDays < 0 || s.CertMinDays > maxCertDays {
			bad("cert_min_days %d is not between 1 and %d", s.CertMinDays, maxCertDays)
		}
	} else if s.CertMinDays != 0 && s.Kind != "" {
		bad("cert_min_days applies to tls monitors only")
	}

	// Push.
	if s.Kind == Push {
		if s.Grace < 0 || s.Grace > maxInterval {
			bad("grace %s is not between 0 and %s", s.Grace, maxInterval)
		}
	} else if s.Grace != 0 && s.Kind != "" {
		bad("grace applies to push monitors only")
	}

	if len(errs) > 0 {
		who := "monitor"
		if s.Name != "" && len(s.Name) <= maxNameLen {
			who = fmt.Sprintf("monitor %q", s.Name)
		}
		return s, nil, errkind.Errorf(errkind.Invalid, "%s: %s", who, strings.Join(errs, "; "))
	}
	return s, c, nil
}

// validName checks a monitor name and returns the problem, or "".
func validName(name, app string) string {
	switch {
	case name == "":
		return "name is missing"
	case len(name) > maxNameLen:
		return fmt.Sprintf("name is %d bytes, at most %d", len(name), maxNameLen)
	}
	if rest, ok := strings.CutPrefix(name, AppPrefix); ok {
		if rest != app {
			return fmt.Sprintf("name %q is reserved for the default monitor of app %q (set app to %q)", name, rest, rest)
		}
		name = rest
	}
	if !nameRe.MatchString(name) {
		return fmt.Sprintf("name %q is not valid: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return ""
}

func validHTTPTarget(target string) string {
	if target == "" {
		return "target is missing: give an http:// or https:// URL"
	}
	if len(target) > 2048 {
		return fmt.Sprintf("target is %d bytes, at most 2048", len(target))
	}
	u, err := url.Parse(target)
	if err != nil {
		// url.Error quotes the URL, which may hold a secret.
		return "target is not a valid URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("target scheme %q is not http or https", clip(u.Scheme, 16))
	}
	if u.Host == "" {
		return "target has no host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("target port %q is not between 1 and 65535", clip(p, 16))
		}
	}
	if e := validHost(u.Hostname()); e != "" {
		return "target: " + e
	}
	return ""
}

func validHostPort(hp string) string {
	if hp == "" {
		return "missing: give host:port"
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", clip(hp, 64))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port %q is not between 1 and 65535", clip(port, 16))
	}
	return validHost(host)
}

// validHost accepts an IP address or a DNS name.
func validHost(h string) string {
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	if h == "" || len(h) > 253 {
		return fmt.Sprintf("%q is not a host name", clip(h, 64))
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("%q is not a host name", clip(h, 64))
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Sprintf("%q is not a host name", clip(h, 64))
			}
		}
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token (a method or header
// name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// clip shortens s to at most n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// DefaultForApp returns the default monitor of an app: an http GET of
// https://<gatewayAddr><healthPath> every 30s, sent with Host (and TLS
// server name) host, so that it goes through the local gateway like a
// user's request and proves the route, the certificate and the app
// together. Verification stays on: the gateway's certificate is for host,
// and the check verifies it against host (the Runner's RootCAs must hold
// its issuer, e.g. the internal CA). A gatewayAddr that is a listen
// address with an unspecified host (":443", "0.0.0.0:443", "[::]:443") is
// probed on the loopback address. An empty healthPath is "/".
func DefaultForApp(app, healthPath, gatewayAddr, host string) Spec {
	if healthPath == "" || healthPath[0] != '/' {
		healthPath = "/" + healthPath
	}
	return Spec{
		Name:     AppPrefix + app,
		App:      app,
		Kind:     HTTP,
		Target:   "https://" + loopbackFor(gatewayAddr) + healthPath,
		Host:     host,
		Interval: DefaultInterval,
	}
}

// loopbackFor replaces the unspecified host of a listen address with the
// loopback address of the same family.
func loopbackFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
