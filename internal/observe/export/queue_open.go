package export

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The ack file holds the sequence number of the oldest record not yet
// delivered, in two 12-byte slots written in turn in place: 8 bytes little
// endian, then their CRC-32C. A write torn by a crash spoils one slot at
// most; the valid slot with the larger number is the current one (the
// number only grows).
const (
	ackName = "ack"
	ackSlot = 12
)

func openAckFile(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, ackName), os.O_CREATE|os.O_RDWR, 0o600)
}

// writeAck writes head into slot (0 or 1) of f.
func writeAck(f *os.File, slot int, head uint64) error {
	var b [ackSlot]byte
	binary.LittleEndian.PutUint64(b[:], head)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	_, err := f.WriteAt(b[:], int64(slot*ackSlot))
	return err
}

// readAck returns the sequence number in f; ok is false when there is
// none. errCorrupt means neither slot is valid: then every queued record
// is sent again.
func readAck(f *os.File) (head uint64, ok bool, err error) {
	var b [2 * ackSlot]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && err != io.EOF {
		return 0, false, err
	}
	if n == 0 {
		return 0, false, nil // new, or created just before a crash
	}
	for i := 0; i+ackSlot <= n; i += ackSlot {
		s := b[i : i+ackSlot]
		if binary.LittleEndian.Uint32(s[8:]) == crc32.Checksum(s[:8], castagnoli) {
			head, ok = max(head, binary.LittleEndian.Uint64(s)), true
		}
	}
	if !ok {
		return 0, false, errCorrupt
	}
	return head, true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openStats is what openQueue found wrong.
type openStats struct {
	corrupt uint64 // damaged regions cut from segment files
	full    uint64 // records dropped to fit maxBytes
}

// openQueue opens the queue in dir, creating it if need be. It checks
// every segment, cuts a segment at its first damaged record (a torn tail
// after a crash, usually) with a warning, and deletes the segments that
// were delivered. New records go to a new segment.
func openQueue(dir, signal string, maxBytes int64, log *slog.Logger) (*queue, openStats, error) {
	var st openStats
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, st, fmt.Errorf("creating the %s queue: %w", signal, err)
	}
	q := &queue{
		dir: dir, signal: signal, maxBytes: maxBytes, segBytes: segmentSize(maxBytes),
		log: log, ready: make(chan struct{}, 1),
	}
	af, err := openAckFile(dir)
	if err != nil {
		return nil, st, fmt.Errorf("opening the %s queue ack: %w", signal, err)
	}
	head, _, err := readAck(af)
	if err != nil && !errors.Is(err, errCorrupt) {
		af.Close()
		return nil, st, fmt.Errorf("reading the %s queue ack: %w", signal, err)
	}
	q.ackFile = af
	if err != nil {
		log.Warn("export queue ack damaged; resending what is queued", "signal", signal)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		af.Close()
		return nil, st, fmt.Errorf("listing the %s queue: %w", signal, err)
	}
	var found []*segment
	for _, ent := range ents {
		name := ent.Name()
		num, isSeg := strings.CutSuffix(name, ".seg")
		first, err := strconv.ParseUint(num, 10, 64)
		if !isSeg || err != nil || !ent.Type().IsRegular() {
			continue
		}
		found = append(found, &segment{first: first, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(found, func(a, b *segment) int { return cmpUint(a.first, b.first) })

	maxNext := head
	for _, s := range found {
		headOff, cut, err := scanSegment(s, head)
		if err != nil {
			af.Close()
			return nil, st, fmt.Errorf("reading the %s queue: %w", signal, err)
		}
		if cut != nil {
			st.corrupt++
			log.Warn("export queue segment damaged; dropping its tail", "signal", signal, "file", s.path, "kept_bytes", s.size, "err", cut)
			if err := os.Truncate(s.path, s.size); err != nil {
				log.Warn("cutting export queue segment", "signal", signal, "file", s.path, "err", err)
			}
		}
		maxNext = max(maxNext, s.next)
		last := len(q.segs) - 1
		switch {
		case s.next == s.first || s.next <= head:
			os.Remove(s.path) // empty or delivered
		case last >= 0 && s.first < q.segs[last].next:
			st.corrupt++
			log.Warn("export queue segment overlaps the one before; dropping it", "signal", signal, "file", s.path)
			os.Remove(s.path)
		default:
			if len(q.segs) == 0 {
				q.headOff = headOff
			}
			q.segs = append(q.segs, s)
		}
	}
	q.next = maxNext
	q.head = q.next
	if len(q.segs) > 0 {
		q.head = max(head, q.segs[0].first)
		if head < q.segs[0].first {
			q.headOff = magicLen
		}
		q.bytes = -(q.headOff - magicLen)
		for _, s := range q.segs {
			q.bytes += s.size - magicLen
		}
	}
	for q.bytes > maxBytes && len(q.segs) > 0 {
		st.full += q.dropOldestLocked()
	}
	q.writeAckLocked(true)
	return q, st, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scanSegment reads s.path, setting s.next and s.size to those of its
// valid records, and returns the offset of the record with sequence number
// head (or s.size when head is not in it). cut is the damage that ended
// the valid part early, if any; err a failure to read the file at all.
func scanSegment(s *segment, head uint64) (headOff int64, cut, err error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	s.next, s.size = s.first, 0
	headOff = -1
	var magic [len(segmentMagic)]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:]) != segmentMagic {
		return 0, fmt.Errorf("%w: no segment header", errCorrupt), nil
	}
	s.size = magicLen
	var buf []byte
	for {
		if s.next == head {
			headOff = s.size
		}
		seq, payload, err := readRecord(r, buf[:0])
		if err == io.EOF {
			break
		}
		if err == nil && seq != s.next {
			err = fmt.Errorf("%w: sequence number %d where %d was expected", errCorrupt, seq, s.next)
		}
		if err != nil {
			cut = err
			break
		}
		buf = payload
		s.next++
		s.size += recordHeader + int64(len(payload))
	}
	if headOff < 0 {
		headOff = s.size
	}
	return headOff, cut, nil
}
