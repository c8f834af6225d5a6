package policy

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go/types"

	"noops/internal/gateway/trust"
)

// memoMax bounds a memo: past it, values are built but not remembered.
const memoMax = 4096

// memo remembers immutable values that are cheap to rebuild but not free
// (a Cedar Record sorts, hashes and copies its map), so that a request
// seen before costs a lookup. Safe for concurrent use.
type memo[K comparable, V any] struct {
	m sync.Map // K → V
	n atomic.Int32
}

func (c *memo[K, V]) get(k K, build func() (V, error)) (V, error) {
	if v, ok := c.m.Load(k); ok {
		return v.(V), nil
	}
	v, err := build()
	if err == nil && c.n.Load() < memoMax {
		if _, loaded := c.m.LoadOrStore(k, v); !loaded {
			c.n.Add(1)
		}
	}
	return v, err
}

// signalsKey packs the points of every signal; ok is false when one does
// not fit (a caller's own weights), and then the record is not memoized.
func signalsKey(sc trust.Score) (k [9]int8, ok bool) {
	for _, p := range sc.Parts {
		i := signalIndex(p.Signal)
		if i < 0 || p.Points < -128 || p.Points > 127 {
			return k, false
		}
		k[i] = int8(p.Points)
	}
	return k, len(trust.Signals) == len(k)
}

func signalIndex(s trust.Signal) int {
	for i, t := range trust.Signals {
		if t == s {
			return i
		}
	}
	return -1
}

// signalsRecord returns context.signals for sc, boxed.
func (s *Set) signalsRecord(sc trust.Score) types.Value {
	k, ok := signalsKey(sc)
	if !ok {
		return signals(sc)
	}
	r, _ := s.signalMemo.get(k, func() (types.Value, error) { return signals(sc), nil })
	return r
}

// principal returns the Cedar entity of p.
func (s *Set) principal(p Principal) (types.Entity, error) {
	var b strings.Builder
	n := len(p.Kind) + len(p.Name) + 1
	for _, r := range p.Roles {
		n += len(r) + 1
	}
	b.Grow(n)
	b.WriteString(p.Kind)
	b.WriteByte(0)
	b.WriteString(p.Name)
	for _, r := range p.Roles {
		b.WriteByte(0)
		b.WriteString(r)
	}
	return s.principalMemo.get(b.String(), func() (types.Entity, error) { return principalEntity(p) })
}
