package notify

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// record is one line for a spool file: an event (item set) or the ack of
// the event with seq ack, delivered or dropped.
type record struct {
	ack  uint64
	item *item
}

// spoolLine is a record as a JSON line.
type spoolLine struct {
	Seq   uint64     `json:"seq,omitempty"`
	Event *wireEvent `json:"event,omitempty"`
	Ack   uint64     `json:"ack,omitempty"`
}

func encodeRecord(r record) ([]byte, error) {
	l := spoolLine{Ack: r.ack}
	if r.item != nil {
		w := toWire(r.item.ev)
		l = spoolLine{Seq: r.item.seq, Event: &w}
	}
	b, err := json.Marshal(l)
	return append(b, '\n'), err
}

// spoolFile is one sink's append-only file.
type spoolFile struct {
	path      string
	compactAt int // rewrite the file from the queue past this many lines

	mu      sync.Mutex // serializes the writer and Stop; guards what follows
	f       *os.File   // opened for appending; nil once closed
	lines   int        // records in the file
	failing bool       // the last write failed (it was logged)
}

// openSpool reads the spool file id in dir, returns the events in it that
// were not acked (at most max, the newest; the others are counted as
// dropped) and rewrites the file with just those, so that a line cut by a
// crash is gone before anything is appended.
func openSpool(dir, id, sink string, max int, log *slog.Logger, now time.Time) (*spoolFile, []*item, uint64, error) {
	sp := &spoolFile{path: filepath.Join(dir, id+".jsonl"), compactAt: 2*max + 1024}
	var items []*item
	f, err := os.Open(sp.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, nil, 0, fmt.Errorf("opening notification spool of %s: %w", sink, err)
	default:
		bad := 0
		items, err = parseSpool(f, func(line int, err error) {
			if bad++; bad <= 3 {
				log.Warn("skipping corrupt notification spool line", "sink", sink, "file", sp.path, "line", line, "err", err)
			}
		})
		f.Close()
		if err != nil {
			return nil, nil, 0, fmt.Errorf("reading notification spool of %s: %w", sink, err)
		}
		if bad > 3 {
			log.Warn("skipped corrupt notification spool lines", "sink", sink, "file", sp.path, "lines", bad)
		}
	}
	for _, it := range items {
		it.ev = normalize(it.ev, now)
	}
	var dropped uint64
	if len(items) > max {
		dropped = uint64(len(items) - max)
		log.Warn("notification spool holds more than the queue, dropping the oldest", "sink", sink, "dropped", dropped)
		items = items[len(items)-max:]
	}
	sp.f, err = os.OpenFile(sp.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("opening notification spool of %s: %w", sink, err)
	}
	if err := sp.rewriteLocked(items, true); err != nil {
		sp.f.Close()
		return nil, nil, 0, fmt.Errorf("compacting notification spool of %s: %w", sink, err)
	}
	return sp, items, dropped, nil
}

// parseSpool reads spool lines from r and returns the events that have no
// ack, by seq. It calls bad for each line (numbered from 1) that is not a
// record: a corrupt line is skipped, never an error. Only a read error is.
func parseSpool(r io.Reader, bad func(line int, err error)) ([]*item, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	events := map[uint64]*item{}
	acked := map[uint64]bool{}
	for n := 1; ; n++ {
		line, tooLong, rerr := readLine(br, maxSpoolLine)
		if rerr != nil && rerr != io.EOF {
			return nil, rerr
		}
		line = bytes.TrimSpace(line)
		var l spoolLine
		switch {
		case tooLong:
			bad(n, fmt.Errorf("line longer than %d bytes", maxSpoolLine))
		case len(line) == 0:
		case json.Unmarshal(line, &l) != nil:
			bad(n, errors.New("not JSON (cut short by a crash?)"))
		case l.Ack > 0 && l.Seq == 0 && l.Event == nil:
			acked[l.Ack] = true
		case l.Seq > 0 && l.Ack == 0 && l.Event != nil && l.Event.Kind != "":
			events[l.Seq] = &item{seq: l.Seq, ev: l.Event.event()}
		default:
			bad(n, errors.New("not a spool record"))
		}
		if rerr == io.EOF {
			break
		}
	}
	items := make([]*item, 0, len(events))
	for seq, it := range events {
		if !acked[seq] {
			items = append(items, it)
		}
	}
	slices.SortFunc(items, func(a, b *item) int { return cmp.Compare(a.seq, b.seq) })
	return items, nil
}

// readLine reads through the next newline. A line longer than max is read
// to its end but not returned, and tooLong is set.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if !tooLong && len(line)+len(frag) > max {
			tooLong, line = true, nil
		}
		if !tooLong {
			line = append(line, frag...)
		}
		if err != bufio.ErrBufferFull {
			return line, tooLong, err
		}
	}
}

// appendLocked writes recs at the end of the file in one write.
func (sp *spoolFile) appendLocked(recs []record) error {
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := encodeRecord(r)
		if err != nil {
			return fmt.Errorf("encoding spool record: %w", err)
		}
		buf.Write(b)
	}
	if _, err := sp.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("appending to %s: %w", sp.path, err)
	}
	sp.lines += len(recs)
	return nil
}

// rewriteLocked replaces the file's content with items. An empty file is
// truncated in place (fsynced only if durable); otherwise a new file is
// written, fsynced and renamed over the old one.
func (sp *spoolFile) rewriteLocked(items []*item, durable bool) error {
	if len(items) == 0 {
		if err := sp.f.Truncate(0); err != nil {
			return fmt.Errorf("truncating %s: %w", sp.path, err)
		}
		sp.lines = 0
		if durable {
			if err := sp.f.Sync(); err != nil {
				return fmt.Errorf("syncing %s: %w", sp.path, err)
			}
		}
		return nil
	}
	tmp := sp.path + ".tmp"
	if err := writeItems(tmp, items); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, sp.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s: %w", sp.path, err)
	}
	if d, err := os.Open(filepath.Dir(sp.path)); err == nil {
		d.Sync() // the rename is durable; a failure leaves it to the OS
		d.Close()
	}
	f, err := os.OpenFile(sp.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("reopening %s: %w", sp.path, err)
	}
	sp.f.Close()
	sp.f, sp.lines = f, len(items)
	return nil
}

func writeItems(path string, items []*item) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	for _, it := range items {
		b, err := encodeRecord(record{item: it})
		if err != nil {
			return fmt.Errorf("encoding spool record: %w", err)
		}
		bw.Write(b)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}

func (sp *spoolFile) close() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
}

// writeLoop writes the sinks' spool records until ctx ends; Stop then
// persists the queues.
func (n *Notifier) writeLoop(ctx context.Context) {
	defer close(n.writerDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		for _, s := range n.sinks {
			s.flush(n.log)
		}
	}
}

// flush writes s's pending records: appended, or as a rewrite of the file
// from the queue when the queue is empty (a truncation), when the file has
// grown well past the queue, or after a failed write.
func (s *sinkState) flush(log *slog.Logger) {
	sp := s.spool
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.f == nil {
		return
	}
	s.mu.Lock()
	recs := s.unwritten
	s.unwritten = nil
	total := sp.lines + len(recs)
	rewrite := s.rewrite || s.pendingLocked() == 0 && total > 0 || total > sp.compactAt
	var snap []*item
	if rewrite {
		snap, recs, s.rewrite = s.snapshotLocked(), nil, false
	}
	s.mu.Unlock()
	var err error
	switch {
	case rewrite:
		err = sp.rewriteLocked(snap, false)
	case len(recs) > 0:
		err = sp.appendLocked(recs)
	default:
		return
	}
	if err != nil {
		s.mu.Lock()
		s.rewrite, s.unwritten = true, nil
		s.mu.Unlock()
		if !sp.failing {
			log.Error("writing notification spool; will rewrite it from the queue", "sink", s.name, "err", err)
		}
		sp.failing = true
		return
	}
	if sp.failing {
		log.Info("notification spool writable again", "sink", s.name)
		sp.failing = false
	}
}

// persist rewrites s's spool file from its queue, fsynced, and closes it.
func (s *sinkState) persist() error {
	sp := s.spool
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.f == nil {
		return nil
	}
	s.mu.Lock()
	snap := s.snapshotLocked()
	s.unwritten, s.rewrite = nil, false
	s.mu.Unlock()
	err := sp.rewriteLocked(snap, true)
	if cerr := sp.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", sp.path, cerr)
	}
	sp.f = nil
	if err != nil {
		return fmt.Errorf("persisting notifications of %s: %w", s.name, err)
	}
	return nil
}
