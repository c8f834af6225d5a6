package logstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Options tune a Store; zero values take the defaults.
type Options struct {
	Partition  time.Duration // span of one partition (default 1h; whole seconds, at least 1s)
	MaxAge     time.Duration // retention by age (default 7 days); 0 = default, <0 = off
	MaxBytes   int64         // retention by total size (default 1 GiB); <0 = off
	MaxLine    int           // longer lines are cut (default 64 KiB) and marked truncated
	FlushEvery time.Duration // buffered records become durable+queryable at least this often (default 1s)
	Now        func() time.Time
	Logger     *slog.Logger
	// BlockRecords is how many records the head holds before they are
	// sealed into compressed blocks (default 16384).
	BlockRecords int
}

// The defaults of Options.
const (
	DefaultPartition    = time.Hour
	DefaultMaxAge       = 7 * 24 * time.Hour
	DefaultMaxBytes     = 1 << 30
	DefaultMaxLine      = 64 << 10
	DefaultFlushEvery   = time.Second
	DefaultBlockRecords = 16384
)

const (
	walName     = "head.wal"
	lockName    = "LOCK"
	partExt     = ".lgs"
	partTime    = "20060102T150405Z"
	maxFuture   = 24 * time.Hour // records stamped later than now+this are refused
	maxHeadSize = 8 << 20        // estimated bytes of the head that make it seal early
)

// ErrClosed is returned by the methods of a closed Store.
var ErrClosed = errors.New("log store closed")

// Store is an embedded log store in one directory. Its methods are safe
// for concurrent use.
type Store struct {
	dir  string
	opt  Options
	log  *slog.Logger
	lock *os.File
	zdec *zstd.Decoder // DecodeAll is safe for concurrent use
	dec  decoder

	// Appended records waiting for the writer.
	mu      sync.Mutex
	cond    *sync.Cond // signalled when pending is taken or the store closes
	pending []Record
	spare   []Record
	arena   []Access
	kicked  bool
	closed  bool

	// What queries see; changed by the writer goroutine only.
	state     sync.RWMutex
	parts     []*partition // by start
	head      []Record     // flushed, not yet sealed; never changed in place
	headBytes int
	headGen   uint64
	floor     time.Time // records before it are refused (their partition was removed)
	followers map[*follower]struct{}
	// followClosed: the store is closing; Follow refuses new followers.
	followClosed bool
	seq          uint64
	walSize      int64

	// The writer goroutine's own.
	wal     *os.File
	enc     *encoder // zstd, for partitions
	walEnc  *encoder // S2, for the write-ahead log
	buf     []byte
	sealBuf []Record

	kick     chan struct{}
	flushReq chan chan error
	closing  chan struct{}
	stopped  chan struct{}
	closeErr error
	once     sync.Once

	dropped, truncated, corrupt, removed atomic.Int64
}

// partition is one file of blocks covering [start, start+span).
type partition struct {
	start  time.Time
	span   time.Duration
	path   string
	size   int64
	blocks []*blockMeta
	maxGen uint64
}

func (p *partition) end() time.Time { return p.start.Add(p.span) }

func partName(start time.Time, span time.Duration) string {
	return fmt.Sprintf("%s-%ds%s", start.UTC().Format(partTime), int64(span/time.Second), partExt)
}

// Open opens the store in dir, creating it if needed. A torn block at the
// end of a file (a crash) is cut off with a warning; a file that cannot be
// read is skipped with a warning. Only one Store may have dir open.
func Open(dir string, opt Options) (*Store, error) {
	if opt.Partition <= 0 {
		opt.Partition = DefaultPartition
	}
	opt.Partition = max(opt.Partition.Truncate(time.Second), time.Second)
	if opt.MaxAge == 0 {
		opt.MaxAge = DefaultMaxAge
	}
	if opt.MaxBytes == 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxLine <= 0 {
		opt.MaxLine = DefaultMaxLine
	}
	opt.MaxLine = max(opt.MaxLine, 64)
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = DefaultFlushEvery
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.BlockRecords <= 0 {
		opt.BlockRecords = DefaultBlockRecords
	}
	opt.BlockRecords = min(opt.BlockRecords, maxBlockRecords)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening log store %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log store %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening log store %s: in use by another process: %w", dir, err)
	}
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxRawBlock), zstd.WithDecoderConcurrency(2))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening log store %s: %w", dir, err)
	}
	// Every stream gets entropy coding even without matches: byte planes
	// of numbers have none but are skewed (see doc.go).
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(4<<20), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening log store %s: %w", dir, err)
	}
	s := &Store{dir: dir, opt: opt, log: opt.Logger, lock: lock, zdec: zdec, dec: decoder{zdec}, enc: newEncoder(zenc), walEnc: newEncoder(nil),
		followers: map[*follower]struct{}{}, kick: make(chan struct{}, 1), flushReq: make(chan chan error),
		closing: make(chan struct{}), stopped: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	s.retain()
	go s.run()
	return s, nil
}

// Append adds records. It copies them (and their Access) into a bounded
// buffer that the writer goroutine takes at least every FlushEvery; it
// waits only when that buffer is full. A zero Time is taken as now.
func (s *Store) Append(recs ...Record) error {
	var now time.Time
	s.mu.Lock()
	defer s.mu.Unlock()
	hard := 4 * s.flushAt()
	for len(s.pending) >= hard && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		return ErrClosed
	}
	for _, r := range recs {
		if r.Time.IsZero() {
			if now.IsZero() {
				now = s.opt.Now()
			}
			r.Time = now
		}
		if r.Access != nil {
			if len(s.arena) == 0 {
				s.arena = make([]Access, 512)
			}
			a := &s.arena[0]
			s.arena = s.arena[1:]
			*a = *r.Access
			r.Access = a
		}
		s.pending = append(s.pending, r)
	}
	if len(s.pending) >= s.flushAt() && !s.kicked {
		s.kicked = true
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *Store) flushAt() int { return min(4096, s.opt.BlockRecords) }

// Flush makes everything appended so far durable and queryable.
func (s *Store) Flush() error {
	done := make(chan error, 1)
	select {
	case s.flushReq <- done:
		return <-done
	case <-s.stopped:
		return ErrClosed
	}
}

// Close flushes, seals the head into blocks and closes the store.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.cond.Broadcast()
		s.mu.Unlock()
		close(s.closing)
		<-s.stopped
		s.zdec.Close()
		if err := s.lock.Close(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("closing log store %s: %w", s.dir, err)
		}
	})
	return s.closeErr
}

// run is the writer goroutine: it moves appended records to the
// write-ahead log and the head, seals full heads into partitions, and
// applies retention.
func (s *Store) run() {
	defer close(s.stopped)
	tick := time.NewTicker(s.opt.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.logErr(s.flush())
			s.retain()
		case <-s.kick:
			s.logErr(s.flush())
		case done := <-s.flushReq:
			done <- s.flush()
		case <-s.closing:
			s.closeErr = errors.Join(s.flush(), s.seal())
			if s.closeErr == nil {
				s.closeErr = s.dropWAL()
			} else if s.wal != nil {
				s.wal.Close()
			}
			s.state.Lock()
			s.followClosed = true
			for f := range s.followers {
				close(f.ch)
				delete(s.followers, f)
			}
			s.state.Unlock()
			return
		}
	}
}

func (s *Store) logErr(err error) {
	if err != nil {
		s.log.Warn("log store", "dir", s.dir, "err", err)
	}
}

// flush moves the pending records to the write-ahead log (synced) and the
// head, where queries and followers see them, and seals a full head.
func (s *Store) flush() error {
	s.mu.Lock()
	batch := s.pending
	s.pending, s.spare = s.spare[:0], nil
	s.kicked = false
	s.cond.Broadcast()
	s.mu.Unlock()
	defer func() {
		clear(batch)
		s.mu.Lock()
		s.spare = batch[:0]
		s.mu.Unlock()
	}()
	now := s.opt.Now()
	s.state.RLock()
	floor := s.floor
	s.state.RUnlock()
	keep := batch[:0]
	size := 0
	for _, r := range batch {
		r.Time = time.UnixMicro(r.Time.UnixMicro()).UTC()
		if !s.admit(r.Time, now, floor) {
			s.dropped.Add(1)
			continue
		}
		r.sanitize(s.opt.MaxLine)
		if r.Truncated {
			s.truncated.Add(1)
		}
		size += recordSize(&r)
		keep = append(keep, r)
	}
	if len(keep) == 0 {
		return nil
	}
	err := s.writeWAL(keep)
	s.state.Lock()
	from := len(s.head)
	s.head = append(s.head, keep...)
	s.headBytes += size
	added := s.head[from:len(s.head):len(s.head)]
	for f := range s.followers {
		select {
		case f.ch <- added:
		default:
			f.missed.Add(int64(len(added)))
		}
	}
	s.state.Unlock()
	if len(s.head) >= s.opt.BlockRecords || s.headBytes >= maxHeadSize {
		err = errors.Join(err, s.seal())
	}
	return err
}

// admit reports whether a record stamped t is kept: not older than the
// retention nor than a removed partition, and not far in the future.
func (s *Store) admit(t, now, floor time.Time) bool {
	return !(s.opt.MaxAge > 0 && t.Before(now.Add(-s.opt.MaxAge)) || t.Before(floor) || t.After(now.Add(maxFuture)))
}

func recordSize(r *Record) int {
	n := 96 + len(r.App) + len(r.Stream) + len(r.Sandbox) + len(r.TraceID) + len(r.SpanID) + len(r.Severity) + len(r.Line)
	if a := r.Access; a != nil {
		n += 128 + len(a.Path) + len(a.UserAgent) + len(a.Referer) + len(a.Host)
	}
	return n
}

// writeWAL appends recs to the write-ahead log as one S2-compressed block
// and syncs it. On error the records stay in the head (queryable) but are
// not durable until the head is sealed.
func (s *Store) writeWAL(recs []Record) error {
	if s.wal == nil {
		f, err := os.OpenFile(filepath.Join(s.dir, walName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("opening write-ahead log: %w", err)
		}
		s.wal = f
	}
	body, rawLen := s.walEnc.encode(recs)
	var m blockMeta
	idx := buildIndex(recs, codecS2, s.headGen, rawLen, &m)
	s.buf = appendFrame(s.buf[:0], idx, body)
	n, err := s.wal.Write(s.buf)
	s.state.Lock()
	s.walSize += int64(n)
	s.state.Unlock()
	if err == nil {
		err = s.wal.Sync()
	}
	if err != nil {
		return fmt.Errorf("writing write-ahead log: %w", err)
	}
	return nil
}

// dropWAL removes the write-ahead log once the head is sealed.
func (s *Store) dropWAL() error {
	if s.wal != nil {
		s.wal.Close()
		s.wal = nil
	}
	if err := os.Remove(filepath.Join(s.dir, walName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing write-ahead log: %w", err)
	}
	s.state.Lock()
	s.walSize = 0
	s.state.Unlock()
	return nil
}

// nextSeq numbers blocks in the order they became visible. Called with
// s.state held for writing, or before the store is shared.
func (s *Store) nextSeq() uint64 {
	s.seq++
	return s.seq
}

// partitionOf returns the existing partition of the current span starting
// at start, or nil.
func (s *Store) partitionOf(start time.Time) *partition {
	for _, p := range s.parts {
		if p.start.Equal(start) && p.span == s.opt.Partition {
			return p
		}
	}
	return nil
}

func sortParts(ps []*partition) {
	slices.SortStableFunc(ps, func(a, b *partition) int { return a.start.Compare(b.start) })
}
