package logstore

import (
	"errors"
	"os"
	"time"
)

// Stats describes what a Store holds.
type Stats struct {
	Partitions int
	Bytes      int64 // on disk: partitions and the write-ahead log
	Records    int64 // stored (sealed and in the head)
	Head       int   // records flushed but not yet sealed into blocks
	Buffered   int   // records appended but not yet flushed
	Oldest     time.Time
	Newest     time.Time
	// Dropped counts records refused: older than the retention (or than a
	// partition already removed), or more than a day in the future.
	Dropped int64
	// Truncated counts records with a field that was cut.
	Truncated int64
	// Corrupt counts blocks skipped because they failed their checks.
	Corrupt int64
	// Removed counts partitions removed by retention.
	Removed int64
}

// Stats returns the store's figures.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{Buffered: len(s.pending)}
	s.mu.Unlock()
	s.state.RLock()
	defer s.state.RUnlock()
	st.Partitions = len(s.parts)
	st.Bytes = s.walSize
	var lo, hi int64
	seen := false
	see := func(a, b int64) {
		if !seen || a < lo {
			lo = a
		}
		if !seen || b > hi {
			hi = b
		}
		seen = true
	}
	for _, p := range s.parts {
		st.Bytes += p.size
		for _, b := range p.blocks {
			st.Records += int64(b.count)
			see(b.minT, b.maxT)
		}
	}
	st.Head = len(s.head)
	st.Records += int64(len(s.head))
	for i := range s.head {
		t := s.head[i].Time.UnixMicro()
		see(t, t)
	}
	if seen {
		st.Oldest, st.Newest = time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC()
	}
	st.Dropped, st.Truncated, st.Corrupt, st.Removed = s.dropped.Load(), s.truncated.Load(), s.corrupt.Load(), s.removed.Load()
	return st
}

// retain removes whole partitions, oldest first: those that ended before
// now-MaxAge, then while the store is over MaxBytes (never the newest).
func (s *Store) retain() {
	now := s.opt.Now()
	s.state.Lock()
	var gone []*partition
	total := s.walSize
	for _, p := range s.parts {
		total += p.size
	}
	for len(s.parts) > 0 {
		p := s.parts[0]
		old := s.opt.MaxAge > 0 && !p.end().After(now.Add(-s.opt.MaxAge))
		big := s.opt.MaxBytes > 0 && total > s.opt.MaxBytes && len(s.parts) > 1
		if !old && !big {
			break
		}
		gone = append(gone, p)
		total -= p.size
		s.parts = s.parts[1:]
		if p.end().After(s.floor) {
			s.floor = p.end()
		}
	}
	s.state.Unlock()
	for _, p := range gone {
		s.removed.Add(1)
		if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("log store: removing partition", "path", p.path, "err", err)
			continue
		}
		s.log.Info("log store: removed partition", "path", p.path, "bytes", p.size, "start", p.start)
	}
}
