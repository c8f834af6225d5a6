package pcap

import (
	"errors"
	"io"
)

// source is a byte window over the capture: the record and block readers
// peek at what they need, check it, and only then consume it, so that a
// corrupt length can be answered by scanning forward from the byte after
// it (resync) instead of stopping. It grows only with bytes actually read,
// so a length field of 4 GiB in a 40-byte file allocates nothing.
type source struct {
	r     io.Reader
	buf   []byte
	start int   // buf[start:end] is unread
	end   int   // ...
	off   int64 // file offset of buf[start]
	err   error // the reader's error once it has returned one (io.EOF at the end)
	// zeroReads counts consecutive reads that returned nothing and no
	// error; a reader that keeps doing so is treated as broken.
	zeroReads int
}

const (
	initialWindow = 64 << 10  // the window to start with; a larger record grows it
	windowSize    = 256 << 10 // the window a resync scans at a time
	readChunk     = 64 << 10  // bytes asked of the reader at a time when growing
)

func newSource(r io.Reader) *source {
	return &source{r: r, buf: make([]byte, initialWindow)}
}

// buffered is the count of unread bytes held.
func (s *source) buffered() int { return s.end - s.start }

// peek returns up to n unread bytes without consuming them. It returns
// fewer than n only at the end of the input or after a read error; the
// error is then the reader's (io.EOF at a clean end). The slice is valid
// until the next call on s.
func (s *source) peek(n int) ([]byte, error) {
	for s.buffered() < n && s.err == nil {
		s.fill(n)
	}
	if s.buffered() >= n {
		return s.buf[s.start : s.start+n], nil
	}
	return s.buf[s.start:s.end], s.err
}

// fill reads more bytes, making room for n unread bytes: it slides the
// unread bytes to the front and grows the buffer in steps of at most
// readChunk beyond what is held, so memory tracks bytes read, not n.
func (s *source) fill(n int) {
	if s.start > 0 && (s.end == len(s.buf) || len(s.buf)-s.start < n) {
		copy(s.buf, s.buf[s.start:s.end])
		s.end -= s.start
		s.start = 0
	}
	if s.end == len(s.buf) {
		grow := min(max(len(s.buf), readChunk), n-s.end+readChunk)
		nb := make([]byte, len(s.buf)+grow)
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	m, err := s.r.Read(s.buf[s.end:])
	s.end += m
	if m > 0 {
		s.zeroReads = 0
	}
	if err != nil {
		s.err = err
	} else if m == 0 {
		s.zeroReads++
		if s.zeroReads > 100 {
			s.err = io.ErrNoProgress
		}
	}
}

// discard consumes n bytes (at most those buffered).
func (s *source) discard(n int) {
	n = min(n, s.buffered())
	s.start += n
	s.off += int64(n)
	if s.start == s.end {
		s.start, s.end = 0, 0
		// Let a window grown for one huge block go.
		if len(s.buf) > 4*windowSize {
			s.buf = make([]byte, initialWindow)
		}
	}
}

// ioError returns the reader's error unless it is a clean end of input.
func (s *source) ioError() error {
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return nil
	}
	return s.err
}

// verdict is what a resync check says of a candidate position.
type verdict int

const (
	reject   verdict = iota // not a record start
	accept                  // a plausible record start
	needMore                // cannot tell from the bytes given
)

// resync skips forward, starting one byte after the current position, to
// the first offset where check accepts the bytes that follow (atEOF says
// no more bytes will come). It gives up after limit bytes or at the end of
// the input. It returns the count of bytes skipped and whether a position
// was found; on failure everything scanned is consumed.
func (s *source) resync(check func(b []byte, atEOF bool) verdict, limit int64) (int64, bool) {
	var skipped int64
	s.discard(1)
	skipped++
	for skipped < limit {
		win, err := s.peek(max(windowSize, s.buffered()))
		atEOF := err != nil
		if len(win) == 0 {
			return skipped, false
		}
		i := 0
		for ; i < len(win) && skipped+int64(i) < limit; i++ {
			switch check(win[i:], atEOF) {
			case accept:
				s.discard(i)
				return skipped + int64(i), true
			case needMore:
				if i > 0 {
					// Slide the candidate to the front and look again
					// with more bytes behind it.
					goto more
				}
				if atEOF || len(win) >= maxResyncSpan {
					continue // as good as a rejection
				}
				// The candidate needs more than the window holds: grow it.
				if w2, _ := s.peek(min(2*len(win), maxResyncSpan)); len(w2) > len(win) {
					win = w2
					i--
					continue
				}
			}
		}
	more:
		s.discard(i)
		skipped += int64(i)
		if atEOF && i >= len(win) {
			return skipped, false
		}
	}
	return skipped, false
}

// maxResyncSpan caps the bytes one candidate may ask for while resyncing:
// a record longer than this is not found by a scan (it is by a normal read).
const maxResyncSpan = 4 << 20
