package tracestore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
)

// A segment is one file of blocks of one time partition. A partition has
// one or more segments (a new one starts when the last one reaches the
// segment size); retention deletes whole segments, oldest partition
// first.
type segment struct {
	key      int64 // the partition's start, ns since the epoch (UTC)
	seq      int   // 1, 2, … within the partition
	path     string
	size     int64 // bytes of whole blocks; the file is cut to it
	spans    int64
	minStart int64
	maxStart int64
	blocks   []*blockRef
}

// blockRef is where a block is and what it may hold: its header and a
// bloom filter of its trace IDs, built from its trace table.
type blockRef struct {
	seg    *segment
	off    int64
	h      header
	filter *bloom.BloomFilter
}

const segExt = ".seg"

// segName is the file name of a segment: the partition's start in UTC and
// the sequence number, e.g. 20260105T140000Z-000001.seg.
func segName(key int64, seq int) string {
	return fmt.Sprintf("%s-%06d%s", utcNano(key).Format("20060102T150405Z"), seq, segExt)
}

func parseSegName(name string) (key int64, seq int, ok bool) {
	base, found := strings.CutSuffix(name, segExt)
	if !found {
		return 0, 0, false
	}
	ts, n, found := strings.Cut(base, "-")
	if !found {
		return 0, 0, false
	}
	t, err := time.Parse("20060102T150405Z", ts)
	if err != nil {
		return 0, 0, false
	}
	seq, err = strconv.Atoi(n)
	if err != nil || seq <= 0 {
		return 0, 0, false
	}
	return t.UnixNano(), seq, true
}

// compare orders segments oldest partition first, then by sequence.
func (g *segment) compare(o *segment) int {
	switch {
	case g.key != o.key:
		if g.key < o.key {
			return -1
		}
		return 1
	case g.seq != o.seq:
		return g.seq - o.seq
	}
	return 0
}

func newFilter(table []traceEntry) *bloom.BloomFilter {
	f := bloom.NewWithEstimates(uint(max(len(table), 16)), 0.01)
	for i := range table {
		f.Add(table[i].id[:])
	}
	return f
}

// addBlock records a block appended at the segment's end.
func (g *segment) addBlock(h header, table []traceEntry) *blockRef {
	b := &blockRef{seg: g, off: g.size, h: h, filter: newFilter(table)}
	if len(g.blocks) == 0 || h.minStart < g.minStart {
		g.minStart = h.minStart
	}
	if len(g.blocks) == 0 || h.maxStart > g.maxStart {
		g.maxStart = h.maxStart
	}
	g.blocks = append(g.blocks, b)
	g.size += h.size()
	g.spans += int64(h.spans)
	return b
}

// loadSegment reads a segment's headers and trace tables. The first block
// that is short, has a bad header or trace table, or (being the last) a
// bad payload checksum, is cut off the file with everything after it: a
// crash while appending leaves such a tail. It returns the number of
// bytes cut.
func (s *Store) loadSegment(path string, key int64, seq int) (*segment, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("opening segment %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("reading segment %s: %w", path, err)
	}
	g := &segment{key: key, seq: seq, path: path}
	end := st.Size()
	var why error
	for g.size < end {
		h, table, err := s.scanBlock(f, g.size, end)
		if err != nil {
			why = err
			break
		}
		g.addBlock(h, table)
	}
	if why == nil {
		return g, 0, nil
	}
	if !errors.Is(why, errCorrupt) {
		return nil, 0, fmt.Errorf("reading segment %s at %d: %w", path, g.size, why)
	}
	cut := end - g.size
	if err := f.Truncate(g.size); err != nil {
		return nil, 0, fmt.Errorf("cutting the corrupt tail of segment %s at %d: %w", path, g.size, err)
	}
	s.log.Warn("trace store: cut a corrupt or truncated tail", "segment", filepath.Base(path), "offset", g.size, "bytes", cut, "cause", why.Error())
	return g, cut, nil
}

// scanBlock reads and checks the block at off of a file of end bytes.
func (s *Store) scanBlock(f *os.File, off, end int64) (header, []traceEntry, error) {
	var hb [headerSize]byte
	if end-off < headerSize {
		return header{}, nil, corruptf("%d bytes left, less than a header", end-off)
	}
	if _, err := f.ReadAt(hb[:], off); err != nil {
		return header{}, nil, err
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return h, nil, err
	}
	if off+h.size() > end {
		return h, nil, corruptf("block of %d bytes, %d left in the file", h.size(), end-off)
	}
	zt := make([]byte, h.tableLen)
	if _, err := f.ReadAt(zt, off+headerSize); err != nil {
		return h, nil, err
	}
	table, err := s.c.table(&h, zt)
	if err != nil {
		return h, nil, err
	}
	if off+h.size() == end {
		zp := make([]byte, h.payLen)
		if _, err := f.ReadAt(zp, off+headerSize+int64(h.tableLen)); err != nil {
			return h, nil, err
		}
		if got := crc32Checksum(zp); got != h.payloadCRC {
			return h, nil, corruptf("payload checksum %08x, want %08x", got, h.payloadCRC)
		}
	}
	return h, table, nil
}

// readSection reads n bytes at off of a block's file. A segment deleted
// by retention meanwhile reads as fs.ErrNotExist.
func readSection(path string, off int64, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, corruptf("%s is shorter than its index says", filepath.Base(path))
		}
		return nil, err
	}
	return b, nil
}

// appendBlock appends a block to the segment's file, creating it. On a
// failed or short write the file is cut back so that no partial block
// stays.
func appendBlock(g *segment, b []byte) error {
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening segment %s: %w", filepath.Base(g.path), err)
	}
	_, err = f.WriteAt(b, g.size)
	if err != nil {
		_ = f.Truncate(g.size)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing segment %s: %w", filepath.Base(g.path), err)
	}
	return nil
}

// syncFile flushes a file to disk; a missing file is not an error.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
