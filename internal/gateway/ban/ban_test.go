package ban

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// t0 is where the fake clocks start.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is a fake time that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder keeps what OnBan and OnLift were told.
type recorder struct {
	mu          sync.Mutex
	bans, lifts []Ban
}

func (r *recorder) onBan(b Ban) {
	r.mu.Lock()
	r.bans = append(r.bans, b)
	r.mu.Unlock()
}

func (r *recorder) onLift(b Ban) {
	r.mu.Lock()
	r.lifts = append(r.lifts, b)
	r.mu.Unlock()
}

func (r *recorder) counts() (bans, lifts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bans), len(r.lifts)
}

// newList returns a list on a fake clock at t0 that records its
// callbacks; edit, when set, changes the config first.
func newList(t *testing.T, edit func(*Config)) (*List, *clock, *recorder) {
	t.Helper()
	c, r := &clock{t: t0}, &recorder{}
	cfg := Config{Now: c.Now, OnBan: r.onBan, OnLift: r.onLift}
	if edit != nil {
		edit(&cfg)
	}
	return New(cfg), c, r
}

var (
	addr   = netip.MustParseAddr("203.0.113.7")
	other  = netip.MustParseAddr("203.0.113.8")
	addr6  = netip.MustParseAddr("2001:db8::7")
	mapped = netip.MustParseAddr("::ffff:203.0.113.7")
)

// wantBanned checks Banned(a).
func wantBanned(t *testing.T, l *List, a netip.Addr, want bool) Ban {
	t.Helper()
	b, got := l.Banned(a)
	if got != want {
		t.Errorf("Banned(%s) = %+v, %v; want %v", a, b, got, want)
	}
	return b
}

func TestStrikeThresholds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		trigger Trigger
		count   int
		ban     time.Duration
	}{
		{WAF, 5, 10 * time.Minute},
		{Login, 10, 15 * time.Minute},
		{Garbage, 10, 10 * time.Minute},
		{Slow, 10, 5 * time.Minute},
		{Flood, 1, time.Minute},
	}
	for _, tc := range tests {
		t.Run(string(tc.trigger), func(t *testing.T) {
			l, _, r := newList(t, nil)
			for i := 1; i < tc.count; i++ {
				if b, banned := l.Strike(addr, tc.trigger, "x"); banned {
					t.Fatalf("Strike #%d of %d = %+v, want no ban yet", i, tc.count, b)
				}
			}
			wantBanned(t, l, addr, false)
			b, banned := l.Strike(addr, tc.trigger, "rule 942100")
			if !banned {
				t.Fatalf("Strike #%d = no ban, want a ban", tc.count)
			}
			want := Ban{Prefix: "203.0.113.7/32", Reason: reason(tc.trigger, DefaultRules()[tc.trigger], "rule 942100"),
				Trigger: string(tc.trigger), By: "auto", Created: t0, Until: t0.Add(tc.ban), Offences: 1}
			if b != want {
				t.Errorf("Strike #%d = %+v, want %+v", tc.count, b, want)
			}
			if got := wantBanned(t, l, addr, true); got != want {
				t.Errorf("Banned(%s) = %+v, want %+v", addr, got, want)
			}
			wantBanned(t, l, other, false)
			if b, banned := l.Strike(addr, tc.trigger, "x"); banned || b != want {
				t.Errorf("Strike of a banned client = %+v, %v; want the ban in force, false", b, banned)
			}
			if n, _ := r.counts(); n != 1 {
				t.Errorf("OnBan called %d times, want 1", n)
			}
		})
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		t      Trigger
		r      Rule
		detail string
		want   string
	}{
		{"strikes", WAF, DefaultRules()[WAF], "rule 942100", "waf: 5 strikes in 5m, the last: rule 942100"},
		{"strikes without detail", Slow, Rule{Count: 3, Window: 90 * time.Second}, "", "slow: 3 strikes in 1m30s"},
		{"one strike", Flood, DefaultRules()[Flood], "3000 requests in 10s", "flood: 3000 requests in 10s"},
		{"hours", Login, Rule{Count: 2, Window: time.Hour}, "ana", "login: 2 strikes in 1h, the last: ana"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := reason(tc.t, tc.r, tc.detail); got != tc.want {
				t.Errorf("reason(%s, %+v, %q) = %q, want %q", tc.t, tc.r, tc.detail, got, tc.want)
			}
		})
	}
}

func TestStrikeWindow(t *testing.T) {
	t.Parallel()
	l, c, _ := newList(t, nil)
	// Four strikes a minute apart, then the fifth 5 minutes after the
	// first: the first is out of the window, so no ban.
	for i := range 4 {
		l.Strike(addr, WAF, fmt.Sprint(i))
		c.Add(time.Minute)
	}
	c.Add(time.Minute)
	if b, banned := l.Strike(addr, WAF, "4"); banned {
		t.Fatalf("fifth strike with the first out of the window = %+v, want no ban", b)
	}
	// The sixth, still within 5 minutes of the second: five in the window.
	if _, banned := l.Strike(addr, WAF, "5"); !banned {
		t.Fatalf("fifth strike within the window = no ban, want a ban")
	}

	// Strikes of other triggers and addresses count apart.
	for range 4 {
		l.Strike(other, WAF, "")
		l.Strike(other, Login, "")
	}
	wantBanned(t, l, other, false)

	// The janitor forgets strikes out of their window.
	l.sweep(t.Context())
	if n := l.strikes.len(); n != 1 {
		t.Errorf("addresses with strikes = %d, want 1", n)
	}
	c.Add(5 * time.Minute)
	l.sweep(t.Context())
	if n := l.strikes.len(); n != 1 { // logins count for 10 minutes
		t.Errorf("addresses with strikes after 5m = %d, want 1", n)
	}
	c.Add(5 * time.Minute)
	l.sweep(t.Context())
	if n := l.strikes.len(); n != 0 {
		t.Errorf("addresses with strikes after 10m = %d, want 0", n)
	}
}

func TestStrikeTableBounded(t *testing.T) {
	t.Parallel()
	l, _, _ := newList(t, func(cfg *Config) { cfg.Rules = map[Trigger]Rule{WAF: {Count: 2, Window: time.Hour, Ban: time.Minute}} })
	l.maxAddrs = 3
	first := netip.MustParseAddr("198.51.100.1")
	l.Strike(first, WAF, "")
	for i := 2; i <= 4; i++ {
		l.Strike(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), WAF, "")
	}
	if n := l.strikes.len(); n != 3 {
		t.Errorf("addresses with strikes = %d, want the bound 3", n)
	}
	// The first address's strike was dropped: its second strike is its first.
	if _, banned := l.Strike(first, WAF, ""); banned {
		t.Errorf("second strike of a dropped address = a ban, want none")
	}
	if _, banned := l.Strike(netip.AddrFrom4([4]byte{198, 51, 100, 4}), WAF, ""); !banned {
		t.Errorf("second strike of a kept address = no ban, want one")
	}
}

func TestEscalate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base     time.Duration
		offences int
		limit    time.Duration
		want     time.Duration
	}{
		{time.Minute, 0, time.Hour, time.Minute},
		{time.Minute, 1, time.Hour, time.Minute},
		{time.Minute, 2, time.Hour, 2 * time.Minute},
		{time.Minute, 5, time.Hour, 16 * time.Minute},
		{time.Minute, 7, time.Hour, time.Hour},
		{time.Minute, 1000, time.Hour, time.Hour},
		{2 * time.Hour, 1, time.Hour, time.Hour},
		{time.Minute, 1000, 1 << 62, 1 << 62},
	}
	for _, tc := range tests {
		if got := escalate(tc.base, tc.offences, tc.limit); got != tc.want {
			t.Errorf("escalate(%v, %d, %v) = %v, want %v", tc.base, tc.offences, tc.limit, got, tc.want)
		}
	}
}

func TestRecidive(t *testing.T) {
	t.Parallel()
	l, c, r := newList(t, func(cfg *Config) {
		cfg.MaxBan = 5 * time.Minute
		cfg.Recidive = time.Hour
	})
	// Flood bans for 1m, then 2m, 4m, capped at 5m: each ban expires,
	// the janitor lifts it and the client floods again a minute later.
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		b, banned := l.Strike(addr, Flood, "")
		if !banned || b.Offences != i+1 || b.Until.Sub(b.Created) != want {
			t.Fatalf("flood #%d = %+v, %v; want offence %d banned for %v", i+1, b, banned, i+1, want)
		}
		c.Add(want)
		wantBanned(t, l, addr, false)
		l.sweep(t.Context())
		c.Add(time.Minute)
	}
	if bans, lifts := r.counts(); bans != 5 || lifts != 5 {
		t.Errorf("OnBan, OnLift called %d, %d times; want 5, 5", bans, lifts)
	}

	// A flood after the recidive window starts over.
	c.Add(time.Hour)
	b, _ := l.Strike(addr, Flood, "")
	if b.Offences != 1 || b.Until.Sub(b.Created) != time.Minute {
		t.Errorf("flood after the recidive window = %+v, want offence 1 for 1m", b)
	}
	// So does one after the janitor forgot the lifted record.
	c.Add(time.Minute)
	l.sweep(t.Context())
	c.Add(time.Hour)
	l.sweep(t.Context())
	if n := len(l.records); n != 0 {
		t.Errorf("records after the recidive window = %d, want 0", n)
	}
	b, _ = l.Strike(addr, Flood, "")
	if b.Offences != 1 {
		t.Errorf("flood after the record was forgotten = offence %d, want 1", b.Offences)
	}
}

func TestBanForReplacesExpired(t *testing.T) {
	t.Parallel()
	l, c, r := newList(t, nil)
	b, banned := l.BanFor(addr, Rate("api"), "100 requests in 1s", 30*time.Second)
	if !banned || b.Trigger != "rate:api" || b.Reason != "100 requests in 1s" || b.Until != t0.Add(30*time.Second) {
		t.Fatalf("BanFor = %+v, %v; want a 30s rate:api ban", b, banned)
	}
	if b2, banned := l.BanFor(addr, Rate("api"), "again", time.Minute); banned || b2 != b {
		t.Errorf("BanFor of a banned client = %+v, %v; want the ban in force, false", b2, banned)
	}
	// Expired, not lifted yet: a new ban lifts the old one (once) and
	// escalates.
	c.Add(time.Minute)
	b, banned = l.BanFor(addr, Rate("api"), "again", 30*time.Second)
	if !banned || b.Offences != 2 || b.Until != t0.Add(2*time.Minute) {
		t.Errorf("BanFor after expiry = %+v, %v; want offence 2 for 1m", b, banned)
	}
	l.sweep(t.Context())
	if bans, lifts := r.counts(); bans != 2 || lifts != 1 {
		t.Errorf("OnBan, OnLift called %d, %d times; want 2, 1", bans, lifts)
	}
	for _, base := range []time.Duration{0, -time.Second} {
		if _, banned := l.BanFor(other, Rate("api"), "", base); banned {
			t.Errorf("BanFor(base %v) = a ban, want none", base)
		}
	}
	if _, banned := l.BanFor(netip.Addr{}, Flood, "", time.Minute); banned {
		t.Errorf("BanFor(invalid address) = a ban, want none")
	}
}

func TestRulesConfig(t *testing.T) {
	t.Parallel()
	l, _, _ := newList(t, func(cfg *Config) {
		cfg.Rules = map[Trigger]Rule{WAF: {Count: 2, Window: time.Minute, Ban: time.Hour}, Login: {}, Rate("api"): {Count: 1, Ban: time.Second}}
	})
	if _, banned := l.Strike(addr, WAF, ""); banned {
		t.Errorf("first WAF strike with Count 2 = a ban")
	}
	if b, _ := l.Strike(addr, WAF, ""); b.Until != t0.Add(time.Hour) {
		t.Errorf("second WAF strike = %+v, want a 1h ban", b)
	}
	for range 20 {
		if _, banned := l.Strike(other, Login, ""); banned {
			t.Fatalf("Strike(Login) with the rule off = a ban")
		}
	}
	if _, banned := l.Strike(other, Rate("unknown"), ""); banned {
		t.Errorf("Strike of a trigger without a rule = a ban")
	}
	if _, banned := l.Strike(other, Rate("api"), ""); !banned {
		t.Errorf("Strike of a configured rate trigger = no ban")
	}
	if _, banned := l.Strike(addr6, Garbage, ""); banned { // the default is kept
		t.Errorf("one Garbage strike = a ban")
	}
}

func TestExpiryAndJanitor(t *testing.T) {
	t.Parallel()
	l, c, r := newList(t, nil)
	l.every = time.Millisecond
	b, _ := l.Strike(addr, Flood, "")
	c.Add(time.Minute - 1)
	wantBanned(t, l, addr, true)
	c.Add(1)
	wantBanned(t, l, addr, false) // before the janitor ran
	if got := l.Active(); len(got) != 0 {
		t.Errorf("Active() after expiry = %+v, want none", got)
	}

	done := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { l.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for _, lifts := r.counts(); lifts == 0 && time.Now().Before(deadline); _, lifts = r.counts() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // more rounds, which must not lift it again
	cancel()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	want := b
	want.Lifted = b.Until
	if !slices.Equal(r.lifts, []Ban{want}) {
		t.Errorf("OnLift calls = %+v, want one with %+v", r.lifts, want)
	}
}
