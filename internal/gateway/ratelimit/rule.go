package ratelimit

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"noops/internal/errkind"
)

// Action is what the gateway does with a request that takes a key over a
// rule's limit.
type Action string

// The actions.
const (
	Block     Action = "block"     // refuse the request (429), optionally ban the client
	Challenge Action = "challenge" // ask the client to prove it is a browser or to sign in
	Count     Action = "count"     // let the request through and report the rule in Verdict.Counted
)

// The kinds of key part.
const (
	KindIP          = "ip"           // the client address (Request.IP)
	KindForwardedIP = "forwarded_ip" // the client behind a trusted proxy (Request.ForwardedIP, else IP)
	KindIdentity    = "identity"     // the signed-in user or workload; "" (anonymous) is one key
	KindHeader      = "header"       // the first value of the header Name; missing is the key ""
	KindCookie      = "cookie"       // the value of the cookie Name; missing is the key ""
	KindPath        = "path"         // the request path
	KindMethod      = "method"       // the request method
)

// Limits of a rule, as AWS WAF has them (AWS offers only the four windows
// 60, 120, 300 and 600 s; any whole second between is accepted here).
const (
	MinWindow   = 60 * time.Second
	MaxWindow   = 600 * time.Second
	MaxLimit    = 2_000_000_000
	MaxKeyParts = 5
)

// KeyPart is one part of a rule's aggregation key.
type KeyPart struct {
	Kind string // one of the Kind constants
	Name string // the header or cookie name for "header" and "cookie"; empty otherwise
}

// Rule is one rate-based rule of the manifest.
type Rule struct {
	Name    string
	Limit   int           // requests allowed per Window (at least 1)
	Window  time.Duration // a whole number of seconds in [MinWindow, MaxWindow]
	Key     []KeyPart     // default [{Kind: "ip"}]; at most MaxKeyParts parts
	Action  Action        // default Block
	Paths   []string      // scope-down: only requests under one of these path prefixes count; empty = all
	Methods []string      // scope-down: only requests with one of these methods count; empty = all
	Ban     time.Duration // with Block, how long the caller bans the key once it trips; 0 = no ban
}

// Validate reports the first problem of r, or nil. The errors are classified
// errkind.Invalid and name the rule, e.g.
//
//	rate rule "api": window 30s is outside 60s..600s
func (r Rule) Validate() error {
	if err := r.check(); err != nil {
		if r.Name == "" {
			return errkind.Errorf(errkind.Invalid, "rate rule: %s", err)
		}
		return errkind.Errorf(errkind.Invalid, "rate rule %q: %s", r.Name, err)
	}
	return nil
}

// check returns the problem of r without the rule's name.
func (r Rule) check() error {
	if r.Name == "" {
		return fmt.Errorf("name is empty")
	}
	if r.Limit < 1 {
		return fmt.Errorf("limit %d is below 1", r.Limit)
	}
	if r.Limit > MaxLimit {
		return fmt.Errorf("limit %d is above %d", r.Limit, MaxLimit)
	}
	if r.Window < MinWindow || r.Window > MaxWindow {
		return fmt.Errorf("window %s is outside %s..%s", secs(r.Window), secs(MinWindow), secs(MaxWindow))
	}
	if r.Window%time.Second != 0 {
		return fmt.Errorf("window %v is not a whole number of seconds", r.Window)
	}
	if len(r.Key) > MaxKeyParts {
		return fmt.Errorf("key has %d parts, at most %d are allowed", len(r.Key), MaxKeyParts)
	}
	for i, p := range r.Key {
		if err := p.check(); err != nil {
			return fmt.Errorf("key part %d: %s", i+1, err)
		}
		for j, q := range r.Key[:i] {
			if p.Kind == q.Kind && canonicalName(p) == canonicalName(q) {
				return fmt.Errorf("key part %d repeats part %d", i+1, j+1)
			}
		}
	}
	switch r.Action {
	case "", Block, Challenge, Count:
	default:
		return fmt.Errorf("action %q is not block, challenge or count", r.Action)
	}
	for _, p := range r.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("path %q does not start with /", p)
		}
	}
	for _, m := range r.Methods {
		if !isToken(m) {
			return fmt.Errorf("method %q is not a valid HTTP method", m)
		}
	}
	if r.Ban < 0 {
		return fmt.Errorf("ban %s is negative", secs(r.Ban))
	}
	if r.Ban > 0 && r.Action != "" && r.Action != Block {
		return fmt.Errorf("ban needs action block, not %q", r.Action)
	}
	return nil
}

func (p KeyPart) check() error {
	switch p.Kind {
	case KindHeader, KindCookie:
		if p.Name == "" {
			return fmt.Errorf("%s needs a name", p.Kind)
		}
		if !isToken(p.Name) {
			return fmt.Errorf("%s name %q is not a valid token", p.Kind, p.Name)
		}
	case KindIP, KindForwardedIP, KindIdentity, KindPath, KindMethod:
		if p.Name != "" {
			return fmt.Errorf("kind %q takes no name (got %q)", p.Kind, p.Name)
		}
	default:
		return fmt.Errorf("unknown kind %q (want ip, forwarded_ip, identity, header, cookie, path or method)", p.Kind)
	}
	return nil
}

// canonicalName is the name p is looked up by: header names are case
// insensitive, cookie names are not.
func canonicalName(p KeyPart) string {
	if p.Kind == KindHeader {
		return textproto.CanonicalMIMEHeaderKey(p.Name)
	}
	return p.Name
}

// normalized returns a copy of r (which must be valid) with the defaults
// filled in and names in the form Check compares them in. The copy shares
// no slices with r.
func (r Rule) normalized() Rule {
	n := r
	if len(r.Key) == 0 {
		n.Key = []KeyPart{{Kind: KindIP}}
	} else {
		n.Key = make([]KeyPart, len(r.Key))
		for i, p := range r.Key {
			n.Key[i] = KeyPart{Kind: p.Kind, Name: canonicalName(p)}
		}
	}
	if n.Action == "" {
		n.Action = Block
	}
	n.Paths = make([]string, len(r.Paths))
	for i, p := range r.Paths {
		if t := strings.TrimRight(p, "/"); t != "" {
			p = t
		} else {
			p = "/"
		}
		n.Paths[i] = p
	}
	n.Methods = make([]string, len(r.Methods))
	for i, m := range r.Methods {
		n.Methods[i] = strings.ToUpper(m)
	}
	return n
}

// matches reports whether req is in r's scope-down. r is normalized.
func (r *Rule) matches(req *Request) bool {
	if len(r.Methods) > 0 {
		ok := false
		for _, m := range r.Methods {
			// Methods are case sensitive in HTTP, but some upstreams are
			// not; folding keeps "get" from slipping past a GET rule.
			if strings.EqualFold(req.Method, m) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.Paths) == 0 {
		return true
	}
	for _, p := range r.Paths {
		if underPrefix(req.Path, p) {
			return true
		}
	}
	return false
}

// underPrefix reports whether path is prefix or below it: "/api" covers
// "/api" and "/api/x" but not "/apix". prefix has no trailing slash unless
// it is "/".
func underPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/')
}

// secs formats d in seconds, as the manifest writes windows ("90s"), when
// it is a whole number of them.
func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
