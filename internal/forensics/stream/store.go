package stream

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
)

// chunkSize is the size of the memory chunks a store holds its bytes in
// (the first chunk grows to it by doubling, so a tiny stream costs little).
const chunkSize = 1 << 20

// fileBufMax is the most a spilled store buffers before writing to the
// spill file.
const fileBufMax = 256 << 10

// spillRotate is the size past which new spills go to a fresh file, so
// that the disk space of closed connections is given back.
const spillRotate = 1 << 30

// spillFile is an unlinked temporary file shared by the stores spilled
// while it was current: one file descriptor however many directions
// spill. Each store holds a reference and the file closes, freeing its
// space, when the last is released.
type spillFile struct {
	f    *os.File
	size int64 // written so far; only the Assembler's goroutine appends
	refs atomic.Int32
}

func newSpillFile(dir string) (*spillFile, error) {
	f, err := os.CreateTemp(dir, "noops-stream-*")
	if err != nil {
		return nil, fmt.Errorf("creating spill file: %w", err)
	}
	// Unlinked at once: the space is freed when the file is closed, even
	// if the process dies.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlinking spill file: %w", err)
	}
	sf := &spillFile{f: f}
	sf.refs.Store(1)
	return sf, nil
}

func (sf *spillFile) acquire() { sf.refs.Add(1) }

func (sf *spillFile) release() error {
	if sf.refs.Add(-1) != 0 {
		return nil
	}
	if err := sf.f.Close(); err != nil {
		return fmt.Errorf("closing spill file: %w", err)
	}
	return nil
}

// region says that store bytes [pos, pos+n) are at file offset foff.
type region struct{ pos, foff, n int64 }

// store holds the bytes of one direction in arrival order, appended once
// each: in memory chunks, or, once spilled, in regions of a spill file
// with a write buffer at the end. Extents say where each stream position
// lives in it.
type store struct {
	chunks  [][]byte // memory mode: chunk k holds [k*chunkSize, (k+1)*chunkSize)
	memCap  int64    // bytes of chunk capacity held
	size    int64    // bytes held
	sf      *spillFile
	regions []region // spilled mode: [0, fsize) is in the file
	fsize   int64
	buf     []byte // spilled mode: [fsize, size)
}

// memBytes is the memory the store holds.
func (s *store) memBytes() int64 {
	return s.memCap + int64(cap(s.buf)) + int64(cap(s.regions))*24
}

// appendBytes adds b at the end and returns where it starts.
func (s *store) appendBytes(b []byte) (int64, error) {
	pos := s.size
	if s.sf != nil {
		if len(s.buf)+len(b) > fileBufMax {
			if err := s.flush(); err != nil {
				return 0, err
			}
		}
		if len(b) >= fileBufMax {
			if err := s.writeRegion(b); err != nil {
				return 0, err
			}
			s.size += int64(len(b))
			return pos, nil
		}
		if cap(s.buf) < len(s.buf)+len(b) {
			nb := make([]byte, len(s.buf), min(fileBufMax, max(2*cap(s.buf), len(s.buf)+len(b), 4096)))
			copy(nb, s.buf)
			s.buf = nb
		}
		s.buf = append(s.buf, b...)
		s.size += int64(len(b))
		return pos, nil
	}
	for len(b) > 0 {
		k := len(s.chunks) - 1
		if k < 0 || len(s.chunks[k]) == chunkSize {
			c := chunkSize
			if k < 0 {
				c = min(chunkSize, max(len(b), 64))
			}
			s.chunks = append(s.chunks, make([]byte, 0, c))
			s.memCap += int64(c)
			k++
		}
		c := s.chunks[k]
		if cap(c) == len(c) {
			nc := make([]byte, len(c), min(chunkSize, max(2*cap(c), len(c)+len(b))))
			copy(nc, c)
			s.memCap += int64(cap(nc) - cap(c))
			c = nc
		}
		n := min(len(b), cap(c)-len(c))
		s.chunks[k] = append(c, b[:n]...)
		b = b[n:]
		s.size += int64(n)
	}
	return pos, nil
}

// writeRegion appends b, the next store bytes after fsize, to the file.
func (s *store) writeRegion(b []byte) error {
	foff := s.sf.size
	if _, err := s.sf.f.WriteAt(b, foff); err != nil {
		return fmt.Errorf("writing spill file: %w", err)
	}
	s.sf.size += int64(len(b))
	n := int64(len(b))
	if k := len(s.regions) - 1; k >= 0 && s.regions[k].foff+s.regions[k].n == foff {
		s.regions[k].n += n
	} else {
		s.regions = append(s.regions, region{s.fsize, foff, n})
	}
	s.fsize += n
	return nil
}

// readAt fills p from pos; the range must be held.
func (s *store) readAt(p []byte, pos int64) error {
	return s.span(p, pos, func(dst, held []byte) { copy(dst, held) }, func(q []byte, off int64) error {
		if _, err := s.sf.f.ReadAt(q, off); err != nil {
			return fmt.Errorf("reading spill file: %w", err)
		}
		return nil
	})
}

// writeAt overwrites the held range at pos with p.
func (s *store) writeAt(p []byte, pos int64) error {
	return s.span(p, pos, func(src, held []byte) { copy(held, src) }, func(q []byte, off int64) error {
		if _, err := s.sf.f.WriteAt(q, off); err != nil {
			return fmt.Errorf("writing spill file: %w", err)
		}
		return nil
	})
}

// span walks [pos, pos+len(p)) of the store in order, calling mem with a
// part of p and the memory holding the same bytes, and file with a part
// of p and the file offset holding them.
func (s *store) span(p []byte, pos int64, mem func(p, held []byte), file func(p []byte, off int64) error) error {
	if pos < 0 || pos+int64(len(p)) > s.size {
		return errors.New("stream: store range out of bounds")
	}
	if s.sf == nil {
		for len(p) > 0 {
			c := s.chunks[pos/chunkSize]
			o := int(pos % chunkSize)
			n := min(len(p), len(c)-o)
			mem(p[:n], c[o:o+n])
			p, pos = p[n:], pos+int64(n)
		}
		return nil
	}
	if pos < s.fsize {
		k := sort.Search(len(s.regions), func(i int) bool { return s.regions[i].pos+s.regions[i].n > pos })
		for ; k < len(s.regions) && len(p) > 0 && pos < s.fsize; k++ {
			r := s.regions[k]
			n := min(int64(len(p)), r.pos+r.n-pos)
			if err := file(p[:n], r.foff+pos-r.pos); err != nil {
				return err
			}
			p, pos = p[n:], pos+n
		}
	}
	if len(p) > 0 {
		o := pos - s.fsize
		mem(p, s.buf[o:o+int64(len(p))])
	}
	return nil
}

// spill moves the store's bytes to sf; a store already spilled writes out
// its buffer and frees it.
func (s *store) spill(sf *spillFile) error {
	if s.sf != nil {
		if err := s.flush(); err != nil {
			return err
		}
		s.buf = nil
		return nil
	}
	s.sf = sf
	sf.acquire()
	for _, c := range s.chunks {
		if err := s.writeRegion(c); err != nil {
			// Nothing is lost: keep the chunks, stay in memory.
			s.sf, s.regions, s.fsize = nil, nil, 0
			sf.release()
			return err
		}
	}
	s.chunks, s.memCap = nil, 0
	return nil
}

// flush writes the buffer of a spilled store to the file.
func (s *store) flush() error {
	if s.sf == nil || len(s.buf) == 0 {
		return nil
	}
	if err := s.writeRegion(s.buf); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	return nil
}

// close releases the store.
func (s *store) close() error {
	s.chunks, s.buf, s.regions, s.memCap = nil, nil, nil, 0
	if s.sf == nil {
		return nil
	}
	sf := s.sf
	s.sf = nil
	return sf.release()
}
