package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/gateway/ban"
)

// Bans is the gateway's ban list as the API manages it.
type Bans interface {
	Active() []ban.Ban
	Add(ctx context.Context, prefix netip.Prefix, d time.Duration, reason, by string) (ban.Ban, error)
	Remove(ctx context.Context, prefix netip.Prefix, by string) (ban.Ban, error)
}

func (s *server) banRoutes(handle func(string, func(http.ResponseWriter, *http.Request) error)) {
	handle("GET /v1/bans", s.bans)
	handle("POST /v1/bans", s.addBan)
	handle("POST /v1/bans/remove", s.removeBan)
}

func (s *server) bans(w http.ResponseWriter, r *http.Request) error {
	list := s.cfg.Bans.Active()
	out := make([]apitype.Ban, len(list))
	for i, b := range list {
		out[i] = banOut(b)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) addBan(w http.ResponseWriter, r *http.Request) error {
	var req apitype.BanRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := ParsePrefix(req.Prefix)
	if err != nil {
		return err
	}
	var d time.Duration
	if req.Duration != "" {
		if d, err = time.ParseDuration(req.Duration); err != nil || d < 0 {
			return errkind.Errorf(errkind.Invalid, "duration %q: give a Go duration such as 10m or 24h, or nothing for a ban until removed", req.Duration)
		}
	}
	if req.Reason == "" {
		req.Reason = "banned by " + actor(r)
	}
	b, err := s.cfg.Bans.Add(r.Context(), p, d, req.Reason, actor(r))
	if err != nil {
		return err
	}
	setDetail(r, fmt.Sprintf("ban %s for %s: %s", b.Prefix, durationText(d), req.Reason))
	writeJSON(w, http.StatusOK, banOut(b))
	return nil
}

func (s *server) removeBan(w http.ResponseWriter, r *http.Request) error {
	var req apitype.BanRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := ParsePrefix(req.Prefix)
	if err != nil {
		return err
	}
	b, err := s.cfg.Bans.Remove(r.Context(), p, actor(r))
	if err != nil {
		return err
	}
	setDetail(r, "lift the ban of "+b.Prefix)
	writeJSON(w, http.StatusOK, banOut(b))
	return nil
}

// ParsePrefix reads an IP (its own /32 or /128) or a CIDR.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errkind.Errorf(errkind.Invalid, "%q is not an IP address or a CIDR such as 203.0.113.0/24", s)
	}
	return p.Masked(), nil
}

func durationText(d time.Duration) string {
	if d == 0 {
		return "ever (until removed)"
	}
	return d.String()
}

func banOut(b ban.Ban) apitype.Ban {
	return apitype.Ban{Prefix: b.Prefix, Reason: b.Reason, Trigger: b.Trigger, By: b.By, Created: b.Created, Until: b.Until,
		Offences: b.Offences, Lifted: b.Lifted}
}
