package app

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"time"

	"noops/internal/errkind"
	"noops/internal/gateway/ban"
	"noops/internal/gateway/ratelimit"
	"noops/internal/gateway/waf"
	"noops/internal/notify"
	"noops/internal/shield"
	"noops/internal/store"
	"noops/internal/supervisor"
)

// Protection is the server's configuration of the WAF, the ban list and
// the security notifications.
type Protection struct {
	// WAFRules is a file of extra ModSecurity directives (exclusions,
	// local rules) loaded after the platform's CRS setup; a directive that
	// does not parse stops the start with its file and line.
	WAFRules string
	// BanAllow are the client ranges never banned.
	BanAllow []netip.Prefix
	// TrustedProxies are the peers whose X-Forwarded-For the forwarded_ip
	// rate key believes.
	TrustedProxies []netip.Prefix
	// Flood is the platform-wide limit of requests per minute from one
	// client (0: shield.DefaultFlood's 6000; negative: off).
	Flood int
	// Webhooks and Slack are notification sinks of security events and
	// alerts; Alertmanager sinks get alerts (and security events) as
	// Alertmanager's webhook JSON.
	Webhooks     []string
	Slack        []string
	Alertmanager []string
}

// startShield compiles the CRS, loads the ban list and starts the shield
// and the notification queue. The gateway starts after it.
func (a *App) startShield(ctx context.Context) error {
	p := a.cfg.Protection
	var user string
	if p.WAFRules != "" {
		b, err := os.ReadFile(p.WAFRules)
		if err != nil {
			return errkind.WithHint(errkind.Invalid, fmt.Errorf("reading the WAF rules file: %w", err), "fix --waf-rules")
		}
		user = string(b)
	}
	eng, err := waf.New(waf.Config{Setup: shield.Defaults, Directives: user, DirectivesName: p.WAFRules, Logger: a.log})
	if err != nil {
		return err
	}
	var sinks []notify.Sink
	for _, u := range p.Webhooks {
		sinks = append(sinks, notify.Webhook(u, nil))
	}
	for _, u := range p.Slack {
		sinks = append(sinks, notify.Slack(u))
	}
	for _, u := range p.Alertmanager {
		sinks = append(sinks, notify.Alertmanager(u, nil))
	}
	if len(sinks) > 0 {
		n, err := notify.New(notify.Config{Sinks: sinks, Spool: a.path("notify"), Logger: a.log})
		if err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			return err
		}
		a.notify = n
		a.started1("notifications", n.Stop)
	}
	a.bans = ban.New(ban.Config{Store: banStore{a.store}, Allow: p.BanAllow, Logger: a.log,
		OnBan:  a.onBan,
		OnLift: func(b ban.Ban) { a.shield.OnLift(b) }})
	flood := shield.DefaultFlood
	switch {
	case p.Flood > 0:
		flood.Limit = p.Flood
	case p.Flood < 0:
		flood = ratelimit.Rule{Limit: -1}
	}
	s, err := shield.New(shield.Config{Engine: eng, Bans: a.bans, Notify: a.notify, Audit: a.store, Flood: flood,
		TrustedProxies: p.TrustedProxies, Logger: a.log,
		Page: func(w http.ResponseWriter, r *http.Request, status int, why string) {
			a.gateway.ShieldPage(w, r, status, why)
		}})
	if err != nil {
		return err
	}
	a.shield = s
	if err := a.bans.Load(ctx); err != nil {
		return err
	}
	banCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); a.bans.Run(banCtx) }()
	a.started1("ban list", func(context.Context) error { cancel(); <-done; return nil })
	if err := s.Start(ctx); err != nil {
		return err
	}
	a.started1("shield", s.Stop)
	a.log.Info("web application firewall loaded", "rules", eng.Rules(), "bans", len(a.bans.Active()))
	return nil
}

// onBan closes the banned client's connections and sends the event.
func (a *App) onBan(b ban.Ban) {
	if g := a.gateway; g != nil {
		if p, err := netip.ParsePrefix(b.Prefix); err == nil {
			g.CloseClients(p)
		}
	}
	a.shield.OnBan(b)
	msg := fmt.Sprintf("%s banned (%s, %s)", b.Prefix, b.Trigger, b.Reason)
	if !b.Until.IsZero() {
		msg = fmt.Sprintf("%s banned until %s (%s, %s)", b.Prefix, b.Until.UTC().Format(time.RFC3339), b.Trigger, b.Reason)
	}
	if _, err := a.store.AppendEvent(context.Background(), store.Event{Time: time.Now(), Kind: store.KindBan, Message: msg}); err != nil {
		a.log.Warn("recording a ban marker", "err", err)
	}
}

// banned is the gateway's Door.
func (a *App) banned(addr netip.Addr) bool {
	_, ok := a.bans.Banned(addr)
	return ok
}

// guards applies a release to the access layer and the shield.
type guards []supervisor.Guard

func (gs guards) SetRelease(rel store.Release) error {
	for _, g := range gs {
		if err := g.SetRelease(rel); err != nil {
			return err
		}
	}
	return nil
}

func (gs guards) RemoveApp(app string) {
	for _, g := range gs {
		g.RemoveApp(app)
	}
}

// banStore keeps the ban list in the platform store.
type banStore struct{ s store.Store }

func (b banStore) PutBan(ctx context.Context, x ban.Ban) error { return b.s.PutBan(ctx, store.Ban(x)) }

func (b banStore) DeleteBan(ctx context.Context, prefix string) error {
	return b.s.DeleteBan(ctx, prefix)
}

func (b banStore) ListBans(ctx context.Context) ([]ban.Ban, error) {
	list, err := b.s.ListBans(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ban.Ban, len(list))
	for i, x := range list {
		out[i] = ban.Ban(x)
	}
	return out, nil
}
