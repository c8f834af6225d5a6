package spec

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// WAF is the manifest's waf section: the OWASP Core Rule Set in front of
// the app. Without it an app is protected: mode block, paranoia 1.
type WAF struct {
	Mode      string   `yaml:"mode" json:"mode"`         // off | detect | block
	Paranoia  int      `yaml:"paranoia" json:"paranoia"` // 1 to 4
	BodyLimit Quantity `yaml:"body_limit" json:"body_limit,omitempty"`
	// Responses inspects text responses too (data-leak rules).
	Responses bool `yaml:"responses" json:"responses,omitempty"`
	// Routes override Mode and Paranoia under a path prefix; the longest
	// matching prefix wins.
	Routes []WAFRoute `yaml:"routes" json:"routes,omitempty"`
}

// WAFRoute is the WAF setting of the paths under Path.
type WAFRoute struct {
	Path     string `yaml:"path" json:"path"`
	Mode     string `yaml:"mode" json:"mode,omitempty"`
	Paranoia int    `yaml:"paranoia" json:"paranoia,omitempty"`
}

// WAF defaults and bounds.
const (
	WAFBlock          = "block"
	DefaultParanoia   = 1
	DefaultWAFBody    = 128 << 10
	MaxWAFBody        = 8 << 20
	DefaultRateAction = "block"
)

// Rule returns the mode and paranoia level that apply to a path.
func (w WAF) Rule(p string) (mode string, paranoia int) {
	mode, paranoia = w.Mode, w.Paranoia
	best := -1
	for _, r := range w.Routes {
		if underPrefix(p, r.Path) && len(r.Path) > best {
			best = len(r.Path)
			if r.Mode != "" {
				mode = r.Mode
			} else {
				mode = w.Mode
			}
			if r.Paranoia != 0 {
				paranoia = r.Paranoia
			} else {
				paranoia = w.Paranoia
			}
		}
	}
	return mode, paranoia
}

func (w *WAF) defaults() {
	if w.Mode == "" {
		w.Mode = WAFBlock
	}
	if w.Paranoia == 0 {
		w.Paranoia = DefaultParanoia
	}
	if w.BodyLimit == 0 {
		w.BodyLimit = DefaultWAFBody
	}
}

func validMode(m string) bool { return m == "off" || m == "detect" || m == "block" }

func (w WAF) validate() []string {
	var errs []string
	if !validMode(w.Mode) {
		errs = append(errs, fmt.Sprintf("waf.mode: %q is not off, detect or block", w.Mode))
	}
	if w.Paranoia < 1 || w.Paranoia > 4 {
		errs = append(errs, fmt.Sprintf("waf.paranoia: %d is not 1 (fewest false positives) to 4 (strictest)", w.Paranoia))
	}
	if w.BodyLimit < 1 || w.BodyLimit > MaxWAFBody {
		errs = append(errs, fmt.Sprintf("waf.body_limit: %s is not 1 to 8Mi", w.BodyLimit))
	}
	for i, r := range w.Routes {
		at := fmt.Sprintf("waf.routes[%d]", i)
		if !strings.HasPrefix(r.Path, "/") {
			errs = append(errs, fmt.Sprintf("%s.path: %q must start with /", at, r.Path))
		}
		if r.Mode != "" && !validMode(r.Mode) {
			errs = append(errs, fmt.Sprintf("%s.mode: %q is not off, detect or block", at, r.Mode))
		}
		if r.Paranoia != 0 && (r.Paranoia < 1 || r.Paranoia > 4) {
			errs = append(errs, fmt.Sprintf("%s.paranoia: %d is not 1 to 4", at, r.Paranoia))
		}
	}
	return errs
}

// RateLimit is one rate-based rule of the manifest's rate_limits list,
// in AWS WAF's vocabulary: at most Limit requests per Window for each
// value of the aggregation key.
type RateLimit struct {
	Name   string   `yaml:"name" json:"name"`
	Limit  int      `yaml:"limit" json:"limit"`
	Window Duration `yaml:"window" json:"window"` // 60s to 600s
	// Key is the aggregation key: a list of ip, forwarded_ip,
	// identity, method, path, header:NAME, cookie:NAME (default ip).
	Key    []string `yaml:"key" json:"key,omitempty"`
	Action string   `yaml:"action" json:"action"` // block | challenge | count
	// Paths and Methods scope the rule down; empty means all.
	Paths   []string `yaml:"paths" json:"paths,omitempty"`
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Ban, for a block rule, bans the client for this long when it trips
	// (escalating for repeat offenders).
	Ban Duration `yaml:"ban" json:"ban,omitempty"`
}

var (
	rateName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	keyPart  = regexp.MustCompile(`^(ip|forwarded_ip|identity|method|path|(header|cookie):[A-Za-z0-9_-]+)$`)
)

func (r *RateLimit) defaults() {
	if r.Window == 0 {
		r.Window = Duration(time.Minute)
	}
	if r.Action == "" {
		r.Action = DefaultRateAction
	}
	if len(r.Key) == 0 {
		r.Key = []string{"ip"}
	}
}

func validateRates(list []RateLimit) []string {
	var errs []string
	seen := map[string]bool{}
	for i, r := range list {
		at := fmt.Sprintf("rate_limits[%d]", i)
		if !rateName.MatchString(r.Name) {
			errs = append(errs, fmt.Sprintf("%s.name: %q is not a short lower-case name", at, r.Name))
		} else if seen[r.Name] {
			errs = append(errs, fmt.Sprintf("%s.name: %q is used twice", at, r.Name))
		}
		seen[r.Name] = true
		if r.Limit < 1 {
			errs = append(errs, fmt.Sprintf("%s.limit: %d must be at least 1", at, r.Limit))
		}
		if w := time.Duration(r.Window); w < time.Minute || w > 10*time.Minute || w%time.Second != 0 {
			errs = append(errs, fmt.Sprintf("%s.window: %s is not whole seconds from 60s to 600s", at, w))
		}
		if len(r.Key) > 5 {
			errs = append(errs, fmt.Sprintf("%s.key: %d parts, at most 5", at, len(r.Key)))
		}
		for _, k := range r.Key {
			if !keyPart.MatchString(k) {
				errs = append(errs, fmt.Sprintf("%s.key: %q is not ip, forwarded_ip, identity, method, path, header:NAME or cookie:NAME", at, k))
			}
		}
		switch r.Action {
		case "block", "challenge", "count":
		default:
			errs = append(errs, fmt.Sprintf("%s.action: %q is not block, challenge or count", at, r.Action))
		}
		if r.Ban != 0 && r.Action != "block" {
			errs = append(errs, fmt.Sprintf("%s.ban: only a block rule bans", at))
		}
		if r.Ban < 0 {
			errs = append(errs, fmt.Sprintf("%s.ban: %s is negative", at, r.Ban))
		}
		for _, p := range r.Paths {
			if !strings.HasPrefix(p, "/") {
				errs = append(errs, fmt.Sprintf("%s.paths: %q must start with /", at, p))
			}
		}
	}
	return errs
}
