package ban

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestAllowListWins(t *testing.T) {
	t.Parallel()
	l, _, r := newList(t, func(cfg *Config) {
		cfg.Allow = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28"), netip.MustParsePrefix("::ffff:198.51.100.9/128")}
	})
	for _, a := range []netip.Addr{addr, mapped, netip.MustParseAddr("198.51.100.9")} {
		if !l.Allowed(a) {
			t.Errorf("Allowed(%s) = false, want true", a)
		}
		for range 20 {
			if _, banned := l.Strike(a, WAF, ""); banned {
				t.Fatalf("Strike(%s) of an allowed address = a ban", a)
			}
		}
		if _, banned := l.BanFor(a, Rate("api"), "", time.Hour); banned {
			t.Errorf("BanFor(%s) of an allowed address = a ban", a)
		}
	}
	if n := l.strikes.len(); n != 0 {
		t.Errorf("addresses with strikes = %d, want 0: an allowed address's strikes are not counted", n)
	}
	if l.Allowed(netip.MustParseAddr("203.0.113.16")) {
		t.Errorf("Allowed(203.0.113.16) = true, want false")
	}
	for _, p := range []string{"203.0.113.0/24", "203.0.113.7/32", "0.0.0.0/0", "198.51.100.9/32"} {
		_, err := l.Add(t.Context(), netip.MustParsePrefix(p), time.Hour, "", "ana")
		if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "allow-listed") {
			t.Errorf("Add(%s) covering an allowed address = %v, want an Invalid error naming the allow list", p, err)
		}
	}
	if bans, _ := r.counts(); bans != 0 || len(l.Active()) != 0 {
		t.Errorf("bans after refused calls: OnBan %d, Active %+v; want none", bans, l.Active())
	}
	// A stored ban from before the address was allowed does not apply.
	l.mu.Lock()
	l.records[netip.MustParsePrefix("203.0.113.0/24")] = Ban{Prefix: "203.0.113.0/24", Created: t0}
	l.publish(netip.MustParsePrefix("203.0.113.0/24"))
	l.mu.Unlock()
	wantBanned(t, l, addr, false)
	wantBanned(t, l, netip.MustParseAddr("203.0.113.200"), true)
}

func TestPrefixes(t *testing.T) {
	t.Parallel()
	l, c, _ := newList(t, nil)
	ctx := t.Context()
	tests := []struct {
		add     string
		d       time.Duration
		want    string // the canonical prefix
		in, out []string
	}{
		{"198.51.100.77/24", time.Hour, "198.51.100.0/24", []string{"198.51.100.1", "198.51.100.255", "::ffff:198.51.100.3"}, []string{"198.51.101.1"}},
		{"2001:db8:1:2::/64", 0, "2001:db8:1:2::/64", []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"}, []string{"2001:db8:1:3::1"}},
		{"::ffff:192.0.2.0/120", time.Hour, "192.0.2.0/24", []string{"192.0.2.9", "::ffff:192.0.2.10"}, []string{"192.0.3.9"}},
		{"2001:db8::7/128", time.Hour, "2001:db8::7/128", []string{"2001:db8::7"}, []string{"2001:db8::8"}},
		{"::ffff:203.0.113.9/128", time.Hour, "203.0.113.9/32", []string{"203.0.113.9", "::ffff:203.0.113.9"}, []string{"203.0.113.10"}},
	}
	for _, tc := range tests {
		b, err := l.Add(ctx, netip.MustParsePrefix(tc.add), tc.d, "scanning", "ana")
		if err != nil {
			t.Fatalf("Add(%s) = %v", tc.add, err)
		}
		want := Ban{Prefix: tc.want, Reason: "scanning", Trigger: "manual", By: "ana", Created: t0, Offences: 1}
		if tc.d > 0 {
			want.Until = t0.Add(tc.d)
		}
		if b != want {
			t.Errorf("Add(%s) = %+v, want %+v", tc.add, b, want)
		}
		for _, a := range tc.in {
			if got := wantBanned(t, l, netip.MustParseAddr(a), true); got.Prefix != tc.want {
				t.Errorf("Banned(%s) by %s, want by %s", a, got.Prefix, tc.want)
			}
		}
		for _, a := range tc.out {
			wantBanned(t, l, netip.MustParseAddr(a), false)
		}
	}
	if got := len(l.Active()); got != len(tests) {
		t.Errorf("len(Active()) = %d, want %d", got, len(tests))
	}
	// The most specific ban in force answers; an expired one falls
	// through to a wider one.
	if _, err := l.Add(ctx, netip.MustParsePrefix("198.51.100.0/28"), time.Minute, "narrow", "bob"); err != nil {
		t.Fatal(err)
	}
	if b := wantBanned(t, l, netip.MustParseAddr("198.51.100.1"), true); b.Prefix != "198.51.100.0/28" {
		t.Errorf("Banned(198.51.100.1) by %s, want by the /28", b.Prefix)
	}
	c.Add(time.Minute)
	if b := wantBanned(t, l, netip.MustParseAddr("198.51.100.1"), true); b.Prefix != "198.51.100.0/24" {
		t.Errorf("Banned(198.51.100.1) after the /28 expired by %s, want by the /24", b.Prefix)
	}
	wantBanned(t, l, netip.Addr{}, false)
}

func TestIPv4Mapped(t *testing.T) {
	t.Parallel()
	l, _, _ := newList(t, nil)
	b, banned := l.Strike(mapped, Flood, "")
	if !banned || b.Prefix != "203.0.113.7/32" {
		t.Fatalf("Strike(%s) = %+v, %v; want a ban of 203.0.113.7/32", mapped, b, banned)
	}
	wantBanned(t, l, addr, true)
	wantBanned(t, l, mapped, true)
	// Strikes of the two forms count together.
	for range 4 {
		l.Strike(netip.MustParseAddr("::ffff:203.0.113.8"), WAF, "")
	}
	if _, banned := l.Strike(other, WAF, ""); !banned {
		t.Errorf("fifth WAF strike, four of them IPv4-mapped = no ban, want one")
	}
	b6, _ := l.BanFor(addr6, Rate("api"), "", time.Minute)
	if b6.Prefix != "2001:db8::7/128" {
		t.Errorf("BanFor(%s).Prefix = %s, want 2001:db8::7/128", addr6, b6.Prefix)
	}
}

func TestAddAndRemove(t *testing.T) {
	t.Parallel()
	l, c, r := newList(t, nil)
	ctx := t.Context()
	p := netip.MustParsePrefix("203.0.113.7/32")
	auto, _ := l.Strike(addr, Flood, "")
	// A manual ban replaces the automatic one in force, keeping its count.
	b, err := l.Add(ctx, p, 0, "for good", "ana")
	want := Ban{Prefix: p.String(), Reason: "for good", Trigger: "manual", By: "ana", Created: t0, Offences: auto.Offences}
	if err != nil || b != want {
		t.Fatalf("Add(%s) over an automatic ban = %+v, %v; want %+v", p, b, err, want)
	}
	c.Add(365 * 24 * time.Hour)
	wantBanned(t, l, addr, true)
	if got := l.Active(); len(got) != 1 || got[0] != want {
		t.Errorf("Active() = %+v, want [%+v]", got, want)
	}

	lifted, err := l.Remove(ctx, p, "bob")
	if err != nil || lifted.Lifted != c.Now() {
		t.Fatalf("Remove(%s) = %+v, %v; want the ban lifted now", p, lifted, err)
	}
	wantBanned(t, l, addr, false)
	if got := l.Active(); len(got) != 0 {
		t.Errorf("Active() after Remove = %+v, want none", got)
	}
	_, err = l.Remove(ctx, p, "bob")
	if !errkind.Is(err, errkind.NotFound) || !strings.Contains(err.Error(), "no active ban of 203.0.113.7/32") {
		t.Errorf("Remove(%s) again = %v, want NotFound", p, err)
	}
	if bans, lifts := r.counts(); bans != 2 || lifts != 1 {
		t.Errorf("OnBan, OnLift called %d, %d times; want 2, 1", bans, lifts)
	}
	// The lifted record still counts: the next flood is a second offence.
	if b, _ := l.Strike(addr, Flood, ""); b.Offences != 2 {
		t.Errorf("flood after Remove = offence %d, want 2", b.Offences)
	}

	// An expired ban is not active: Remove finds nothing.
	l.Add(ctx, netip.MustParsePrefix("192.0.2.0/24"), time.Minute, "", "ana")
	c.Add(time.Minute)
	if _, err := l.Remove(ctx, netip.MustParsePrefix("192.0.2.0/24"), "ana"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Remove of an expired ban = %v, want NotFound", err)
	}

	tests := []struct {
		name   string
		prefix netip.Prefix
		d      time.Duration
		by     string
		msg    string
	}{
		{"invalid prefix", netip.Prefix{}, time.Hour, "ana", "not a valid prefix"},
		{"mapped wider than /96", netip.MustParsePrefix("::ffff:0.0.0.0/95"), time.Hour, "ana", "wider than /96"},
		{"negative duration", p, -time.Second, "ana", "negative"},
		{"no admin", p, time.Hour, "", "no administrator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Add(ctx, tc.prefix, tc.d, "", tc.by)
			if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Add(%s) = %v, want Invalid mentioning %q", tc.name, err, tc.msg)
			}
		})
	}
	if _, err := l.Remove(ctx, netip.Prefix{}, "ana"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Remove(invalid prefix) = %v, want Invalid", err)
	}
}
