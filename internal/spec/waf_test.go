package spec

import (
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestParseWAFAndRateLimits(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(`
waf: { mode: detect, paranoia: 2, body_limit: 64Ki, routes: [ { path: /admin, mode: block, paranoia: 3 } ] }
rate_limits:
  - { name: api, limit: 50, window: 60s, paths: [ /api ], ban: 5m }
  - { name: login, limit: 10, window: 300s, key: [ forwarded_ip, "header:X-Tenant" ], action: challenge, methods: [ POST ] }
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.WAF.Mode != "detect" || m.WAF.Paranoia != 2 || m.WAF.BodyLimit != 64<<10 {
		t.Errorf("waf = %+v", m.WAF)
	}
	for _, tc := range []struct {
		path, mode string
		pl         int
	}{{"/", "detect", 2}, {"/admin", "block", 3}, {"/admin/users", "block", 3}, {"/administrator", "detect", 2}} {
		if mode, pl := m.WAF.Rule(tc.path); mode != tc.mode || pl != tc.pl {
			t.Errorf("Rule(%q) = %s %d, want %s %d", tc.path, mode, pl, tc.mode, tc.pl)
		}
	}
	api := m.RateLimits[0]
	if api.Action != "block" || len(api.Key) != 1 || api.Key[0] != "ip" || time.Duration(api.Ban) != 5*time.Minute {
		t.Errorf("api rule defaults = %+v", api)
	}
	if d, _ := Parse(nil); d.WAF.Mode != "block" || d.WAF.Paranoia != 1 || d.WAF.BodyLimit != DefaultWAFBody {
		t.Errorf("default waf = %+v, want block at PL1", d.WAF)
	}
	if w := (Config{}).WAFOrDefault(); w.Mode != "block" {
		t.Errorf("an old release's WAF = %+v, want the default", w)
	}
}

func TestWAFErrors(t *testing.T) {
	t.Parallel()
	for yaml, want := range map[string]string{
		"waf: { mode: on }":                                              `waf.mode: "on" is not off, detect or block`,
		"waf: { paranoia: 5 }":                                           "waf.paranoia: 5",
		"waf: { body_limit: 9Mi }":                                       "waf.body_limit",
		"waf: { routes: [ { path: admin } ] }":                           "waf.routes[0].path",
		"rate_limits: [ { name: a, limit: 5, window: 30s } ]":            "window: 30s is not whole seconds from 60s to 600s",
		"rate_limits: [ { name: a, limit: 0 } ]":                         "limit: 0 must be at least 1",
		"rate_limits: [ { name: a, limit: 5, key: [ ua ] } ]":            `key: "ua" is not`,
		"rate_limits: [ { name: a, limit: 5, action: ban } ]":            `action: "ban"`,
		"rate_limits: [ { name: a, limit: 5, action: count, ban: 1m } ]": "only a block rule bans",
		"rate_limits: [ { name: a, limit: 5 }, { name: a, limit: 6 } ]":  "used twice",
	} {
		_, err := Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) || !errkind.Is(err, errkind.Invalid) {
			t.Errorf("Parse(%q) = %v, want Invalid containing %q", yaml, err, want)
		}
	}
}
