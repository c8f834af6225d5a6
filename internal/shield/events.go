package shield

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"noops/internal/gateway/ban"
	"noops/internal/gateway/waf"
	"noops/internal/notify"
	"noops/internal/store"
)

// The kinds of security events.
const (
	KindWAFBlock        = "waf_block"        // the WAF refused a request (or a response)
	KindWAFDetect       = "waf_detect"       // rules matched on a route in detect mode, or below the threshold
	KindBan             = "ban"              // a client was banned
	KindUnban           = "unban"            // a ban expired or was removed
	KindChallengeFailed = "challenge_failed" // a client did not pass the cookie challenge
)

// Event is a security event.
type Event struct {
	Kind      string     `json:"kind"`
	Time      time.Time  `json:"time"`
	App       string     `json:"app,omitempty"`
	Client    string     `json:"client,omitempty"`
	RequestID string     `json:"request_id,omitempty"`
	Method    string     `json:"method,omitempty"`
	Path      string     `json:"path,omitempty"`
	Detail    string     `json:"detail,omitempty"`
	WAF       *waf.Event `json:"waf,omitempty"`
	Ban       *ban.Ban   `json:"ban,omitempty"`
}

// emit sends an event to the hook, the log, the audit log and the sinks.
// Detections only reach the hook and the log: they change nothing.
func (s *Shield) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
	level := slog.LevelWarn
	if e.Kind == KindWAFDetect {
		level = slog.LevelInfo
	}
	attrs := []any{"kind", e.Kind, "app", e.App, "client", e.Client, "request_id", e.RequestID}
	if e.WAF != nil {
		attrs = append(attrs, "rules", e.WAF.IDs(), "inbound_score", e.WAF.Inbound, "outbound_score", e.WAF.Outbound)
	}
	if e.Detail != "" {
		attrs = append(attrs, "detail", e.Detail)
	}
	s.log.Log(context.Background(), level, "security event", attrs...)
	if e.Kind == KindWAFDetect {
		return
	}
	s.queueAudit(e)
	if s.cfg.Notify != nil {
		s.cfg.Notify.Notify(notifyEvent(e))
	}
}

// notifyEvent is the notification of a security event, deduplicated by
// kind and client (a ban by its prefix).
func notifyEvent(e Event) notify.Event {
	n := notify.Event{Kind: e.Kind, Key: e.Client, Time: e.Time, App: e.App, Severity: "warning", Fields: map[string]string{}}
	if e.Client != "" {
		n.Fields["client"] = e.Client
	}
	switch e.Kind {
	case KindWAFBlock:
		n.Title = fmt.Sprintf("WAF blocked %s %s from %s (%s)", e.Method, e.Path, e.Client, ruleList(e.WAF))
		n.Fields["request_id"] = e.RequestID
		n.Fields["rules"] = strings.Trim(fmt.Sprint(e.WAF.IDs()), "[]")
	case KindBan:
		b := e.Ban
		n.Key, n.Severity = b.Prefix, "critical"
		n.Title = fmt.Sprintf("%s banned %s: %s", b.Prefix, until(b), b.Reason)
		n.Fields["trigger"], n.Fields["offences"] = b.Trigger, strconv.Itoa(b.Offences)
		if !b.Until.IsZero() {
			n.Fields["until"] = b.Until.UTC().Format(time.RFC3339)
		}
	case KindUnban:
		n.Key, n.Severity = e.Ban.Prefix, "info"
		n.Title = fmt.Sprintf("%s unbanned (%s)", e.Ban.Prefix, e.Detail)
	case KindChallengeFailed:
		n.Title = fmt.Sprintf("%s failed the cookie challenge of %s", e.Client, e.App)
		n.Fields["detail"] = e.Detail
	}
	return n
}

func until(b *ban.Ban) string {
	if b.Until.IsZero() {
		return "until removed"
	}
	return "for " + b.Until.Sub(b.Created).Round(time.Second).String()
}

// queueAudit queues an audit entry; the writer goroutine appends it. A
// full queue drops (and counts) rather than slow the request path down.
func (s *Shield) queueAudit(e Event) {
	if s.cfg.Audit == nil {
		return
	}
	detail, _ := json.Marshal(e)
	entry := store.AuditEntry{Time: e.Time, Actor: "gateway", Action: "security " + e.Kind, Target: auditTarget(e), Status: 0, Detail: string(detail)}
	if e.Kind == KindWAFBlock && e.WAF != nil {
		entry.Status = e.WAF.Status
	}
	select {
	case s.audit <- entry:
	default:
		s.stats.AuditDropped.Add(1)
	}
}

func auditTarget(e Event) string {
	switch {
	case e.Ban != nil:
		return "client:" + e.Ban.Prefix
	case e.App != "":
		return "app:" + e.App
	}
	return "client:" + e.Client
}

func (s *Shield) writeAudit() {
	write := func(e store.AuditEntry) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.cfg.Audit.AppendAudit(ctx, e); err != nil {
			s.log.Error("recording a security event in the audit log", "action", e.Action, "err", err)
		}
	}
	for {
		select {
		case e := <-s.audit:
			write(e)
		case <-s.done:
			for {
				select {
				case e := <-s.audit:
					write(e)
				default:
					return
				}
			}
		}
	}
}

// OnBan is the ban list's OnBan: the event goes out. (The gateway's
// connections are closed by the caller that wires the two.)
func (s *Shield) OnBan(b ban.Ban) {
	s.stats.Bans.Add(1)
	s.emit(Event{Kind: KindBan, Client: strings.TrimSuffix(strings.TrimSuffix(b.Prefix, "/32"), "/128"), Detail: b.Reason, Ban: &b})
}

// OnLift is the ban list's OnLift.
func (s *Shield) OnLift(b ban.Ban) {
	why := "expired"
	if b.Until.IsZero() || b.Lifted.Before(b.Until) {
		why = "removed"
	}
	s.emit(Event{Kind: KindUnban, Client: strings.TrimSuffix(strings.TrimSuffix(b.Prefix, "/32"), "/128"), Detail: why, Ban: &b})
}

// Strike is the gateway's and the identity service's report of a
// client's offence: a strike on the ban list.
func (s *Shield) Strike(addr netip.Addr, kind, detail string) {
	if s.cfg.Bans == nil || !addr.IsValid() {
		return
	}
	s.cfg.Bans.Strike(addr.Unmap(), ban.Trigger(kind), detail)
}

// LoginFailed is the identity service's OnFailure hook.
func (s *Shield) LoginFailed(addr, user, reason string) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(addr)
		if err2 != nil {
			return
		}
		a = ap.Addr()
	}
	s.Strike(a, string(ban.Login), fmt.Sprintf("failed sign-in of %q: %s", user, reason))
}

// hitTable counts recent events per client address within a window.
type hitTable struct {
	mu     sync.Mutex
	window time.Duration
	m      map[netip.Addr][]time.Time
}

const maxHitAddrs = 50_000

func (h *hitTable) init(window time.Duration) {
	h.window, h.m = window, map[netip.Addr][]time.Time{}
}

func (h *hitTable) add(a netip.Addr, now time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := prune(h.m[a], now.Add(-h.window))
	if len(ts) >= 64 {
		ts = ts[1:]
	}
	if len(h.m) >= maxHitAddrs && h.m[a] == nil {
		for k := range h.m { // drop one at random: bounded memory
			delete(h.m, k)
			break
		}
	}
	ts = append(ts, now)
	h.m[a] = ts
	return len(ts)
}

func (h *hitTable) count(a netip.Addr, now time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(prune(h.m[a], now.Add(-h.window)))
}

func (h *hitTable) reset(a netip.Addr) {
	h.mu.Lock()
	delete(h.m, a)
	h.mu.Unlock()
}

func (h *hitTable) sweep(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for a, ts := range h.m {
		if ts = prune(ts, now.Add(-h.window)); len(ts) == 0 {
			delete(h.m, a)
		} else {
			h.m[a] = ts
		}
	}
}

func prune(ts []time.Time, after time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(after) {
		i++
	}
	return ts[i:]
}
