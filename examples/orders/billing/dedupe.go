package main

import "sync"

// state is what dedupe knows of an event ID.
type state int

const (
	fresh state = iota // not seen: the caller now handles it
	busy               // being handled by another delivery
	done               // handled
)

// dedupe remembers the IDs of the last max events handled (the oldest is
// forgotten first) and the IDs being handled right now. It lives in
// memory: a restart forgets, which is fine for an example; a real app
// keeps this next to the data it changes.
type dedupe struct {
	mu   sync.Mutex
	max  int
	done map[string]struct{}
	ring []string // handled IDs in the order they finished
	next int      // where the next ID goes in ring once it is full
	busy map[string]struct{}
}

func newDedupe(max int) *dedupe {
	return &dedupe{max: max, done: map[string]struct{}{}, busy: map[string]struct{}{}}
}

// begin returns fresh (and marks id busy), busy or done.
func (d *dedupe) begin(id string) state {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.done[id]; ok {
		return done
	}
	if _, ok := d.busy[id]; ok {
		return busy
	}
	d.busy[id] = struct{}{}
	return fresh
}

// end finishes what begin started: ok remembers id as done, !ok forgets
// it so that a retry handles it again.
func (d *dedupe) end(id string, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.busy, id)
	if !ok {
		return
	}
	d.done[id] = struct{}{}
	if len(d.ring) < d.max {
		d.ring = append(d.ring, id)
		return
	}
	delete(d.done, d.ring[d.next])
	d.ring[d.next] = id
	d.next = (d.next + 1) % d.max
}
