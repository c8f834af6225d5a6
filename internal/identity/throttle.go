package identity

import (
	"sync"
	"time"
)

// throttle is a token bucket per client address: perMinute attempts a
// minute with a burst of as many. It forgets addresses whose bucket is
// full again, so it holds at most the addresses active in the last minute.
type throttle struct {
	mu        sync.Mutex
	perMinute float64
	buckets   map[string]*bucket
	swept     time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func (t *throttle) init(perMinute int) {
	t.perMinute = float64(perMinute)
	t.buckets = map[string]*bucket{}
}

// allow takes one token of addr's bucket; when there is none it returns
// how long until there is.
func (t *throttle) allow(addr string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.swept) > time.Minute {
		for a, b := range t.buckets {
			if t.fill(b, now) >= t.perMinute {
				delete(t.buckets, a)
			}
		}
		t.swept = now
	}
	b, ok := t.buckets[addr]
	if !ok {
		b = &bucket{tokens: t.perMinute, last: now}
		t.buckets[addr] = b
	}
	if t.fill(b, now) < 1 {
		wait := time.Duration((1 - b.tokens) / t.perMinute * float64(time.Minute))
		return false, wait
	}
	b.tokens--
	return true, 0
}

func (t *throttle) fill(b *bucket, now time.Time) float64 {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(t.perMinute, b.tokens+d.Minutes()*t.perMinute)
		b.last = now
	}
	return b.tokens
}
