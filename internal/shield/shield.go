// Package shield protects apps behind the gateway: the WAF (OWASP CRS on
// Coraza), the manifest's rate-based rules, the global flood rule, the
// cookie challenge, and the ban triggers that feed the ban list. It is the
// gateway's Shield (after the access layer) and its Strike hook, and it
// turns what it sees into typed security events: in the audit log, at the
// notification sinks and at an OnEvent hook.
//
// The gateway asks the ban list itself at accept (gateway.Door); the
// shield decides what lands on it.
package shield

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"noops/internal/errkind"
	"noops/internal/gateway/ban"
	"noops/internal/gateway/ratelimit"
	"noops/internal/gateway/waf"
	"noops/internal/notify"
	"noops/internal/spec"
	"noops/internal/store"
)

// Config is what a Shield needs. Engine and Page are required.
type Config struct {
	Engine *waf.Engine
	Bans   *ban.List // nil: nothing is banned
	// Notify sends security events to the sinks (nil: none).
	Notify *notify.Notifier
	// Audit records security events (nil: none).
	Audit interface {
		AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
	}
	// Page answers a refused request with the gateway's page.
	Page func(w http.ResponseWriter, r *http.Request, status int, why string)
	// TrustedProxies are the peers whose X-Forwarded-For is believed (for
	// the forwarded_ip key); none by default.
	TrustedProxies []netip.Prefix
	// Flood is the platform-wide rate rule every app request counts in
	// (key: client address, action block with a ban). Zero Limit uses
	// DefaultFlood; a negative Limit turns it off.
	Flood ratelimit.Rule
	// OnEvent, when set, sees every security event (tests, the log).
	OnEvent func(Event)
	Logger  *slog.Logger
	Now     func() time.Time
}

// Defaults are the platform's additions to the CRS setup, loaded before
// the rules: the REST methods are allowed (the CRS allows GET, HEAD, POST
// and OPTIONS only, so rule 911100 would refuse every PUT, PATCH and
// DELETE of an API).
const Defaults = `SecAction "id:9001,phase:1,pass,nolog,t:none,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"`

// DefaultFlood is the platform's flood rule: 6,000 requests a minute from
// one address (100 a second, sustained) bans it for a minute, doubling
// for repeat offenders.
var DefaultFlood = ratelimit.Rule{Name: "flood", Limit: 6000, Window: time.Minute, Action: ratelimit.Action("block"), Ban: time.Minute}

// Shield is safe for concurrent use. Create it with New.
type Shield struct {
	cfg   Config
	log   *slog.Logger
	apps  atomic.Pointer[map[string]*appShield]
	mu    sync.Mutex // serializes writers of apps
	flood *ratelimit.Limiter
	key   [32]byte // signs challenge cookies
	hits  hitTable // recent WAF blocks per client, for the trust score
	chal  hitTable // challenges issued without a cookie coming back
	audit chan store.AuditEntry
	done  chan struct{}
	wg    sync.WaitGroup
	stats Stats
}

// Stats count what the shield did.
type Stats struct {
	WAFBlocked, WAFDetected, RateBlocked, RateCounted, Challenged, ChallengeFailed, Bans, AuditDropped atomic.Int64
}

// appShield is one app's protection, built from its live release.
type appShield struct {
	waf     spec.WAF
	body    int64
	limiter *ratelimit.Limiter // nil without rate rules
}

// New returns a shield; Start runs its background work.
func New(cfg Config) (*Shield, error) {
	if cfg.Engine == nil || cfg.Page == nil {
		return nil, errkind.Errorf(errkind.Invalid, "shield: an engine and a page writer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Shield{cfg: cfg, log: cfg.Logger, audit: make(chan store.AuditEntry, 1024), done: make(chan struct{})}
	s.apps.Store(&map[string]*appShield{})
	s.hits.init(10 * time.Minute)
	s.chal.init(5 * time.Minute)
	if _, err := rand.Read(s.key[:]); err != nil {
		return nil, fmt.Errorf("making the challenge key: %w", err)
	}
	flood := cfg.Flood
	if flood.Limit == 0 {
		flood = DefaultFlood
	}
	if flood.Limit > 0 {
		l, err := ratelimit.New([]ratelimit.Rule{flood})
		if err != nil {
			return nil, fmt.Errorf("the flood rule: %w", err)
		}
		s.flood = l
	}
	return s, nil
}

// Start runs the audit writer and the janitor until Stop.
func (s *Shield) Start(ctx context.Context) error {
	s.wg.Go(s.writeAudit)
	s.wg.Go(s.janitor)
	return nil
}

// Stop ends the background work, writing the audit entries queued.
func (s *Shield) Stop(ctx context.Context) error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
	return nil
}

func (s *Shield) janitor() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			now := s.cfg.Now()
			if s.flood != nil {
				s.flood.Sweep(now)
			}
			for _, a := range *s.apps.Load() {
				if a.limiter != nil {
					a.limiter.Sweep(now)
				}
			}
			s.hits.sweep(now)
			s.chal.sweep(now)
		}
	}
}

// SetRelease applies a release's WAF settings and rate rules to its app.
func (s *Shield) SetRelease(rel store.Release) error {
	var c spec.Config
	if len(rel.Config) > 0 {
		if err := json.Unmarshal(rel.Config, &c); err != nil {
			return fmt.Errorf("reading the WAF settings of %s release %d: %w", rel.App, rel.Number, err)
		}
	}
	a, err := build(c)
	if err != nil {
		return fmt.Errorf("%s release %d: %w", rel.App, rel.Number, err)
	}
	s.edit(func(m map[string]*appShield) { m[rel.App] = a })
	return nil
}

func build(c spec.Config) (*appShield, error) {
	w := c.WAFOrDefault()
	a := &appShield{waf: w, body: int64(w.BodyLimit)}
	if len(c.RateLimits) > 0 {
		rules := make([]ratelimit.Rule, len(c.RateLimits))
		for i, r := range c.RateLimits {
			rules[i] = RateRule(r)
		}
		l, err := ratelimit.New(rules)
		if err != nil {
			return nil, err
		}
		a.limiter = l
	}
	return a, nil
}

// RateRule converts a manifest rate rule.
func RateRule(r spec.RateLimit) ratelimit.Rule {
	out := ratelimit.Rule{Name: r.Name, Limit: r.Limit, Window: time.Duration(r.Window), Action: ratelimit.Action(r.Action),
		Paths: r.Paths, Methods: r.Methods, Ban: time.Duration(r.Ban)}
	for _, k := range r.Key {
		kind, name, _ := cut(k)
		out.Key = append(out.Key, ratelimit.KeyPart{Kind: kind, Name: name})
	}
	return out
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// RemoveApp forgets an app.
func (s *Shield) RemoveApp(app string) {
	s.edit(func(m map[string]*appShield) { delete(m, app) })
}

func (s *Shield) edit(f func(map[string]*appShield)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.apps.Load()
	m := make(map[string]*appShield, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	f(m)
	s.apps.Store(&m)
}

// WAFHits returns how many requests of a client address the WAF blocked
// in the last ten minutes (the access layer's trust signal).
func (s *Shield) WAFHits(addr string) int {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(addr); err2 == nil {
			a = ap.Addr()
		} else {
			return 0
		}
	}
	return s.hits.count(a.Unmap(), s.cfg.Now())
}
