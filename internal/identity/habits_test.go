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

// at is a time on 2 January 2030 at hour h UTC.
func at(h int) time.Time { return time.Date(2030, 1, 2, h, 30, 0, 0, time.UTC) }

// learnAll learns a sign-in from addr at each of hours, in order.
func learnAll(addr string, hours ...int) json.RawMessage {
	var raw json.RawMessage
	for _, h := range hours {
		raw = learn(raw, addr, at(h))
	}
	return raw
}

func TestPlaceOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		habits json.RawMessage
		addr   string
		t      time.Time
		want   Place
	}{
		{"nothing learned", nil, "192.0.2.10", at(9), Place{}},
		{"unreadable habits", json.RawMessage(`{"networks": 7}`), "192.0.2.10", at(9), Place{}},
		{"same address", learnAll("192.0.2.10", 9), "192.0.2.10", at(9), Place{KnownNetwork: true}},
		{"same /24", learnAll("192.0.2.10", 9), "192.0.2.200", at(9), Place{KnownNetwork: true}},
		{"another /24", learnAll("192.0.2.10", 9), "192.0.3.10", at(9), Place{NewLocation: true}},
		{"same IPv6 /64", learnAll("2001:db8::1", 9), "2001:db8::ffff:1", at(9), Place{KnownNetwork: true}},
		{"another IPv6 /64", learnAll("2001:db8::1", 9), "2001:db8:0:1::1", at(9), Place{NewLocation: true}},
		{"unreadable address", learnAll("192.0.2.10", 9), "somewhere", at(9), Place{}},
		{"four sign-ins say nothing of hours", learnAll("192.0.2.10", 9, 9, 9, 9), "192.0.2.10", at(9),
			Place{KnownNetwork: true}},
		{"five sign-ins make the hour usual", learnAll("192.0.2.10", 9, 9, 9, 9, 9), "192.0.2.10", at(9),
			Place{KnownNetwork: true, UsualHours: true}},
		{"the next hour is usual", learnAll("192.0.2.10", 9, 9, 9, 9, 9), "192.0.2.10", at(10),
			Place{KnownNetwork: true, UsualHours: true}},
		{"the previous hour is usual", learnAll("192.0.2.10", 9, 9, 9, 9, 9), "192.0.2.10", at(8),
			Place{KnownNetwork: true, UsualHours: true}},
		{"two hours off is not", learnAll("192.0.2.10", 9, 9, 9, 9, 9), "192.0.2.10", at(11),
			Place{KnownNetwork: true}},
		{"midnight wraps", learnAll("192.0.2.10", 23, 23, 23, 23, 23), "192.0.2.10", at(0),
			Place{KnownNetwork: true, UsualHours: true}},
		{"hours are UTC", learnAll("192.0.2.10", 9, 9, 9, 9, 9), "192.0.2.10",
			at(9).In(time.FixedZone("UTC+5", 5*3600)), Place{KnownNetwork: true, UsualHours: true}},
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
	t0 := at(0)
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
