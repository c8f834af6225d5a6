package stream

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// halfData is the reassembled stream of a handed-out Half: extents over
// a store, zeros elsewhere. The Assembler may move its store to the
// spill file while the caller holds it, so reads take a read lock;
// concurrent ReadAt calls are safe.
type halfData struct {
	mu      sync.RWMutex
	ext     []extent // offsets in the stream, sorted
	size    int64
	st      store
	owner   *handedSet
	charged int64 // memory charged to owner; guarded by owner.mu
	order   int   // when it was handed out
	closed  bool  // guarded by mu
}

// handedSet tracks the handed-out halves that hold memory and are not
// closed yet, so that the memory budget covers them too: a caller that
// keeps the data connections of an FTP session until its control
// connection ends must not hold them all in RAM.
type handedSet struct {
	mu    sync.Mutex
	set   map[*halfData]struct{}
	mem   atomic.Int64
	count int
}

func newHandedSet() *handedSet { return &handedSet{set: make(map[*halfData]struct{})} }

// add makes the halfData for a Half and charges its memory.
func (s *handedSet) add(ext []extent, size int64, st store) *halfData {
	s.count++
	d := &halfData{ext: ext, size: size, st: st, owner: s, order: s.count}
	if n := st.memBytes(); n > 0 {
		s.mu.Lock()
		d.charged = n
		s.set[d] = struct{}{}
		s.mu.Unlock()
		s.mem.Add(n)
	}
	return d
}

// largest returns the open halves holding at least min bytes of memory.
func (s *handedSet) largest(min int64) []*halfData {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*halfData
	for d := range s.set {
		if d.charged >= min {
			out = append(out, d)
		}
	}
	return out
}

// spill moves d's bytes to sf unless d was closed meanwhile; first says
// they were in memory until now.
func (s *handedSet) spill(d *halfData, sf *spillFile) (first bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[d]; !ok {
		return false, nil
	}
	d.mu.Lock()
	first = d.st.sf == nil
	err = d.st.spill(sf)
	n := d.st.memBytes()
	d.mu.Unlock()
	s.mem.Add(n - d.charged)
	d.charged = n
	return first, err
}

// ReadAt implements io.ReaderAt.
func (d *halfData) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("reading reassembled stream: negative offset")
	}
	if off >= d.size {
		return 0, io.EOF
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, errors.New("reading reassembled stream: closed")
	}
	n := int(min(int64(len(p)), d.size-off))
	q := p[:n]
	clear(q)
	end := off + int64(n)
	i := sort.Search(len(d.ext), func(k int) bool { return d.ext[k].end > off })
	for ; i < len(d.ext) && d.ext[i].start < end; i++ {
		x := d.ext[i]
		s, e := max(off, x.start), min(end, x.end)
		if err := d.st.readAt(q[s-off:e-off], x.pos+s-x.start); err != nil {
			return int(s - off), fmt.Errorf("reading reassembled stream: %w", err)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// close releases the bytes and their charge.
func (d *halfData) close() error {
	s := d.owner
	s.mu.Lock()
	if _, ok := s.set[d]; ok {
		delete(s.set, d)
		s.mem.Add(-d.charged)
	}
	s.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return d.st.close()
}
