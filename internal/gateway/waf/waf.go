// Package waf is the gateway's web application firewall: Coraza v3 running
// the OWASP Core Rule Set v4 (from coraza-coreruleset), compiled once per
// gateway and shared by every route.
//
// Routes differ in mode (off, detect, block), paranoia level (1 to 4),
// request body cap and response inspection. None of these needs a second
// compiled rule set: a transaction carries its route's mode and paranoia
// level in TX variables the client cannot touch (TX:noops_mode,
// TX:blocking_paranoia_level), set before the first phase runs, and two
// control rules placed ahead of the CRS turn them into ctl actions. The
// CRS's own initialization (901) keeps a paranoia level that is already
// set. The body cap and response inspection are the gateway's: it feeds the
// engine at most the cap and only calls the response phases when asked.
//
// Anomaly scoring is the CRS's: rules add to the inbound score, rule 949110
// blocks once it reaches the threshold (5 by default, one critical match).
// Every matched rule that logs becomes part of an Event, whatever the mode.
package waf

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	"noops/internal/errkind"
)

// Mode says what a route does with the WAF's verdict.
type Mode string

const (
	Off    Mode = "off"    // no inspection
	Detect Mode = "detect" // inspect and report, never refuse
	Block  Mode = "block"  // inspect, report and refuse
)

// Limits of the settings.
const (
	DefaultBodyLimit = 128 << 10 // bytes of a request body inspected
	MaxBodyLimit     = 8 << 20
	DefaultParanoia  = 1
)

// Settings are one route's WAF settings.
type Settings struct {
	Mode      Mode
	Paranoia  int   // 1 to 4; 0 means DefaultParanoia
	BodyLimit int64 // bytes of request body inspected; 0 means DefaultBodyLimit
	// Responses turns on response inspection (the CRS 95x data-leak
	// rules): text responses are held back up to BodyLimit bytes and
	// inspected before the client sees them.
	Responses bool
}

// Normalize fills the defaults and checks the ranges.
func (s Settings) Normalize() (Settings, error) {
	switch s.Mode {
	case "":
		s.Mode = Block
	case Off, Detect, Block:
	default:
		return s, errkind.Errorf(errkind.Invalid, "waf mode %q: use off, detect or block", s.Mode)
	}
	if s.Paranoia == 0 {
		s.Paranoia = DefaultParanoia
	}
	if s.Paranoia < 1 || s.Paranoia > 4 {
		return s, errkind.Errorf(errkind.Invalid, "waf paranoia %d: use 1 (fewest false positives) to 4 (strictest)", s.Paranoia)
	}
	if s.BodyLimit == 0 {
		s.BodyLimit = DefaultBodyLimit
	}
	if s.BodyLimit < 0 || s.BodyLimit > MaxBodyLimit {
		return s, errkind.Errorf(errkind.Invalid, "waf body limit %d: use 1 byte to %d", s.BodyLimit, MaxBodyLimit)
	}
	return s, nil
}

// Config builds an Engine.
type Config struct {
	// Setup is the platform's own additions to the CRS setup, loaded
	// first (shield.Defaults).
	Setup string
	// Directives are added after the CRS setup and before its rules
	// (SecAction overrides of CRS variables, rule exclusions, local rules).
	Directives string
	// DirectivesName names Directives in errors (a file name); a
	// directive that does not load is reported with its line in it.
	DirectivesName string
	Logger         *slog.Logger
}

// Engine is the compiled rule set. It is safe for concurrent use.
type Engine struct {
	waf coraza.WAF
	opt experimental.WAFWithOptions // nil when the WAF lacks it
	log *slog.Logger
}

// controlRules run first, in phase 1: they apply the route's mode. The
// IDs are in the range ModSecurity leaves to local rules.
const controlRules = `
SecRule TX:noops_mode "@streq detect" "id:9100,phase:1,pass,nolog,t:none,ctl:ruleEngine=DetectionOnly"
`

// base is the engine configuration: Coraza's recommended settings with the
// rule engine on (routes in detect mode switch to DetectionOnly per
// transaction), the body limits above the largest route cap (the gateway
// feeds no more than a route's cap) and partial processing past it. The
// regex prefilter stays off: in Coraza v3.8.1 it rules out inputs that the
// full regex matches (the CRS regression tests 932311-7 and 942220-2 get
// through with it on), and a faster WAF that misses attacks is worse. The CRS setup gives phases 1 and 2 a default
// action that logs; phases 3 to 5 get the same, else Coraza's response
// rules would match without saying so.
func base() string {
	return fmt.Sprintf(`
Include @coraza.conf-recommended
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit %d
SecRequestBodyInMemoryLimit %d
SecRequestBodyLimitAction ProcessPartial
SecResponseBodyAccess On
SecResponseBodyLimit %d
SecResponseBodyLimitAction ProcessPartial
SecResponseBodyMimeType text/plain text/html text/xml application/json application/xml
SecRxPreFilter Off
SecAuditEngine Off
Include @crs-setup.conf.example
SecDefaultAction "phase:3,log,auditlog,pass"
SecDefaultAction "phase:4,log,auditlog,pass"
SecDefaultAction "phase:5,log,auditlog,pass"
`, MaxBodyLimit, MaxBodyLimit, MaxBodyLimit)
}

// New compiles the CRS with cfg's additions. A directive that does not
// parse fails here, with the file and line, never at request time.
func New(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var fsys fs.FS = coreruleset.FS
	c := coraza.NewWAFConfig().WithRootFS(fsys).
		WithDirectives(base()).
		WithDirectives(controlRules)
	if cfg.Setup != "" {
		c = c.WithDirectives(cfg.Setup)
	}
	if cfg.Directives != "" {
		c = c.WithDirectives(cfg.Directives)
	}
	c = c.WithDirectives("Include @owasp_crs/*.conf")
	w, err := coraza.NewWAF(c)
	if err != nil {
		err = tidy(err)
		if cfg.Directives != "" {
			name := cfg.DirectivesName
			if name == "" {
				name = "directives"
			}
			line, lerr := locate(fsys, cfg.Directives)
			if lerr != nil {
				err = tidy(lerr)
			}
			err = &LoadError{File: name, Line: line, Err: err}
		}
		return nil, errkind.WithHint(errkind.Invalid, fmt.Errorf("loading the WAF rule set: %w", err),
			"fix the directive at the file and line named")
	}
	e := &Engine{waf: w, log: cfg.Logger}
	e.opt, _ = w.(experimental.WAFWithOptions)
	return e, nil
}

// Rules returns how many rules the engine holds.
func (e *Engine) Rules() int {
	if r, ok := e.waf.(experimental.WAFWithRules); ok {
		return r.RulesCount()
	}
	return 0
}

// tidy shortens Coraza's nested load errors to their innermost cause,
// which names the file and line.
func tidy(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// txMap returns a transaction's TX collection; Coraza's transactions
// implement the experimental plugin interface that reaches it.
func txMap(tx types.Transaction) collection.Map {
	if st, ok := tx.(plugintypes.TransactionState); ok {
		return st.Variables().TX()
	}
	return nil
}

var scoreVars = [...]string{"blocking_inbound_anomaly_score", "blocking_outbound_anomaly_score"}

// anomaly reads the CRS anomaly scores of a transaction.
func anomaly(tx types.Transaction) (in, out int) {
	m := txMap(tx)
	if m == nil {
		return 0, 0
	}
	get := func(k string) int {
		v := m.Get(k)
		if len(v) == 0 {
			return 0
		}
		n, _ := strconv.Atoi(v[0])
		return n
	}
	return get(scoreVars[0]), get(scoreVars[1])
}
