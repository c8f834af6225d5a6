package events

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/nats-io/nats.go/jetstream"
)

// seen is an in-memory Bloom filter of the keys in an app's idempotency
// bucket, so that a delivery looks its key up in the bucket only when the
// filter says the key may be there: nearly never for a new event. It
// learns the keys by watching the bucket (the keys already there at
// start, then every new one, whichever server wrote it); until the watch
// has caught up, every key may be there. Two filters rotate every TTL, so
// that expired keys age out (at worst a key is kept two TTLs: a lookup
// that finds nothing).
type seen struct {
	ttl   time.Duration
	ready atomic.Bool
	stop  context.CancelFunc

	mu        sync.Mutex
	cur, prev *bloom.BloomFilter
	rotate    time.Time // when cur becomes prev
}

// seenCapacity and seenFalsePositives size each filter: past the
// capacity in one TTL, lookups grow, never misses.
const (
	seenCapacity       = 1 << 20
	seenFalsePositives = 0.001
)

// newSeen starts filling the filter from kv. With follow, it keeps
// watching for keys other servers write (a shared NATS cluster);
// otherwise it stops once it has the keys there at start, and this
// server's own keys are added as it writes them.
func newSeen(kv jetstream.KeyValue, ttl time.Duration, now time.Time, follow bool) *seen {
	ctx, cancel := context.WithCancel(context.Background())
	s := &seen{ttl: ttl, stop: cancel, cur: bloom.NewWithEstimates(seenCapacity, seenFalsePositives), rotate: now.Add(ttl)}
	go s.watch(ctx, kv, follow)
	return s
}

// watch feeds the filter from the bucket until ctx ends (or, without
// follow, until it has the keys there at start), starting again if the
// watch breaks (then the filter is not trusted until caught up).
func (s *seen) watch(ctx context.Context, kv jetstream.KeyValue, follow bool) {
	for ctx.Err() == nil {
		w, err := kv.WatchAll(ctx, jetstream.MetaOnly(), jetstream.IgnoreDeletes())
		if err == nil {
			for e := range w.Updates() {
				if e == nil {
					s.ready.Store(true) // the keys there at start are in
					if !follow {
						_ = w.Stop()
						return
					}
					continue
				}
				s.add(e.Key(), time.Now())
			}
			_ = w.Stop()
		}
		s.ready.Store(false)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *seen) add(key string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.After(s.rotate) {
		s.prev, s.cur = s.cur, bloom.NewWithEstimates(seenCapacity, seenFalsePositives)
		s.rotate = now.Add(s.ttl)
	}
	s.cur.AddString(key)
}

// mayHave is false only when the key is certainly not in the bucket.
func (s *seen) mayHave(key string) bool {
	if !s.ready.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.TestString(key) || s.prev != nil && s.prev.TestString(key)
}
