package ratelimit

import "hash/maphash"

// Forget clears the window of r's key in the rule named name: the key
// starts again from zero. The gateway calls it when the rule bans the key,
// so that a client whose ban is over is not refused again for requests
// it sent before the ban. An unknown rule or key is not an error.
func (l *Limiter) Forget(name string, r *Request) {
	for i := range l.rules {
		rs := &l.rules[i]
		if rs.Name != name {
			continue
		}
		switch {
		case rs.addrs != nil:
			a := clientAddr(r, rs.Key[0].Kind)
			s := rs.addrs.shard(hashAddr(rs.addrs.mix, a))
			s.mu.Lock()
			if w, ok := s.find(a); ok {
				w.clear()
			}
			s.mu.Unlock()
		case rs.single:
			v := partValue(r, rs.Key[0])
			s := rs.strs.shard(maphash.String(rs.strs.seed, v))
			s.mu.Lock()
			if w, ok := s.find(v); ok {
				w.clear()
			}
			s.mu.Unlock()
		default:
			var buf [128]byte
			k := appendKey(buf[:0], r, rs.Key)
			s := rs.strs.shard(maphash.Bytes(rs.strs.seed, k))
			s.mu.Lock()
			if w, ok := findBytes(s, k); ok {
				w.clear()
			}
			s.mu.Unlock()
		}
	}
}

// clear empties the window, keeping its position.
func (w *window) clear() {
	w.counts = [buckets]uint32{}
	w.total, w.over = 0, false
}
