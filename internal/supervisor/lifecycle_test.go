package supervisor

import (
	"math"
	"testing"
	"time"

	"noops/internal/runtime"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	const (
		lo = time.Second
		hi = 5 * time.Minute
	)
	tests := []struct {
		name     string
		failures int
		lo, hi   time.Duration
		want     time.Duration
	}{
		{"first failure waits min", 1, lo, hi, 1 * time.Second},
		{"second doubles", 2, lo, hi, 2 * time.Second},
		{"third", 3, lo, hi, 4 * time.Second},
		{"fourth", 4, lo, hi, 8 * time.Second},
		{"fifth", 5, lo, hi, 16 * time.Second},
		{"sixth", 6, lo, hi, 32 * time.Second},
		{"seventh", 7, lo, hi, 64 * time.Second},
		{"eighth", 8, lo, hi, 128 * time.Second},
		{"ninth", 9, lo, hi, 256 * time.Second},
		{"tenth is capped", 10, lo, hi, hi},
		{"far past the cap", 100, lo, hi, hi},
		{"no shift overflow at 64", 64, lo, hi, hi},
		{"no overflow at 65", 65, lo, hi, hi},
		{"no overflow at a huge count", math.MaxInt, lo, hi, hi},
		{"huge min and max", 70, time.Duration(math.MaxInt64 / 3), time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)},
		{"huge max below overflow", 2, time.Duration(math.MaxInt64 / 3), time.Duration(math.MaxInt64), 2 * time.Duration(math.MaxInt64/3)},
		{"cap exactly reached", 3, time.Second, 4 * time.Second, 4 * time.Second},
		{"small test tuning", 3, 10 * time.Millisecond, 100 * time.Millisecond, 40 * time.Millisecond},
		{"small test tuning capped", 5, 10 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond},
		{"min above max gives max", 1, time.Minute, time.Second, time.Second},
		{"zero min gives max", 3, 0, hi, hi},
		{"zero failures treated as first", 0, lo, hi, lo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := backoff(tc.failures, tc.lo, tc.hi)
			if got != tc.want {
				t.Errorf("backoff(%d, %v, %v) = %v, want %v", tc.failures, tc.lo, tc.hi, got, tc.want)
			}
		})
	}
}

// TestBackoffNeverShrinks checks the schedule over many failures: it only
// grows, stays within [min, max] and never goes non-positive.
func TestBackoffNeverShrinks(t *testing.T) {
	t.Parallel()
	for _, bounds := range [][2]time.Duration{
		{time.Second, 5 * time.Minute},
		{time.Nanosecond, time.Hour},
		{3 * time.Millisecond, 7 * time.Millisecond},
		{time.Duration(math.MaxInt64 / 2), time.Duration(math.MaxInt64)},
	} {
		lo, hi := bounds[0], bounds[1]
		prev := time.Duration(0)
		for f := 1; f <= 200; f++ {
			got := backoff(f, lo, hi)
			if got < lo || got > hi || got < prev {
				t.Fatalf("backoff(%d, %v, %v) = %v, want within [%v, %v] and >= %v", f, lo, hi, got, lo, hi, prev)
			}
			prev = got
		}
		if prev != hi {
			t.Errorf("backoff(200, %v, %v) = %v, want the cap %v", lo, hi, prev, hi)
		}
	}
}

func TestExitText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		exit runtime.Exit
		want string
	}{
		{"clean exit", runtime.Exit{Code: 0}, "exit 0"},
		{"exit code", runtime.Exit{Code: 2}, "exit 2"},
		{"signal wins over code", runtime.Exit{Code: 143, Signal: "SIGTERM"}, "SIGTERM"},
		{"oom kill", runtime.Exit{Code: 137, Signal: "SIGKILL", OOMKilled: true}, "SIGKILL (out of memory)"},
		{"oom without signal", runtime.Exit{Code: 137, OOMKilled: true}, "exit 137 (out of memory)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ExitText(tc.exit); got != tc.want {
				t.Errorf("ExitText(%+v) = %q, want %q", tc.exit, got, tc.want)
			}
		})
	}
}
