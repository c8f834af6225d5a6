package ban

import (
	"container/list"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Strike counts a strike of trigger t against a (detail says what it was:
// a WAF rule, a user name) and bans a when that makes the rule's Count
// strikes within its Window. It returns the new ban and true; else the
// ban in force and false when a is already banned (its strikes are not
// counted), or nothing. Strikes of an allowed address, or of a trigger
// without a rule, are ignored. The ban is in force before Strike writes
// it to the store.
func (l *List) Strike(a netip.Addr, t Trigger, detail string) (Ban, bool) {
	a = a.Unmap()
	r, ok := l.rules[t]
	if !a.IsValid() || !ok || r.Count < 1 || r.Ban <= 0 || l.Allowed(a) {
		return Ban{}, false
	}
	if b, banned := l.Banned(a); banned {
		return b, false
	}
	l.smu.Lock()
	full := l.strikes.add(a, t, r, l.now(), l.maxAddrs)
	l.smu.Unlock()
	if !full {
		return Ban{}, false
	}
	return l.auto(netip.PrefixFrom(a, a.BitLen()), t, reason(t, r, detail), r.Ban)
}

// reason is the text of a ban made by strikes.
func reason(t Trigger, r Rule, detail string) string {
	var s strings.Builder
	s.WriteString(string(t))
	if r.Count > 1 {
		fmt.Fprintf(&s, ": %d strikes in %s", r.Count, short(r.Window))
	}
	if detail != "" {
		if r.Count > 1 {
			s.WriteString(", the last")
		}
		s.WriteString(": ")
		s.WriteString(detail)
	}
	return s.String()
}

// short writes d without its zero minutes and seconds: "5m", "1h", "1m30s".
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// strikeTable counts strikes by address and trigger. It holds at most a
// bounded number of addresses: adding one more drops the one struck
// longest ago. The caller holds l.smu.
type strikeTable struct {
	byAddr map[netip.Addr]*list.Element // of *strikes
	order  list.List                    // most recently struck first
}

// strikes are the recent strikes of one address.
type strikes struct {
	addr netip.Addr
	by   []triggerStrikes
}

// triggerStrikes are the times of an address's recent strikes of one
// trigger, oldest first.
type triggerStrikes struct {
	t     Trigger
	times []time.Time
}

func (st *strikeTable) init() {
	st.byAddr = map[netip.Addr]*list.Element{}
	st.order.Init()
}

// len returns how many addresses have strikes counted.
func (st *strikeTable) len() int { return len(st.byAddr) }

// add counts a strike of t against a at now and reports whether that
// makes r.Count strikes within r.Window; if so, the count starts over.
// It keeps at most limit addresses.
func (st *strikeTable) add(a netip.Addr, t Trigger, r Rule, now time.Time, limit int) bool {
	e, ok := st.byAddr[a]
	if ok {
		st.order.MoveToFront(e)
	} else {
		e = st.order.PushFront(&strikes{addr: a})
		st.byAddr[a] = e
		for st.order.Len() > max(limit, 1) {
			st.remove(st.order.Back())
		}
	}
	s := e.Value.(*strikes)
	i := s.find(t)
	if i < 0 {
		s.by = append(s.by, triggerStrikes{t: t})
		i = len(s.by) - 1
	}
	ts := &s.by[i]
	ts.expire(now, r.Window)
	ts.times = append(ts.times, now)
	if len(ts.times) < r.Count {
		return false
	}
	s.by = append(s.by[:i], s.by[i+1:]...)
	if len(s.by) == 0 {
		st.remove(e)
	}
	return true
}

// prune forgets the strikes older than their rule's window, and the
// addresses left without strikes.
func (st *strikeTable) prune(now time.Time, rules map[Trigger]Rule) {
	for e := st.order.Front(); e != nil; {
		next := e.Next()
		s := e.Value.(*strikes)
		kept := s.by[:0]
		for _, ts := range s.by {
			ts.expire(now, rules[ts.t].Window)
			if len(ts.times) > 0 {
				kept = append(kept, ts)
			}
		}
		s.by = kept
		if len(s.by) == 0 {
			st.remove(e)
		}
		e = next
	}
}

func (st *strikeTable) remove(e *list.Element) {
	delete(st.byAddr, e.Value.(*strikes).addr)
	st.order.Remove(e)
}

// find returns the index of t's strikes in s.by, or -1.
func (s *strikes) find(t Trigger) int {
	for i := range s.by {
		if s.by[i].t == t {
			return i
		}
	}
	return -1
}

// expire drops the strikes that are not within window of now.
func (ts *triggerStrikes) expire(now time.Time, window time.Duration) {
	n := 0
	for n < len(ts.times) && now.Sub(ts.times[n]) >= window {
		n++
	}
	ts.times = append(ts.times[:0], ts.times[n:]...)
}
