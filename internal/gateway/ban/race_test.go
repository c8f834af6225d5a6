package ban

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestConcurrent runs every method at once, for the race detector, and
// checks that concurrent strikes of one address ban it exactly once.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	l, c, r := newList(t, func(cfg *Config) { cfg.Store = storeBans{db} })
	ctx := t.Context()
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 50 {
				a := netip.AddrFrom4([4]byte{198, 51, byte(w), byte(i)})
				l.Strike(a, WAF, "")
				l.Strike(addr, WAF, "") // 400 strikes of one address: one ban
				l.Banned(a)
				l.Banned(addr)
				if i%10 == 0 {
					l.BanFor(a, Rate("api"), "", time.Minute)
					p := netip.PrefixFrom(a, 24).Masked()
					l.Add(ctx, p, time.Minute, "", "ana")
					l.Remove(ctx, p, "ana")
					l.Active()
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			c.Add(time.Second)
			l.sweep(ctx)
		}
	})
	wg.Wait()
	r.mu.Lock()
	n := 0
	for _, b := range r.bans {
		if b.Prefix == "203.0.113.7/32" {
			n++
		}
	}
	r.mu.Unlock()
	if n != 1 {
		t.Errorf("bans of 203.0.113.7 from concurrent strikes = %d, want 1", n)
	}
	// The store holds what the memory holds.
	stored, err := db.ListBans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(stored) != len(l.records) {
		t.Errorf("stored bans = %d, in memory %d; want the same", len(stored), len(l.records))
	}
	for _, s := range stored {
		if m := l.records[netip.MustParsePrefix(s.Prefix)]; Ban(s) != m {
			t.Errorf("stored %+v, in memory %+v; want the same", s, m)
		}
	}
}
