package identity

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string
	}{
		{"192.0.2.10", "192.0.2.0/24"},
		{"192.0.2.255", "192.0.2.0/24"},
		{"::ffff:192.0.2.10", "192.0.2.0/24"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"", ""},
		{"not an address", ""},
		{"192.0.2.10:443", ""},
	}
	for _, tc := range tests {
		if got := network(tc.addr); got != tc.want {
			t.Errorf("network(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// at is a time in January 2030, on day d at hour h (and 30 minutes) UTC.
func at(d, h int) time.Time { return time.Date(2030, 1, d, h, 30, 0, 0, time.UTC) }

// signIn is a successful sign-in that habits learn from.
type signIn struct {
	addr string
	t    time.Time
}

// learnAll learns the sign-ins, in order.
func learnAll(signIns ...signIn) json.RawMessage {
	var raw json.RawMessage
	for _, s := range signIns {
		raw = learn(raw, s.addr, s.t)
	}
	return raw
}

// daily is n sign-ins from addr on days 1, 2, … at hour h.
func daily(addr string, h, n int) []signIn {
	var out []signIn
	for d := 1; d <= n; d++ {
		out = append(out, signIn{addr, at(d, h)})
	}
	return out
}

func TestPlaceOf(t *testing.T) {
	t.Parallel()
	const home, office = "192.0.2.10", "198.51.100.10"
	tests := []struct {
		name   string
		habits json.RawMessage
		addr   string
		t      time.Time
		want   Place
	}{
		{"nothing learned", nil, home, at(9, 9), Place{}},
		{"unreadable habits", json.RawMessage(`{"networks": 7}`), home, at(9, 9), Place{}},
		{"unreadable address", learnAll(signIn{home, at(1, 9)}), "somewhere", at(9, 9), Place{}},
		{"same address a day later", learnAll(signIn{home, at(1, 9)}), home, at(2, 9), Place{KnownNetwork: true}},
		{"same address less than a day later", learnAll(signIn{home, at(1, 9)}), home, at(2, 9).Add(-time.Second), Place{}},
		{"same address seen again since", learnAll(signIn{home, at(1, 9)}, signIn{home, at(3, 9)}), home, at(3, 10), Place{KnownNetwork: true}},
		{"same /24", learnAll(signIn{home, at(1, 9)}), "192.0.2.200", at(2, 9), Place{KnownNetwork: true}},
		{"another /24", learnAll(signIn{home, at(1, 9)}), "192.0.3.10", at(2, 9), Place{NewLocation: true}},
		{"another /24 while the known one is young", learnAll(signIn{home, at(1, 9)}), "192.0.3.10", at(1, 10), Place{}},
		{"a young network beside an old one", learnAll(signIn{home, at(1, 9)}, signIn{office, at(5, 9)}), office, at(5, 10), Place{}},
		{"an old network beside a young one", learnAll(signIn{home, at(1, 9)}, signIn{office, at(5, 9)}), home, at(5, 10), Place{KnownNetwork: true}},
		{"a third network", learnAll(signIn{home, at(1, 9)}, signIn{office, at(5, 9)}), "203.0.113.1", at(5, 10), Place{NewLocation: true}},
		{"same IPv6 /64", learnAll(signIn{"2001:db8::1", at(1, 9)}), "2001:db8::ffff:1", at(2, 9), Place{KnownNetwork: true}},
		{"another IPv6 /64", learnAll(signIn{"2001:db8::1", at(1, 9)}), "2001:db8:0:1::1", at(2, 9), Place{NewLocation: true}},
		{"four sign-ins say nothing of hours", learnAll(daily(home, 9, 4)...), home, at(9, 9), Place{KnownNetwork: true}},
		{"five sign-ins make the hour usual", learnAll(daily(home, 9, 5)...), home, at(9, 9), Place{KnownNetwork: true, UsualHours: true}},
		{"the next hour is usual", learnAll(daily(home, 9, 5)...), home, at(9, 10), Place{KnownNetwork: true, UsualHours: true}},
		{"the previous hour is usual", learnAll(daily(home, 9, 5)...), home, at(9, 8), Place{KnownNetwork: true, UsualHours: true}},
		{"two hours off is not", learnAll(daily(home, 9, 5)...), home, at(9, 11), Place{KnownNetwork: true}},
		{"midnight wraps", learnAll(daily(home, 23, 5)...), home, at(9, 0), Place{KnownNetwork: true, UsualHours: true}},
		{"hours are UTC", learnAll(daily(home, 9, 5)...), home, at(9, 9).In(time.FixedZone("UTC+5", 5*3600)),
			Place{KnownNetwork: true, UsualHours: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := PlaceOf(tc.habits, tc.addr, tc.t); got != tc.want {
				t.Errorf("PlaceOf(%s, %q, %v) = %+v, want %+v", tc.habits, tc.addr, tc.t, got, tc.want)
			}
		})
	}
}

// TestLearnForgetsOldestNetworks checks that at most maxNetworks networks
// are kept and the least recently seen go first.
func TestLearnForgetsOldestNetworks(t *testing.T) {
	t.Parallel()
	var raw json.RawMessage
	t0 := at(1, 0)
	const n = maxNetworks + 5
	for i := range n {
		raw = learn(raw, fmt.Sprintf("10.0.%d.1", i), t0.Add(time.Duration(i)*time.Minute))
	}
	// The first network is seen again: it is now the most recent.
	raw = learn(raw, "10.0.0.1", t0.Add(time.Hour))
	h := readHabits(raw)
	if len(h.Networks) != maxNetworks {
		t.Fatalf("after %d networks, %d are kept, want %d", n, len(h.Networks), maxNetworks)
	}
	// It had been forgotten, so it is learned anew.
	if s, again := h.Networks["10.0.0.0/24"], t0.Add(time.Hour).Unix(); s.First != again || s.Last != again {
		t.Errorf("network 10.0.0.0/24 seen %+v, want first and last %d", s, again)
	}
	for i := range n {
		net := fmt.Sprintf("10.0.%d.0/24", i)
		_, kept := h.Networks[net]
		want := i == 0 || i > n-maxNetworks
		if kept != want {
			t.Errorf("network %s (seen at minute %d) kept = %v, want %v", net, i, kept, want)
		}
	}
	total := 0
	for _, c := range h.Hours {
		total += c
	}
	if total != n+1 {
		t.Errorf("hours count %d sign-ins, want %d", total, n+1)
	}
}
