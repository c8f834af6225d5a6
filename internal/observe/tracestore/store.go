package tracestore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"noops/internal/errkind"
)

// Options tune a Store. The zero value gives the defaults.
type Options struct {
	// MaxAge drops a segment once its newest span started longer ago
	// (default 7 days); spans that arrive older than that are not kept.
	MaxAge time.Duration
	// MaxBytes bounds the segments on disk (default 512 MiB): the oldest
	// go first; the newest segment always stays.
	MaxBytes int64
	// Partition is the time span of a partition, by span start (default 1 h).
	Partition time.Duration
	// FlushEvery writes buffered spans at least this often (default 5 s);
	// a crash loses at most that much. Queries see buffered spans too.
	FlushEvery time.Duration
	// MaxBuffer bounds the spans waiting in memory, in estimated bytes
	// (default 32 MiB); past it Add refuses with ErrBusy.
	MaxBuffer int64
	// BlockSpans is the most spans in one block (default 4096); a block
	// is also cut at about 1 MiB of spans.
	BlockSpans int
	// MaxTraceSpans bounds the spans Trace returns (default 10000).
	MaxTraceSpans int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets warnings about corrupt data and failed writes.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 512 << 20
	}
	if o.Partition <= 0 {
		o.Partition = time.Hour
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 5 * time.Second
	}
	if o.MaxBuffer <= 0 {
		o.MaxBuffer = 32 << 20
	}
	if o.BlockSpans <= 0 {
		o.BlockSpans = 4096
	}
	if o.MaxTraceSpans <= 0 {
		o.MaxTraceSpans = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// blockBytes is the estimated size of spans at which a block is cut.
const blockBytes = 1 << 20

// ErrBusy is returned (classified errkind.Unavailable) by Add when more
// spans wait in memory than Options.MaxBuffer allows: the disk is behind
// or failing. The caller should ask its client to retry later.
var ErrBusy = errors.New("the trace store is behind: too many spans wait to be written")

// Store is an embedded trace store. It is safe for concurrent use.
type Store struct {
	dir      string
	opt      Options
	log      *slog.Logger
	c        *codecs
	segBytes int64

	writeMu sync.Mutex // serialises appends and retention

	mu           sync.Mutex // guards what follows
	buf          []*Span
	bufBytes     int64
	bufSince     time.Time // when the oldest buffered span was added
	pending      []*chunk  // cut from buf, not yet written
	pendingBytes int64
	segs         []*segment // oldest partition first, then by sequence
	dirty        map[*segment]bool
	stats        Stats
	failing      bool      // the last write failed
	inflight     int       // chunks being written
	idle         sync.Cond // signalled when inflight drops to 0; L is &mu
	closed       bool

	stop chan struct{}
	done chan struct{}
}

// chunk is spans of one partition that become one block.
type chunk struct {
	key     int64
	spans   []*Span
	bytes   int64
	writing bool // a writer took it (guarded by Store.mu)
}

// Stats counts what the store holds and what it did since Open.
type Stats struct {
	Spans          int64     // on disk
	Blocks         int       // on disk
	Segments       int       // files
	Bytes          int64     // on disk
	Buffered       int       // spans in memory, not yet written
	Oldest, Newest time.Time // smallest and largest span start on disk
	Added          int64     // spans accepted by Add
	Expired        int64     // spans older than MaxAge on arrival, not kept
	Refused        int64     // spans refused with ErrBusy
	Removed        int64     // spans deleted by retention
	CorruptBytes   int64     // bytes cut from corrupt tails at Open
	CorruptBlocks  int64     // blocks that failed their checksum when read
	WriteErrors    int64     // failed appends (the spans stay buffered)
}

// Open opens (creating) the store in dir, reads the index of every
// segment, cuts corrupt tails, applies retention and starts the
// background writer. Close stops it.
func Open(dir string, opt Options) (*Store, error) {
	opt.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the trace store %s: %w", dir, err)
	}
	c, err := newCodecs()
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir: dir, opt: opt, log: opt.Logger, c: c,
		segBytes: min(max(opt.MaxBytes/16, 1<<20), 64<<20),
		dirty:    map[*segment]bool{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.idle.L = &s.mu
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("reading the trace store %s: %w", dir, err)
	}
	for _, e := range entries {
		key, seq, ok := parseSegName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		g, cut, err := s.loadSegment(path, key, seq)
		if err != nil {
			c.close()
			return nil, err
		}
		s.stats.CorruptBytes += cut
		if len(g.blocks) == 0 {
			if err := os.Remove(path); err != nil {
				c.close()
				return nil, fmt.Errorf("removing empty segment %s: %w", path, err)
			}
			continue
		}
		s.segs = append(s.segs, g)
	}
	slices.SortFunc(s.segs, (*segment).compare)
	s.writeMu.Lock()
	s.retain()
	s.writeMu.Unlock()
	go s.run()
	return s, nil
}

// Add buffers spans for writing. A span with a bad trace, span or parent
// ID or no start time makes Add refuse them all (errkind.Invalid); text,
// attributes and events beyond the Max bounds are cut. Spans that started
// longer than MaxAge ago are counted and dropped. When too much waits to
// be written Add refuses with ErrBusy (errkind.Unavailable).
func (s *Store) Add(spans ...Span) error {
	for i := range spans {
		if err := spans[i].check(); err != nil {
			return invalid(fmt.Errorf("adding spans: %w", err))
		}
	}
	oldest := s.opt.Now().Add(-s.opt.MaxAge)
	add := make([]*Span, 0, len(spans))
	var size int64
	for i := range spans {
		if spans[i].Start.Before(oldest) {
			continue
		}
		b := bound(spans[i])
		add = append(add, &b)
		size += int64(b.size())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errkind.Errorf(errkind.Unavailable, "adding spans: the trace store is closed")
	}
	s.stats.Expired += int64(len(spans) - len(add))
	if len(add) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.bufBytes+s.pendingBytes+size > s.opt.MaxBuffer {
		s.stats.Refused += int64(len(add))
		s.mu.Unlock()
		return errkind.E(errkind.Unavailable, fmt.Errorf("adding %d spans: %w", len(add), ErrBusy))
	}
	if len(s.buf) == 0 {
		s.bufSince = s.opt.Now()
	}
	s.buf = append(s.buf, add...)
	s.bufBytes += size
	s.stats.Added += int64(len(add))
	var cut []*chunk
	if len(s.buf) >= s.opt.BlockSpans || s.bufBytes >= blockBytes {
		cut = s.cutLocked()
	}
	s.mu.Unlock()
	if len(cut) > 0 {
		// The caller that fills a block writes it: ingest slows down to
		// what the disk and the compressor take, rather than piling up.
		_ = s.writeChunks(cut) // logged there; retried by the writer
	}
	return nil
}

// partition is the key of the partition a span starting at start (ns)
// goes to; starts in the future go to the partition of now.
func (s *Store) partition(start, now int64) int64 {
	p := int64(s.opt.Partition)
	if start > now {
		start = now
	}
	return start - start%p
}

// cutLocked moves the buffer to pending, as chunks of one partition each
// within the block bounds, and returns them.
func (s *Store) cutLocked() []*chunk {
	if len(s.buf) == 0 {
		return nil
	}
	now := s.opt.Now().UnixNano()
	open := map[int64]*chunk{}
	var cut []*chunk
	for _, sp := range s.buf {
		key := s.partition(sp.Start.UnixNano(), now)
		c := open[key]
		size := int64(sp.size())
		if c == nil || len(c.spans) >= s.opt.BlockSpans || c.bytes+size > blockBytes {
			c = &chunk{key: key}
			open[key] = c
			cut = append(cut, c)
		}
		c.spans = append(c.spans, sp)
		c.bytes += size
	}
	s.pending = append(s.pending, cut...)
	s.pendingBytes += s.bufBytes
	s.buf, s.bufBytes = nil, 0
	return cut
}

// Flush writes every buffered span to disk (not fsynced; Close does),
// retrying chunks whose write failed before, and waits for the writes
// other callers have under way.
func (s *Store) Flush() error {
	s.mu.Lock()
	s.cutLocked()
	todo := slices.Clone(s.pending)
	s.mu.Unlock()
	err := s.writeChunks(todo)
	s.mu.Lock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
	return err
}

// writeChunks writes, in order, the chunks that no other writer has
// taken. Encoding and compression run outside writeMu, so that writers on
// several cores overlap; appends are serialised. A chunk that fails to be
// written stays pending (and visible to queries) for the next try, and
// the chunks after it are left for then too.
func (s *Store) writeChunks(chunks []*chunk) error {
	var err error
	for _, c := range chunks {
		s.mu.Lock()
		if c.writing || !slices.Contains(s.pending, c) {
			s.mu.Unlock()
			continue
		}
		c.writing = true
		s.inflight++
		s.mu.Unlock()

		err = s.writeChunk(c)

		s.mu.Lock()
		c.writing = false
		s.inflight--
		if s.inflight == 0 {
			s.idle.Broadcast()
		}
		if err != nil {
			s.stats.WriteErrors++
			if !s.failing {
				s.log.Error("trace store: writing spans; they stay buffered and are retried", "err", err)
			}
			s.failing = true
		} else if s.failing {
			s.failing = false
			s.log.Info("trace store: writing spans again")
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeChunk encodes a chunk, appends it as a block to its partition's
// last segment (or a new one) and moves it from pending to the index.
func (s *Store) writeChunk(c *chunk) error {
	b, h, table := s.c.encodeBlock(c.spans)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	var g *segment
	seq := 1
	for i := len(s.segs) - 1; i >= 0; i-- {
		if s.segs[i].key == c.key {
			g = s.segs[i]
			break
		}
	}
	if g != nil && g.size+int64(len(b)) > s.segBytes {
		seq, g = g.seq+1, nil
	}
	s.mu.Unlock()
	isNew := g == nil
	if isNew {
		g = &segment{key: c.key, seq: seq, path: filepath.Join(s.dir, segName(c.key, seq))}
	}
	if err := appendBlock(g, b); err != nil {
		return fmt.Errorf("writing %d spans: %w", len(c.spans), err)
	}
	s.mu.Lock()
	g.addBlock(h, table)
	if isNew {
		i, _ := slices.BinarySearchFunc(s.segs, g, (*segment).compare)
		s.segs = slices.Insert(s.segs, i, g)
	}
	s.dirty[g] = true
	if i := slices.Index(s.pending, c); i >= 0 {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
	s.pendingBytes -= c.bytes
	s.mu.Unlock()
	s.retain()
	return nil
}

// retain deletes segments past MaxAge, then the oldest while the store is
// over MaxBytes (never the newest segment). The caller holds writeMu.
func (s *Store) retain() {
	cutoff := s.opt.Now().Add(-s.opt.MaxAge).UnixNano()
	s.mu.Lock()
	var total int64
	for _, g := range s.segs {
		total += g.size
	}
	var drop []*segment
	keep := s.segs[:0]
	for i, g := range s.segs {
		if g.maxStart < cutoff || total > s.opt.MaxBytes && i < len(s.segs)-1 {
			drop = append(drop, g)
			total -= g.size
			s.stats.Removed += g.spans
			delete(s.dirty, g)
			continue
		}
		keep = append(keep, g)
	}
	clear(s.segs[len(keep):])
	s.segs = keep
	s.mu.Unlock()
	for _, g := range drop {
		if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("trace store: removing an expired segment", "segment", filepath.Base(g.path), "err", err)
		}
	}
	if len(drop) > 0 {
		s.log.Info("trace store: retention removed segments", "segments", len(drop), "max_age", s.opt.MaxAge, "max_bytes", s.opt.MaxBytes)
	}
}

// run is the background writer: every FlushEvery it writes a buffer
// older than that, retries failed writes and applies retention.
func (s *Store) run() {
	defer close(s.done)
	t := time.NewTicker(s.opt.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if len(s.buf) > 0 && s.opt.Now().Sub(s.bufSince) >= s.opt.FlushEvery {
			s.cutLocked()
		}
		todo := slices.Clone(s.pending)
		s.mu.Unlock()
		_ = s.writeChunks(todo) // logged there; retried next time
		s.writeMu.Lock()
		s.retain()
		s.writeMu.Unlock()
	}
}

// Close writes what is buffered, syncs the segments written since Open
// and stops the writer. Add fails afterwards; queries still work.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := s.Flush()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	var paths []string
	for g := range s.dirty {
		paths = append(paths, g.path)
	}
	clear(s.dirty)
	s.mu.Unlock()
	for _, p := range paths {
		if serr := syncFile(p); serr != nil && err == nil {
			err = fmt.Errorf("syncing segment %s: %w", filepath.Base(p), serr)
		}
	}
	if d, derr := os.Open(s.dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return err
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Segments = len(s.segs)
	st.Buffered = len(s.buf)
	for _, c := range s.pending {
		st.Buffered += len(c.spans)
	}
	for i, g := range s.segs {
		st.Bytes += g.size
		st.Spans += g.spans
		st.Blocks += len(g.blocks)
		if i == 0 || g.minStart < st.Oldest.UnixNano() {
			st.Oldest = utcNano(g.minStart)
		}
		if i == 0 || g.maxStart > st.Newest.UnixNano() {
			st.Newest = utcNano(g.maxStart)
		}
	}
	return st
}
