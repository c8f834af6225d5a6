package notify

import (
	"context"
	"sync"
)

// item is one event for one sink; seq orders a sink's spool.
type item struct {
	seq uint64
	ev  Event
}

// sinkState is one sink's queue, counters and spool file.
type sinkState struct {
	sink  Sink
	name  string
	ready chan struct{} // cap 1: the queue gained an event
	wake  chan struct{} // the Notifier's
	spool *spoolFile    // nil without a spool

	maxQueue   int // events waiting
	maxBacklog int // spool records waiting for the writer

	mu        sync.Mutex // guards what follows
	queue     []*item    // waiting, oldest first
	inflight  *item      // being sent
	seq       uint64     // last seq given
	unwritten []record   // spool records not written yet, in order
	rewrite   bool       // the spool file must be rewritten from the queue
	full      bool       // the queue overflowed and has not drained since
	stats     SinkStats
}

// push queues ev. It returns the event dropped to make room when that is
// the first drop since the queue last drained, for the caller to log.
func (s *sinkState) push(ev Event) (firstDrop *item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= s.maxQueue {
		old := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.stats.Dropped++
		s.recordLocked(record{ack: old.seq})
		if !s.full {
			s.full = true
			firstDrop = old
		}
	}
	s.seq++
	it := &item{seq: s.seq, ev: ev}
	s.queue = append(s.queue, it)
	s.recordLocked(record{item: it})
	signal(s.ready)
	return firstDrop
}

// next takes the oldest waiting event and marks it in flight; nil when ctx
// ends first.
func (s *sinkState) next(ctx context.Context) *item {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			it := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.inflight = it
			if len(s.queue) < s.maxQueue/2 {
				s.full = false
			}
			s.mu.Unlock()
			return it
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil
		}
	}
}

// finish ends the event in flight: delivered, or dropped as rejected.
func (s *sinkState) finish(it *item, delivered bool) {
	s.mu.Lock()
	if delivered {
		s.stats.Delivered++
	} else {
		s.stats.Dropped++
		s.stats.Rejected++
	}
	s.inflight = nil
	s.recordLocked(record{ack: it.seq})
	s.mu.Unlock()
	signal(s.wake)
}

func (s *sinkState) failed(err error) {
	s.mu.Lock()
	s.stats.Retries++
	s.stats.LastError = err.Error()
	s.mu.Unlock()
}

func (s *sinkState) pendingLocked() int {
	if s.inflight != nil {
		return len(s.queue) + 1
	}
	return len(s.queue)
}

// snapshotLocked returns the pending events, in order.
func (s *sinkState) snapshotLocked() []*item {
	items := make([]*item, 0, s.pendingLocked())
	if s.inflight != nil {
		items = append(items, s.inflight)
	}
	return append(items, s.queue...)
}

// recordLocked hands r to the spool writer. When the writer falls far
// behind (a stalled disk), the records are given up and the file will be
// rewritten from the queue instead, so memory stays bounded.
func (s *sinkState) recordLocked(r record) {
	switch {
	case s.spool == nil || s.rewrite:
	case len(s.unwritten) >= s.maxBacklog:
		s.unwritten = nil
		s.rewrite = true
	default:
		s.unwritten = append(s.unwritten, r)
	}
}

// signal wakes the receiver of c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
