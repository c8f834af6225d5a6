package ratelimit

import (
	"errors"
	"hash/maphash"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"noops/internal/errkind"
)

// DefaultMaxKeys is how many keys a rule tracks unless WithMaxKeys says
// otherwise. A key costs about 370 bytes (its 256-byte window, the key and
// its map entry), so a full rule holds about 37 MB.
const DefaultMaxKeys = 100_000

// Request is what the rules need to know of a request. The caller fills it
// from the http.Request without allocating; Check does not keep it.
type Request struct {
	IP          netip.Addr  // the address of the peer that connected
	ForwardedIP netip.Addr  // the client behind a trusted proxy; invalid when there is none ("forwarded_ip" then uses IP)
	Identity    string      // the signed-in user or workload; "" when anonymous
	Method      string      // the request method
	Path        string      // the cleaned path the router matches on
	Header      http.Header // read only for "header" and "cookie" key parts
}

// Verdict is what Check decided. The zero Verdict lets the request through.
type Verdict struct {
	Rule    *Rule    // the first non-count rule the request is over; nil when none (do not modify)
	Action  Action   // Rule's action; "" when Rule is nil
	Count   int      // the count in Rule's window for the key, this request included
	Key     string   // the key the request was counted under, for logs and events; "" when Rule is nil
	First   bool     // this request took the key over Rule's limit (start a ban, emit an event)
	Counted []string // the names of the count rules the request is over, in order; nil when none
}

// Limiter enforces a set of rate rules. It is safe for concurrent use.
type Limiter struct {
	rules []rule
}

// rule is a Rule ready to count requests.
type rule struct {
	Rule                      // normalized
	limit  uint32             // Limit
	width  int64              // the width of a sub-bucket in nanoseconds
	single bool               // the key has one part
	addrs  *table[netip.Addr] // the keys of a rule keyed by a single "ip" or "forwarded_ip" part
	strs   *table[string]     // the keys of every other rule
}

type config struct {
	maxKeys int
}

// Option configures a Limiter.
type Option func(*config)

// WithMaxKeys bounds the number of keys each rule tracks (at least 1). When
// a rule is full, a new key evicts one that has not been seen lately. The
// bound may round down to a multiple of the rule's shard count.
func WithMaxKeys(n int) Option { return func(c *config) { c.maxKeys = n } }

// New returns a Limiter for rules, evaluated in their order. It reports
// every invalid rule and duplicate name, classified errkind.Invalid.
func New(rules []Rule, opts ...Option) (*Limiter, error) {
	c := config{maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		o(&c)
	}
	if c.maxKeys < 1 {
		return nil, errkind.Errorf(errkind.Invalid, "rate limiter: max keys %d is below 1", c.maxKeys)
	}
	var errs []error
	seen := make(map[string]bool, len(rules))
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[r.Name] {
			errs = append(errs, errkind.Errorf(errkind.Invalid, "rate rule %q: name is used by an earlier rule", r.Name))
		}
		seen[r.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l := &Limiter{rules: make([]rule, len(rules))}
	for i, r := range rules {
		n := r.normalized()
		rs := rule{Rule: n, limit: uint32(n.Limit), width: int64(n.Window / buckets), single: len(n.Key) == 1}
		if k := n.Key[0].Kind; rs.single && (k == KindIP || k == KindForwardedIP) {
			rs.addrs = newTable[netip.Addr](c.maxKeys)
		} else {
			rs.strs = newTable[string](c.maxKeys)
		}
		l.rules[i] = rs
	}
	return l, nil
}

// Check counts r at now in every rule whose scope-down matches it, and
// returns the first non-count rule that r took or kept over its limit, with
// the count rules it is over listed in Counted. Refused requests count too.
// Check allocates nothing unless a rule is over its limit, a string key is
// seen for the first time, or a composite key is longer than 128 bytes.
func (l *Limiter) Check(r *Request, now time.Time) Verdict {
	ns := now.UnixNano()
	var v Verdict
	for i := range l.rules {
		rs := &l.rules[i]
		if !rs.matches(r) {
			continue
		}
		count, over, first := rs.hit(r, ns/rs.width)
		switch {
		case !over:
		case rs.Action == Count:
			v.Counted = append(v.Counted, rs.Name)
		case v.Rule == nil:
			v = Verdict{Rule: &rs.Rule, Action: rs.Action, Count: int(count), Key: displayKey(r, rs.Key), First: first, Counted: v.Counted}
		}
	}
	return v
}

// hit counts r at bucket number b in rs.
func (rs *rule) hit(r *Request, b int64) (count uint32, over, first bool) {
	if rs.addrs != nil {
		a := clientAddr(r, rs.Key[0].Kind)
		s := rs.addrs.shard(hashAddr(rs.addrs.mix, a))
		s.mu.Lock()
		w, ok := s.find(a)
		if !ok {
			w = s.add(a, b)
		}
		count, over, first = w.add(b, rs.limit)
		s.mu.Unlock()
		return count, over, first
	}
	if rs.single {
		v := partValue(r, rs.Key[0])
		s := rs.strs.shard(maphash.String(rs.strs.seed, v))
		s.mu.Lock()
		w, ok := s.find(v)
		if !ok {
			// v may be a substring of a long header; keep only its bytes.
			w = s.add(strings.Clone(v), b)
		}
		count, over, first = w.add(b, rs.limit)
		s.mu.Unlock()
		return count, over, first
	}
	var buf [128]byte
	k := appendKey(buf[:0], r, rs.Key)
	s := rs.strs.shard(maphash.Bytes(rs.strs.seed, k))
	s.mu.Lock()
	w, ok := findBytes(s, k)
	if !ok {
		w = s.add(string(k), b)
	}
	count, over, first = w.add(b, rs.limit)
	s.mu.Unlock()
	return count, over, first
}

// findBytes is s.find(string(k)) without converting k to a string.
func findBytes(s *shard[string], k []byte) (*window, bool) {
	i, ok := s.idx[string(k)]
	if !ok {
		return nil, false
	}
	w := &s.wins[i]
	w.ref = true
	return w, true
}

// Len returns the number of keys the rules track, summed over the rules.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.rules {
		rs := &l.rules[i]
		if rs.addrs != nil {
			n += rs.addrs.len()
		} else {
			n += rs.strs.len()
		}
	}
	return n
}

// Sweep drops the keys whose windows are empty at now and returns how many
// it dropped. The caller runs it periodically (every few seconds); keys
// that are not swept are still bounded by WithMaxKeys.
func (l *Limiter) Sweep(now time.Time) int {
	ns := now.UnixNano()
	n := 0
	for i := range l.rules {
		rs := &l.rules[i]
		if rs.addrs != nil {
			n += rs.addrs.sweep(ns / rs.width)
		} else {
			n += rs.strs.sweep(ns / rs.width)
		}
	}
	return n
}
