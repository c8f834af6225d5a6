package ratelimit

import (
	"hash/maphash"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// buckets is the number of sub-buckets a window is divided into.
const buckets = 60

// window is one key's sliding window: a ring of per-bucket counters whose
// newest bucket is number head (time divided by the rule's bucket width).
// It holds no pointers, so a slice of windows is not scanned by the GC.
// The bookkeeping comes first, so that it shares a cache line with the
// oldest buckets; a window is 256 bytes.
type window struct {
	head   int64  // number of the newest bucket
	total  uint32 // the sum of counts
	over   bool   // the key went over the limit and has not fallen back below it since
	ref    bool   // seen since the clock hand last passed it
	counts [buckets]uint32
}

// slot returns the ring index of bucket number b.
func slot(b int64) int {
	i := int(b % buckets)
	if i < 0 {
		i += buckets
	}
	return i
}

// advance moves the window forward to bucket number b, forgetting the
// buckets that fell out of it. A b before head (a caller's clock a little
// behind another's) leaves the window as it is.
func (w *window) advance(b int64) {
	d := b - w.head
	if d <= 0 {
		return
	}
	if d >= buckets {
		w.counts = [buckets]uint32{}
		w.total = 0
	} else {
		for x := w.head + 1; x <= b; x++ {
			i := slot(x)
			w.total -= w.counts[i]
			w.counts[i] = 0
		}
	}
	w.head = b
}

// add counts one request at bucket number b against limit. It returns the
// count in the window including this request, whether that is over the
// limit, and whether this request is the one that took the key over (the key
// was not over, or had fallen back below the limit, before it).
func (w *window) add(b int64, limit uint32) (count uint32, over, first bool) {
	w.advance(b)
	if w.over && w.total < limit {
		w.over = false
	}
	if w.total < math.MaxUint32 {
		w.counts[slot(w.head)]++
		w.total++
	}
	if w.total <= limit {
		return w.total, false, false
	}
	first = !w.over
	w.over = true
	return w.total, true, first
}

// table holds one rule's keys in shards chosen by a seeded hash of the key,
// so that an attacker cannot aim its keys at the shard of another client's.
type table[K comparable] struct {
	seed   maphash.Seed // for string keys
	mix    [2]uint64    // random keys of hashAddr, for address keys
	mask   uint64
	shards []shard[K]
}

// newTable returns a table holding at most maxKeys keys: enough shards (a
// power of two, at most 64) that each holds at least 256 keys, or one shard
// when maxKeys is small, so that small limits are exact.
func newTable[K comparable](maxKeys int) *table[K] {
	n := 64
	for n > 1 && maxKeys/n < 256 {
		n /= 2
	}
	t := &table[K]{seed: maphash.MakeSeed(), mix: [2]uint64{rand.Uint64(), rand.Uint64()}, mask: uint64(n - 1), shards: make([]shard[K], n)}
	for i := range t.shards {
		t.shards[i].max = maxKeys / n
	}
	return t
}

func (t *table[K]) shard(h uint64) *shard[K] { return &t.shards[h&t.mask] }

// len returns the number of keys held.
func (t *table[K]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

// sweep drops the keys whose windows are empty at bucket number b and
// returns how many it dropped.
func (t *table[K]) sweep(b int64) int {
	n := 0
	for i := range t.shards {
		n += t.shards[i].sweep(b)
	}
	return n
}

// shard is one lock's worth of keys. keys[i] owns wins[i]; idx maps a key to
// its index. The padding keeps two shards' locks off one cache line.
type shard[K comparable] struct {
	mu   sync.Mutex
	idx  map[K]int32
	keys []K
	wins []window
	hand int // the CLOCK hand: the next index to consider for eviction
	max  int // capacity
	_    [64]byte
}

// find returns k's window, marking it seen. The caller holds s.mu.
func (s *shard[K]) find(k K) (*window, bool) {
	i, ok := s.idx[k]
	if !ok {
		return nil, false
	}
	w := &s.wins[i]
	w.ref = true
	return w, true
}

// add stores k, which is not in s, with an empty window at bucket number b,
// evicting a key when s is full. The caller holds s.mu.
func (s *shard[K]) add(k K, b int64) *window {
	if s.idx == nil {
		s.idx = make(map[K]int32)
	}
	var i int
	if len(s.keys) < s.max {
		if len(s.keys) == cap(s.keys) { // grow by doubling, but never past max
			n := min(max(2*len(s.keys), 8), s.max) - len(s.keys)
			s.keys, s.wins = slices.Grow(s.keys, n), slices.Grow(s.wins, n)
		}
		i = len(s.keys)
		s.keys = append(s.keys, k)
		s.wins = append(s.wins, window{})
	} else {
		i = s.victim()
		delete(s.idx, s.keys[i])
		s.keys[i] = k
	}
	s.idx[k] = int32(i)
	w := &s.wins[i]
	*w = window{head: b}
	return w
}

// victim runs the CLOCK hand to a key not seen since the hand last passed
// it, clearing the marks it passes; it stops within two turns. A new key is
// unmarked but sits just behind the hand, so it has a full turn to be seen.
func (s *shard[K]) victim() int {
	for {
		if s.hand >= len(s.keys) {
			s.hand = 0
		}
		i := s.hand
		s.hand++
		if !s.wins[i].ref {
			return i
		}
		s.wins[i].ref = false
	}
}

// remove drops the key at index i by moving the last key into its place.
// The caller holds s.mu.
func (s *shard[K]) remove(i int) {
	last := len(s.keys) - 1
	delete(s.idx, s.keys[i])
	if i != last {
		s.keys[i], s.wins[i] = s.keys[last], s.wins[last]
		s.idx[s.keys[i]] = int32(i)
	}
	var zero K
	s.keys[last] = zero // release a string key's memory
	s.keys, s.wins = s.keys[:last], s.wins[:last]
}

// sweep drops the keys whose windows are empty at bucket number b. It
// releases the lock every 128 keys so requests are not held up for long;
// walking from the end keeps the indices left to visit valid across
// removals, and keys added meanwhile are appended behind the walk.
func (s *shard[K]) sweep(b int64) int {
	const batch = 128
	dropped := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := len(s.keys)-1, 0; i >= 0; i-- {
		if n++; n == batch {
			s.mu.Unlock()
			s.mu.Lock()
			n = 0
			if i = min(i, len(s.keys)-1); i < 0 {
				break
			}
		}
		w := &s.wins[i]
		w.advance(b)
		if w.total == 0 {
			s.remove(i)
			dropped++
		}
	}
	return dropped
}
