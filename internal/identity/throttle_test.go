package identity

import (
	"testing"
	"time"
)

var throttleT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newThrottle(perMinute int) *throttle {
	var t throttle
	t.init(perMinute)
	return &t
}

// step is one call of allow: at this offset from throttleT0, from addr.
type step struct {
	at       time.Duration
	addr     string
	wantOK   bool
	wantWait time.Duration // when refused
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	const a, b = "192.0.2.1", "192.0.2.2"
	tests := []struct {
		name      string
		perMinute int
		steps     []step
	}{
		{
			name: "burst then refused", perMinute: 3,
			steps: []step{
				{0, a, true, 0}, {0, a, true, 0}, {0, a, true, 0},
				{0, a, false, 20 * time.Second},
				{time.Second, a, false, 19 * time.Second},
			},
		},
		{
			name: "refills over time", perMinute: 3,
			steps: []step{
				{0, a, true, 0}, {0, a, true, 0}, {0, a, true, 0},
				{10 * time.Second, a, false, 10 * time.Second},
				{20 * time.Second, a, true, 0},
				{20 * time.Second, a, false, 20 * time.Second},
				{40 * time.Second, a, true, 0},
			},
		},
		{
			name: "a full minute refills the burst", perMinute: 2,
			steps: []step{
				{0, a, true, 0}, {0, a, true, 0}, {0, a, false, 30 * time.Second},
				{time.Hour, a, true, 0}, {time.Hour, a, true, 0}, {time.Hour, a, false, 30 * time.Second},
			},
		},
		{
			name: "addresses have their own buckets", perMinute: 1,
			steps: []step{
				{0, a, true, 0}, {0, a, false, time.Minute},
				{0, b, true, 0}, {0, b, false, time.Minute},
				{0, "", true, 0}, {0, "", false, time.Minute},
			},
		},
		{
			name: "a clock going back gives nothing", perMinute: 1,
			steps: []step{
				{time.Minute, a, true, 0},
				{0, a, false, time.Minute},
				{time.Minute, a, false, time.Minute},
				{2 * time.Minute, a, true, 0},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			th := newThrottle(tc.perMinute)
			for i, s := range tc.steps {
				ok, wait := th.allow(s.addr, throttleT0.Add(s.at))
				if ok != s.wantOK || (ok && wait != 0) || (!ok && (wait-s.wantWait).Abs() > time.Millisecond) {
					t.Errorf("step %d: allow(%q, t0+%v) = %v, %v; want %v, %v", i, s.addr, s.at, ok, wait, s.wantOK, s.wantWait)
				}
			}
		})
	}
}

// TestThrottleForgets checks that addresses whose bucket is full again are
// dropped, so that the throttle holds only the recently active ones.
func TestThrottleForgets(t *testing.T) {
	t.Parallel()
	th := newThrottle(5)
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if ok, _ := th.allow(a, throttleT0); !ok {
			t.Fatalf("allow(%q, t0) = false, want true", a)
		}
	}
	if n := len(th.buckets); n != 3 {
		t.Fatalf("after three addresses, %d buckets, want 3", n)
	}
	th.allow("192.0.2.9", throttleT0.Add(2*time.Minute))
	if n := len(th.buckets); n != 1 {
		t.Errorf("two minutes later, %d buckets, want 1 (the others are full and forgotten)", n)
	}
}
