package shield

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"noops/internal/gateway/ban"
	"noops/internal/gateway/ratelimit"
	"noops/internal/gateway/waf"
	"noops/internal/spec"
)

// Identity headers the access layer sets for the app (it strips forged
// ones first).
const (
	headerUser     = "X-Noops-User"
	headerWorkload = "X-Noops-Workload"
)

// Inspect is the gateway's Shield: the flood rule, the app's rate rules,
// then the WAF. It answers refused requests itself.
func (s *Shield) Inspect(w http.ResponseWriter, r *http.Request, app string) (http.ResponseWriter, func(int), bool) {
	a := (*s.apps.Load())[app]
	if a == nil {
		// No release applied (yet): the defaults protect it.
		a = defaultApp
	}
	now := s.cfg.Now()
	ip := clientIP(r)
	if !s.rates(w, r, app, a, ip, now) {
		return nil, nil, false
	}
	mode, pl := a.waf.Rule(r.URL.Path)
	if mode == string(waf.Off) {
		return w, nil, true
	}
	set := waf.Settings{Mode: waf.Mode(mode), Paranoia: pl, BodyLimit: a.body, Responses: a.waf.Responses}
	id := w.Header().Get("X-Request-Id")
	tx := s.cfg.Engine.Begin(r, set, id)
	refuse, err := tx.Request(r)
	if err != nil {
		ev := tx.End()
		s.bodyError(w, r, app, ip, err, ev)
		return nil, nil, false
	}
	if refuse {
		ev := tx.End()
		s.wafBlocked(w, r, app, ip, id, ev)
		return nil, nil, false
	}
	ww := tx.Response(w, r)
	done := func(status int) {
		tx.Finish()
		if ev := tx.End(); ev != nil {
			if ev.Blocked { // the response was refused
				s.wafEvent(r, app, ip, id, ev)
			} else {
				s.stats.WAFDetected.Add(1)
				s.emit(Event{Kind: KindWAFDetect, App: app, Client: ip.String(), RequestID: id, Method: r.Method, Path: clipPath(r), WAF: ev})
			}
		}
	}
	return ww, done, true
}

var defaultApp = func() *appShield {
	a, _ := build(spec.Config{})
	return a
}()

// rates applies the flood rule and the app's rate rules; false when it
// answered the request.
func (s *Shield) rates(w http.ResponseWriter, r *http.Request, app string, a *appShield, ip netip.Addr, now time.Time) bool {
	if s.flood == nil && a.limiter == nil {
		return true
	}
	req := ratelimit.Request{IP: ip, Method: r.Method, Path: r.URL.Path, Header: r.Header}
	if s.flood != nil {
		if v := s.flood.Check(&req, now); v.Rule != nil {
			if s.rateBlocked(w, r, app, ip, v, ban.Flood) {
				s.flood.Forget(v.Rule.Name, &req)
			}
			return false
		}
	}
	if a.limiter == nil {
		return true
	}
	req.ForwardedIP = s.forwarded(r, ip)
	req.Identity = r.Header.Get(headerUser)
	if req.Identity == "" {
		req.Identity = r.Header.Get(headerWorkload)
	}
	v := a.limiter.Check(&req, now)
	if len(v.Counted) > 0 {
		s.stats.RateCounted.Add(1)
		s.log.Debug("rate rule counted", "app", app, "rules", v.Counted, "client", ip)
	}
	switch v.Action {
	case "block":
		if s.rateBlocked(w, r, app, ip, v, ban.Rate(v.Rule.Name)) {
			// The ban takes over: once it is over the client starts afresh.
			a.limiter.Forget(v.Rule.Name, &req)
		}
		return false
	case "challenge":
		return s.challenge(w, r, app, ip, v)
	}
	return true
}

// rateBlocked refuses a request over a block rule with 429, banning the
// client when the rule says so; it reports whether it banned.
func (s *Shield) rateBlocked(w http.ResponseWriter, r *http.Request, app string, ip netip.Addr, v ratelimit.Verdict, trig ban.Trigger) (banned bool) {
	s.stats.RateBlocked.Add(1)
	rule := v.Rule
	if rule.Ban > 0 && v.First && s.cfg.Bans != nil {
		reason := fmt.Sprintf("%s: %d requests in %s, over the limit of %d (app %s)", rule.Name, v.Count, rule.Window, rule.Limit, app)
		_, banned = s.cfg.Bans.BanFor(ip, trig, reason, rule.Ban)
	}
	retry := int(rule.Window / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	r.Close = true
	s.cfg.Page(w, r, http.StatusTooManyRequests,
		fmt.Sprintf("too many requests: the rate rule %q allows %d per %s", rule.Name, rule.Limit, rule.Window))
	return banned
}

// wafBlocked refuses a request the WAF blocked, records the event and
// strikes the client.
func (s *Shield) wafBlocked(w http.ResponseWriter, r *http.Request, app string, ip netip.Addr, id string, ev *waf.Event) {
	s.wafEvent(r, app, ip, id, ev)
	status := http.StatusForbidden
	if ev != nil && ev.Status != 0 {
		status = ev.Status
	}
	s.cfg.Page(w, r, status, "the web application firewall blocked it ("+ruleList(ev)+"); if this is a mistake, tell the app's owner the request ID")
}

func (s *Shield) wafEvent(r *http.Request, app string, ip netip.Addr, id string, ev *waf.Event) {
	s.stats.WAFBlocked.Add(1)
	now := s.cfg.Now()
	s.hits.add(ip, now)
	s.emit(Event{Kind: KindWAFBlock, App: app, Client: ip.String(), RequestID: id, Method: r.Method, Path: clipPath(r), WAF: ev})
	if s.cfg.Bans != nil {
		s.cfg.Bans.Strike(ip, ban.WAF, "WAF block: "+ruleList(ev))
	}
}

// bodyError answers a request whose body could not be inspected.
func (s *Shield) bodyError(w http.ResponseWriter, r *http.Request, app string, ip netip.Addr, err error, ev *waf.Event) {
	r.Close = true
	switch {
	case errors.Is(err, waf.ErrBomb):
		s.Strike(ip, "garbage", err.Error())
		s.cfg.Page(w, r, http.StatusRequestEntityTooLarge, err.Error())
	case r.Context().Err() != nil:
		// The client went away: nobody reads an answer.
	default:
		s.cfg.Page(w, r, http.StatusRequestTimeout, "the request body could not be read: "+err.Error())
	}
}

// ruleList names the rules of an event, the blocking ones first.
func ruleList(ev *waf.Event) string {
	if ev == nil || len(ev.Rules) == 0 {
		return "no rule named"
	}
	var b strings.Builder
	b.WriteString("rules")
	n := 0
	for _, m := range ev.Rules {
		if m.ID >= 949000 && m.ID < 950000 || m.ID >= 959000 && m.ID < 960000 || m.ID >= 980000 {
			continue // the scoring and correlation rules
		}
		if n == 5 {
			b.WriteString(" …")
			break
		}
		fmt.Fprintf(&b, " %d", m.ID)
		n++
	}
	if n == 0 {
		fmt.Fprintf(&b, " %d", ev.Rules[0].ID)
	}
	fmt.Fprintf(&b, ", score %d", max(ev.Inbound, ev.Outbound))
	return b.String()
}

func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// forwarded returns the client behind a trusted proxy: the right-most
// X-Forwarded-For address that is not itself a trusted proxy.
func (s *Shield) forwarded(r *http.Request, peer netip.Addr) netip.Addr {
	if !s.trusted(peer) {
		return netip.Addr{}
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return netip.Addr{}
			}
			if a = a.Unmap(); !s.trusted(a) {
				return a
			}
		}
	}
	return netip.Addr{}
}

func (s *Shield) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func clipPath(r *http.Request) string {
	p := r.URL.Path
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	return p
}
