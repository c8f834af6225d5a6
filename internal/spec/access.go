package spec

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Access is the manifest's access section: who may reach the app through
// the gateway. Without it an app is not public: every request must come
// from a signed-in user (or a workload) that the policy allows, which is
// "authenticated" with no minimum trust.
type Access struct {
	// Policy is "public" (anyone, no sign-in), "authenticated" (any
	// signed-in user or allowed workload) or the name of a Cedar file in
	// the app folder ("policy.cedar") whose permits decide.
	Policy string `yaml:"policy" json:"policy"`
	// MinTrust is the trust score a request needs before the policy is
	// even asked (0 to 100).
	MinTrust int `yaml:"min_trust" json:"min_trust,omitempty"`
	// Reauth asks for a fresh sign-in when the session's last one is older
	// than this (step-up); 0 never asks.
	Reauth Duration `yaml:"reauth" json:"reauth,omitempty"`
	// Routes override MinTrust and Reauth under a path prefix; the longest
	// matching prefix wins.
	Routes []AccessRoute `yaml:"routes" json:"routes,omitempty"`
}

// AccessRoute is a stricter rule for the paths under Path.
type AccessRoute struct {
	Path     string   `yaml:"path" json:"path"`
	MinTrust int      `yaml:"min_trust" json:"min_trust,omitempty"`
	Reauth   Duration `yaml:"reauth" json:"reauth,omitempty"`
}

// The built-in access policies.
const (
	AccessPublic        = "public"
	AccessAuthenticated = "authenticated"
	MaxTrust            = 100
)

// IsFile reports whether the policy names a Cedar file.
func (a Access) IsFile() bool {
	return a.Policy != AccessPublic && a.Policy != AccessAuthenticated
}

// Rule returns the minimum trust and the re-authentication age that apply to
// a request path: the longest route prefix that matches it, else the app's.
func (a Access) Rule(p string) (minTrust int, reauth time.Duration, route string) {
	minTrust, reauth, route = a.MinTrust, time.Duration(a.Reauth), "/"
	best := -1
	for _, r := range a.Routes {
		if underPrefix(p, r.Path) && len(r.Path) > best {
			best = len(r.Path)
			minTrust, reauth, route = r.MinTrust, time.Duration(r.Reauth), r.Path
		}
	}
	return minTrust, reauth, route
}

// underPrefix reports whether p is prefix or below it: "/admin" covers
// "/admin" and "/admin/x", not "/administrator".
func underPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	prefix = strings.TrimSuffix(prefix, "/")
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func (a *Access) defaults() {
	if a.Policy == "" {
		a.Policy = AccessAuthenticated
	}
	for i := range a.Routes {
		// A route only tightens: what it leaves unset is the app's.
		if a.Routes[i].MinTrust == 0 {
			a.Routes[i].MinTrust = a.MinTrust
		}
		if a.Routes[i].Reauth == 0 {
			a.Routes[i].Reauth = a.Reauth
		}
	}
}

func (a Access) validate() []string {
	var errs []string
	if a.IsFile() {
		clean := path.Clean(a.Policy)
		if !strings.HasSuffix(a.Policy, ".cedar") || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			errs = append(errs, fmt.Sprintf("access.policy: %q is not public, authenticated or a .cedar file inside the app folder", a.Policy))
		}
	}
	if a.Policy == AccessPublic && (a.MinTrust != 0 || a.Reauth != 0 || len(a.Routes) > 0) {
		errs = append(errs, "access: a public app has no min_trust, reauth or routes (nobody signs in): drop them or use policy: authenticated")
	}
	check := func(where string, trust int, reauth Duration) {
		if trust < 0 || trust > MaxTrust {
			errs = append(errs, fmt.Sprintf("%s.min_trust: %d is out of range (0-%d)", where, trust, MaxTrust))
		}
		if reauth < 0 || (reauth > 0 && time.Duration(reauth) < time.Minute) {
			errs = append(errs, fmt.Sprintf("%s.reauth: %s is below the minimum of 1m", where, time.Duration(reauth)))
		}
	}
	check("access", a.MinTrust, a.Reauth)
	seen := map[string]bool{}
	for i, r := range a.Routes {
		where := "access.routes[" + strconv.Itoa(i) + "]"
		if !strings.HasPrefix(r.Path, "/") || path.Clean(r.Path) != strings.TrimSuffix(r.Path, "/") && r.Path != "/" {
			errs = append(errs, fmt.Sprintf("%s.path: %q must be a clean path starting with /", where, r.Path))
		}
		if seen[r.Path] {
			errs = append(errs, fmt.Sprintf("%s.path: %q is listed twice", where, r.Path))
		}
		seen[r.Path] = true
		check(where, r.MinTrust, r.Reauth)
	}
	return errs
}

// Egress is one destination a sandbox may open connections to: a host name
// or an IP address (or CIDR), and a port.
type Egress struct {
	Host string
	Port int
}

// ParseEgress parses an egress entry, "api.example.com:443" or
// "10.0.0.0/8:5432".
func ParseEgress(s string) (Egress, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return Egress{}, fmt.Errorf("%q is not HOST:PORT", s)
	}
	host, ps := strings.Trim(s[:i], "[]"), s[i+1:]
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return Egress{}, fmt.Errorf("%q: port %q is not 1-65535", s, ps)
	}
	if _, _, err := net.ParseCIDR(host); err == nil {
		return Egress{Host: host, Port: port}, nil
	}
	if net.ParseIP(host) == nil && !validDNSName(strings.ToLower(host)) {
		return Egress{}, fmt.Errorf("%q: %q is not a host name, IP address or CIDR", s, host)
	}
	return Egress{Host: strings.ToLower(host), Port: port}, nil
}

func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func validateEgress(list []string) []string {
	var errs []string
	seen := map[string]bool{}
	for i, e := range list {
		if _, err := ParseEgress(e); err != nil {
			errs = append(errs, fmt.Sprintf("egress[%d]: %v", i, err))
		}
		if seen[e] {
			errs = append(errs, fmt.Sprintf("egress[%d]: %q is listed twice", i, e))
		}
		seen[e] = true
	}
	return errs
}

// Config is what a release records of its manifest: the run section and
// the sections around it that the platform enforces. Run's fields are
// inlined, so a release recorded before access and egress existed decodes
// with their defaults.
type Config struct {
	Run
	Access Access   `json:"access"`
	Egress []string `json:"egress,omitempty"`
	// PolicySource is the text of the Cedar file Access.Policy names, as
	// it was at deploy: a release carries its own policy.
	PolicySource string `json:"policy_source,omitempty"`
	// WAF and RateLimits; a release recorded before they existed has a
	// zero WAF, which WAFOrDefault turns into the default.
	WAF        WAF         `json:"waf"`
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
	// Triggers, Function and Events (events.go); a release recorded
	// before they existed has none, and FunctionOrDefault fills Function.
	Triggers []Trigger `json:"triggers,omitempty"`
	Function Function  `json:"function"`
	Events   Events    `json:"events"`
	// Monitors and Alerts (observe.go).
	Monitors []Monitor `json:"monitors,omitempty"`
	Alerts   []Alert   `json:"alerts,omitempty"`
}

// FunctionOrDefault returns the release's function settings with the
// defaults filled.
func (c Config) FunctionOrDefault() Function { return c.Function.WithDefaults() }

// WAFOrDefault returns the release's WAF settings with the defaults filled.
func (c Config) WAFOrDefault() WAF {
	w := c.WAF
	w.defaults()
	return w
}

// ConfigOf returns the release configuration of a manifest and the text of
// its policy file ("" for the built-in policies).
func ConfigOf(m *Manifest, policySource string) Config {
	eg := append([]string(nil), m.Egress...)
	sort.Strings(eg)
	return Config{Run: m.Run, Access: m.Access, Egress: eg, PolicySource: policySource, WAF: m.WAF,
		RateLimits: append([]RateLimit(nil), m.RateLimits...), Triggers: append([]Trigger(nil), m.Triggers...),
		Function: m.Function, Events: Events{Publish: append([]string(nil), m.Events.Publish...)},
		Monitors: append([]Monitor(nil), m.Monitors...), Alerts: append([]Alert(nil), m.Alerts...)}
}
