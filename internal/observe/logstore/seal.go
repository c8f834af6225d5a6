package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sealed is one partition's share of a seal, not yet visible.
type sealed struct {
	p       *partition
	created bool
	oldSize int64
	size    int64
	metas   []*blockMeta
}

// seal writes the head into the partitions as sorted, zstd-compressed
// blocks of at most BlockRecords, syncs them, and then, in one step, makes
// the blocks visible and empties the head. If anything fails, the files
// are cut back to what they were and the head stays (the write-ahead log
// still holds it), so a later seal writes it once.
func (s *Store) seal() error {
	if len(s.head) == 0 {
		return nil
	}
	now := s.opt.Now()
	s.state.RLock()
	floor := s.floor
	s.state.RUnlock()
	recs := s.sealBuf[:0]
	for i := range s.head {
		if s.admit(s.head[i].Time, now, floor) {
			recs = append(recs, s.head[i])
		} else {
			s.dropped.Add(1)
		}
	}
	defer func() {
		clear(recs)
		s.sealBuf = recs[:0]
	}()
	slices.SortStableFunc(recs, func(a, b Record) int { return a.Time.Compare(b.Time) })
	var out []*sealed
	err := s.writeBlocks(recs, &out)
	if err == nil {
		for _, w := range out {
			if err = syncFile(w.p.path); err != nil {
				break
			}
		}
	}
	if err == nil && slices.ContainsFunc(out, func(w *sealed) bool { return w.created }) {
		err = syncFile(s.dir)
	}
	if err != nil {
		for _, w := range out {
			if w.created {
				os.Remove(w.p.path)
			} else {
				os.Truncate(w.p.path, w.oldSize)
			}
		}
		if n := len(s.head); n > 4*s.opt.BlockRecords {
			// The disk keeps refusing: bound the memory.
			s.dropped.Add(int64(n))
			s.state.Lock()
			s.head, s.headBytes = nil, 0
			s.headGen++
			s.state.Unlock()
			if s.wal != nil {
				s.wal.Truncate(0)
			}
			s.log.Error("log store: dropped the unsealed records", "dir", s.dir, "records", n, "err", err)
		}
		return fmt.Errorf("sealing %d records: %w", len(recs), err)
	}
	s.state.Lock()
	for _, w := range out {
		if w.created {
			s.parts = append(s.parts, w.p)
			sortParts(s.parts)
		}
		for _, m := range w.metas {
			m.seq = s.nextSeq()
		}
		w.p.blocks = append(w.p.blocks, w.metas...)
		w.p.size = w.size
		w.p.maxGen = max(w.p.maxGen, s.headGen)
	}
	s.head, s.headBytes = nil, 0
	s.headGen++
	s.state.Unlock()
	if s.wal != nil {
		err = s.wal.Truncate(0)
	} else if err = os.Remove(filepath.Join(s.dir, walName)); errors.Is(err, os.ErrNotExist) {
		err = nil // nothing was replayed
	}
	if err != nil {
		return fmt.Errorf("emptying write-ahead log: %w", err)
	}
	s.state.Lock()
	s.walSize = 0
	s.state.Unlock()
	return nil
}

// writeBlocks appends recs (sorted by time) to their partitions' files.
func (s *Store) writeBlocks(recs []Record, out *[]*sealed) error {
	byStart := map[time.Time]*sealed{}
	for i := 0; i < len(recs); {
		start := recs[i].Time.Truncate(s.opt.Partition)
		j := i + 1
		for j < len(recs) && j-i < s.opt.BlockRecords && recs[j].Time.Truncate(s.opt.Partition).Equal(start) {
			j++
		}
		w := byStart[start]
		if w == nil {
			s.state.RLock()
			p := s.partitionOf(start)
			s.state.RUnlock()
			w = &sealed{p: p}
			if p == nil {
				w.p = &partition{start: start, span: s.opt.Partition, path: filepath.Join(s.dir, partName(start, s.opt.Partition))}
				w.created = true
			} else {
				w.oldSize = p.size
			}
			w.size = w.oldSize
			byStart[start] = w
			*out = append(*out, w)
		}
		body, rawLen := s.enc.encode(recs[i:j])
		m := &blockMeta{}
		idx := buildIndex(recs[i:j], codecZstd, s.headGen, rawLen, m)
		s.buf = appendFrame(s.buf[:0], idx, body)
		m.path, m.off = w.p.path, w.size
		setFrameFields(m, s.buf)
		if err := appendFile(w.p.path, s.buf, w.created && w.size == 0); err != nil {
			return err
		}
		w.size += int64(len(s.buf))
		w.metas = append(w.metas, m)
		i = j
	}
	return nil
}

// setFrameFields copies the lengths and checksums of a frame's header into m.
func setFrameFields(m *blockMeta, frame []byte) {
	m.idxLen = binary.LittleEndian.Uint32(frame[4:])
	m.bodyLen = binary.LittleEndian.Uint32(frame[8:])
	m.idxCRC = binary.LittleEndian.Uint32(frame[12:])
	m.bodyCRC = binary.LittleEndian.Uint32(frame[16:])
}

func appendFile(path string, b []byte, create bool) error {
	flags := os.O_WRONLY | os.O_APPEND
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("writing partition %s: %w", path, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing partition %s: %w", path, err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}

// parsePartName reads "20261206T100000Z-3600s.lgs".
func parsePartName(name string) (time.Time, time.Duration, bool) {
	base, ok := strings.CutSuffix(name, partExt)
	ts, span, ok2 := strings.Cut(base, "-")
	secs, ok3 := strings.CutSuffix(span, "s")
	if !ok || !ok2 || !ok3 {
		return time.Time{}, 0, false
	}
	t, err := time.Parse(partTime, ts)
	n, err2 := strconv.ParseInt(secs, 10, 64)
	if err != nil || err2 != nil || n <= 0 || n > 366*24*3600 {
		return time.Time{}, 0, false
	}
	return t, time.Duration(n) * time.Second, true
}

// load reads the partitions' indexes, cutting torn tails, and replays the
// write-ahead log into the head.
func (s *Store) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("opening log store %s: %w", s.dir, err)
	}
	var gen uint64
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), partExt) {
			continue
		}
		path := filepath.Join(s.dir, e.Name())
		start, span, ok := parsePartName(e.Name())
		if !ok {
			s.log.Warn("log store: skipping a file with an unknown name", "path", path)
			continue
		}
		metas, size, err := s.scanFile(path, false, nil)
		if err != nil {
			s.log.Warn("log store: skipping partition", "path", path, "err", err)
			continue
		}
		p := &partition{start: start, span: span, path: path, size: size}
		for _, m := range metas {
			m.seq = s.nextSeq()
			p.maxGen = max(p.maxGen, m.gen)
			gen = max(gen, m.gen)
		}
		p.blocks = metas
		s.parts = append(s.parts, p)
	}
	sortParts(s.parts)
	walPath := filepath.Join(s.dir, walName)
	var bodies [][]byte
	metas, size, err := s.scanFile(walPath, true, &bodies)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("log store: skipping write-ahead log", "path", walPath, "err", err)
	}
	s.walSize = size
	for i, m := range metas {
		gen = max(gen, m.gen)
		recs, err := s.dec.decode(bodies[i])
		if err != nil {
			s.corrupt.Add(1)
			s.log.Warn("log store: skipping a block of the write-ahead log", "path", walPath, "offset", m.off, "err", err)
			continue
		}
		for _, r := range recs {
			if !s.sealedIn(r.Time, m.gen) {
				s.head = append(s.head, r)
				s.headBytes += recordSize(&r)
			}
		}
	}
	s.headGen = gen + 1
	return nil
}

// sealedIn reports whether a partition holding t was sealed from head
// generation gen or a later one (so the record is already in it).
func (s *Store) sealedIn(t time.Time, gen uint64) bool {
	for _, p := range s.parts {
		if !t.Before(p.start) && t.Before(p.end()) && p.maxGen >= gen {
			return true
		}
	}
	return false
}

// scanFile reads a file's frame indexes, cutting off a torn or corrupt
// tail with a warning.
func (s *Store) scanFile(path string, wantBodies bool, bodies *[][]byte) ([]*blockMeta, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	size, err := fileSize(f)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	metas, bs, end, err := scanFrames(f, path, size, wantBodies)
	if bodies != nil {
		*bodies = bs
	}
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			return nil, 0, err
		}
		s.log.Warn("log store: cutting off a torn or corrupt end", "path", path, "offset", end, "bytes", size-end, "err", err)
		s.corrupt.Add(1)
		if terr := f.Truncate(end); terr != nil {
			return nil, 0, fmt.Errorf("cutting %s at %d: %w", path, end, terr)
		}
	}
	return metas, end, nil
}
