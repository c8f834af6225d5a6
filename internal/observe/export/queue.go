package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// segment is one file of a queue: the records with sequence numbers in
// [first, next), in order, size bytes long (magic included).
type segment struct {
	first, next uint64
	size        int64
	path        string
}

// queue is one signal's persistent queue: segment files in dir, oldest
// first, and an ack file holding the sequence number of the oldest record
// not yet delivered (or dropped). Its methods are safe for concurrent use;
// one goroutine reads and acks, any number append.
type queue struct {
	dir      string
	signal   string // for logs
	maxBytes int64
	segBytes int64 // a segment is closed once it holds this much
	log      *slog.Logger
	ready    chan struct{} // cap 1: a record was appended

	mu      sync.Mutex // guards what follows
	segs    []*segment // oldest first; segs[0] holds head unless empty
	active  *os.File   // appending to the last segment; nil: open a new one
	head    uint64     // the oldest record still queued
	headOff int64      // its offset in segs[0]
	next    uint64     // the sequence number of the next record appended
	bytes   int64      // queued, headers included
	ackFile *os.File
	ackNext int    // the ack slot to write next
	acked   uint64 // head as last written to the ack file
	closed  bool
}

// batch is a run of consecutive records read from one segment.
type batch struct {
	first   uint64 // sequence number of the first record
	n       uint64 // records
	size    int64  // bytes they occupy, headers included
	payload []byte // their payloads, concatenated
}

// segmentSize picks the segment size for a queue of maxBytes: small enough
// that dropping the oldest segment when full drops a small part of the
// queue, large enough that files are few.
func segmentSize(maxBytes int64) int64 {
	return min(max(maxBytes/16, 4<<10), 16<<20)
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

// append queues rec, a record whose header sealRecord is yet to fill
// (pcrc is its payload's checksum), dropping the oldest segments when the
// queue would exceed maxBytes. It returns how many records it dropped.
func (q *queue) append(rec []byte, pcrc uint32) (dropped uint64, err error) {
	size := int64(len(rec))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, ErrStopped
	}
	for q.bytes+size > q.maxBytes && len(q.segs) > 0 {
		dropped += q.dropOldestLocked()
	}
	if q.active != nil && q.segs[len(q.segs)-1].size >= q.segBytes {
		q.rotateLocked()
	}
	if q.active == nil {
		if err := q.openSegmentLocked(); err != nil {
			return dropped, err
		}
	}
	s := q.segs[len(q.segs)-1]
	sealRecord(rec, q.next, pcrc)
	if _, err := q.active.Write(rec); err != nil {
		// Cut what may have been written, or failing that start a new
		// segment, so that nothing follows a half-written record.
		if q.active.Truncate(s.size) != nil {
			q.rotateLocked()
		}
		return dropped, fmt.Errorf("appending to the %s queue: %w", q.signal, err)
	}
	s.size += size
	s.next++
	q.next++
	q.bytes += size
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped, nil
}

func (q *queue) openSegmentLocked() error {
	path := filepath.Join(q.dir, segmentName(q.next))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("creating a %s queue segment: %w", q.signal, err)
	}
	if _, err := f.WriteString(segmentMagic); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("creating a %s queue segment: %w", q.signal, err)
	}
	if len(q.segs) == 0 {
		q.head, q.headOff = q.next, magicLen
	}
	q.segs = append(q.segs, &segment{first: q.next, next: q.next, size: magicLen, path: path})
	q.active = f
	return nil
}

// rotateLocked closes the segment being appended to; the next append
// opens a new one.
func (q *queue) rotateLocked() {
	if q.active == nil {
		return
	}
	if err := q.active.Close(); err != nil {
		q.log.Warn("closing export queue segment", "signal", q.signal, "err", err)
	}
	q.active = nil
	// A segment left without a record (a write failed) goes, so that its
	// name is free for the next segment, which starts at the same number.
	if last := q.segs[len(q.segs)-1]; last.next == last.first {
		if err := os.Remove(last.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.log.Warn("removing export queue segment", "signal", q.signal, "err", err)
		}
		q.segs = q.segs[:len(q.segs)-1]
		if len(q.segs) == 0 {
			q.head = q.next
		}
	}
	q.trimLocked()
}

// dropOldestLocked drops the oldest segment and returns how many queued
// records it held.
func (q *queue) dropOldestLocked() uint64 {
	if len(q.segs) == 1 {
		q.rotateLocked()
		if len(q.segs) == 0 {
			return 0
		}
	}
	s := q.segs[0]
	n := s.next - q.head
	q.bytes -= s.size - q.headOff
	q.head, q.headOff = s.next, s.size
	q.removeFirstLocked()
	return n
}

// trimLocked removes the segments before head, except the one being
// appended to.
func (q *queue) trimLocked() {
	for len(q.segs) > 0 && q.head >= q.segs[0].next && !(len(q.segs) == 1 && q.active != nil) {
		q.removeFirstLocked()
	}
}

func (q *queue) removeFirstLocked() {
	if err := os.Remove(q.segs[0].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.log.Warn("removing export queue segment", "signal", q.signal, "err", err)
	}
	q.segs = q.segs[1:]
	if len(q.segs) > 0 {
		q.head, q.headOff = max(q.head, q.segs[0].first), magicLen
	} else {
		q.head = q.next
	}
}

// read returns up to maxBytes of payload from the oldest records (always
// at least one record), or nil when the queue is empty. Records it cannot
// read back (damaged, or their file gone) are dropped: it returns how
// many. err is a failure to open a segment, which may pass.
func (q *queue) read(maxBytes int) (b *batch, corrupt uint64, err error) {
	for {
		q.mu.Lock()
		if q.head == q.next || len(q.segs) == 0 {
			q.mu.Unlock()
			return nil, corrupt, nil
		}
		s := q.segs[0]
		first, off, end, path := q.head, q.headOff, s.size, s.path
		q.mu.Unlock()

		b, err := readBatch(path, first, off, end, maxBytes)
		switch {
		case err == nil:
			return b, corrupt, nil
		case errors.Is(err, fs.ErrNotExist):
			// Dropped to make room meanwhile, or deleted by someone else.
			q.log.Warn("export queue segment missing", "signal", q.signal, "file", path)
		case !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt):
			return nil, corrupt, fmt.Errorf("reading the %s queue: %w", q.signal, err)
		default:
			q.log.Warn("dropping unreadable records from the export queue", "signal", q.signal, "file", path, "err", err)
		}
		corrupt += q.skipSegment(first)
	}
}

// readBatch reads records from path between off and end, starting with
// sequence number first, until they hold maxBytes. It returns an error
// only if it could not read one record; a problem after the first record
// ends the batch early and shows up on the next read.
func readBatch(path string, first uint64, off, end int64, maxBytes int) (*batch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, end-off), 64<<10)
	b := &batch{first: first}
	for {
		size, err := peekRecordLen(r)
		if err == io.EOF || (err == nil && b.n > 0 && len(b.payload)+size-recordHeader > maxBytes) {
			break
		}
		var seq uint64
		var payload []byte
		if err == nil {
			seq, payload, err = readRecord(r, b.payload)
		}
		if err == nil && seq != first+b.n {
			err = fmt.Errorf("%w: sequence number %d where %d was expected", errCorrupt, seq, first+b.n)
		}
		if err != nil {
			if b.n > 0 {
				break
			}
			return nil, err
		}
		b.payload = payload
		b.n++
		b.size += int64(size)
	}
	if b.n == 0 {
		return nil, fmt.Errorf("%w: no record where one was expected", errTorn)
	}
	return b, nil
}

// skipSegment drops the records of the oldest segment from first on, and
// returns how many.
func (q *queue) skipSegment(first uint64) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head != first || len(q.segs) == 0 {
		return 0 // dropped meanwhile
	}
	if len(q.segs) == 1 {
		// Nothing may be appended after the damage: a restart would cut it.
		q.rotateLocked()
		if len(q.segs) == 0 {
			return 0
		}
	}
	n := q.dropOldestLocked()
	q.writeAckLocked(false)
	return n
}

// ack removes b, delivered or given up, from the queue and records that
// in the ack file. A batch dropped meanwhile is ignored.
func (q *queue) ack(b *batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head != b.first || q.closed {
		return
	}
	q.head += b.n
	q.headOff += b.size
	q.bytes -= b.size
	q.trimLocked()
	q.writeAckLocked(false)
}

// writeAckLocked records head in the ack file if it moved (or always,
// with force). It is not fsynced: a crash may lose it, and then the
// batches after the one recorded are sent again.
func (q *queue) writeAckLocked(force bool) {
	if q.head == q.acked && !force || q.closed {
		return
	}
	if err := writeAck(q.ackFile, q.ackNext, q.head); err != nil {
		q.log.Warn("writing export queue ack", "signal", q.signal, "err", err)
		return
	}
	q.ackNext ^= 1
	q.acked = q.head
}

// pending returns the records and bytes queued.
func (q *queue) pending() (records, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, s := range q.segs {
		from := s.first
		if i == 0 {
			from = q.head
		}
		records += int64(s.next - from)
	}
	return records, q.bytes
}

// close syncs the segment being appended to and the ack file; append
// fails after it.
func (q *queue) close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	var errs []error
	if q.active != nil {
		if err := q.active.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("syncing the %s queue: %w", q.signal, err))
		}
		if err := q.active.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the %s queue: %w", q.signal, err))
		}
		q.active = nil
	}
	q.writeAckLocked(false)
	q.closed = true
	if err := q.ackFile.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("syncing the %s queue ack: %w", q.signal, err))
	}
	if err := q.ackFile.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the %s queue ack: %w", q.signal, err))
	}
	if err := syncDir(q.dir); err != nil {
		errs = append(errs, fmt.Errorf("syncing the %s queue directory: %w", q.signal, err))
	}
	return errors.Join(errs...)
}
