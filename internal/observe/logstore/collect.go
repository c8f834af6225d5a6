package logstore

import (
	"bytes"
	"context"
	"encoding/json"
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
	"syscall"
	"time"
)

// Collector tails the sandboxes' log files into a Store, as Filebeat
// does: LOGDIR/<app>/<sandbox>.log, JSON lines
// {"time":…,"stream":"stdout"|"stderr","line":"…"} written by the
// runtime's shims (internal/runtime/logfile), rotated by size to
// <sandbox>.log.1 (newest) … .log.3.
//
// Files are known by device and inode, so a rotation (FILE becoming
// FILE.1) neither loses nor repeats lines: the renamed file keeps its
// offset and the new FILE starts at 0. A file shorter than its offset
// was truncated and is read again from 0; a file whose first bytes
// changed is a new file on a reused inode. Only whole lines are taken
// from the live FILE; the partial last line of a rotated file, which no
// one will finish, is taken as it is. A line that is not such a JSON
// object is kept as stdout text stamped with the time it was read. The
// offsets are saved in the state file after the store has flushed what
// was read, so a restart goes on where it stopped; a crash between the
// two repeats at most one poll's lines. Files that disappear are
// forgotten.
type Collector struct {
	// Poll is how often the files are checked (default 250ms).
	Poll time.Duration
	// MaxRead bounds what is read from one file per poll (default 4 MiB);
	// a line longer than that is cut into pieces of MaxRead.
	MaxRead int
	// Now is the clock for lines that carry no time (default time.Now).
	Now func() time.Time

	dir, statePath string
	st             *Store
	log            *slog.Logger
	files          map[fileID]*fileState
	buf            []byte
}

type fileID struct{ Dev, Ino uint64 }

// fileState is what the state file keeps of one log file.
type fileState struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Path    string `json:"path"` // where it was last seen
	Offset  int64  `json:"offset"`
	FPLen   int    `json:"fp_len"` // how many of the first bytes FP covers
	FP      uint32 `json:"fp"`     // CRC-32C of them
	App     string `json:"app"`
	Sandbox string `json:"sandbox"`
}

type collectorState struct {
	Version int          `json:"version"`
	Files   []*fileState `json:"files"`
}

const fpMax = 64 // bytes of a file's start that tell a reused inode

// NewCollector returns a collector of the files under dir into st, with
// its offsets in statePath. Run starts it.
func NewCollector(dir string, st *Store, statePath string, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{dir: dir, st: st, statePath: statePath, log: log, files: map[fileID]*fileState{}}
}

// Run loads the saved offsets and collects every Poll until ctx ends,
// then returns nil. It returns an error only if it cannot start (the
// state file cannot be read); later errors are logged as warnings.
func (c *Collector) Run(ctx context.Context) error {
	if err := c.load(); err != nil {
		return err
	}
	poll := c.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := c.collect(); err != nil {
			c.log.Warn("log collector", "dir", c.dir, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// load reads the state file; a corrupt one is set aside with a warning
// (the files are then read again from their start).
func (c *Collector) load() error {
	b, err := os.ReadFile(c.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading log collector state: %w", err)
	}
	var st collectorState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 {
		c.log.Warn("log collector: ignoring a corrupt state file; files are read again from the start", "path", c.statePath, "err", err)
		return nil
	}
	for _, f := range st.Files {
		if f != nil {
			c.files[fileID{f.Dev, f.Ino}] = f
		}
	}
	return nil
}

func (c *Collector) save() error {
	st := collectorState{Version: 1}
	for _, f := range c.files {
		st.Files = append(st.Files, f)
	}
	slices.SortFunc(st.Files, func(a, b *fileState) int { return strings.Compare(a.Path, b.Path) })
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("saving log collector state: %w", err)
	}
	tmp := c.statePath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, c.statePath)
	}
	if err != nil {
		return fmt.Errorf("saving log collector state: %w", err)
	}
	return nil
}

// logFile is one file found under the log directory.
type logFile struct {
	path, app, sandbox string
	gen                int // 0 for FILE, N for FILE.N
	id                 fileID
	size               int64
}

// collect reads what is new in every file, flushes the store and saves
// the offsets.
func (c *Collector) collect() error {
	files, err := c.list()
	if err != nil {
		return err
	}
	changed := false
	seen := map[fileID]bool{}
	var errs []error
	for _, lf := range files {
		seen[lf.id] = true
		n, err := c.read(lf)
		changed = changed || n
		if err != nil {
			errs = append(errs, err)
		}
	}
	for id := range c.files {
		if !seen[id] {
			delete(c.files, id) // deleted (rotated out, or the sandbox's logs removed)
			changed = true
		}
	}
	if changed {
		if err := c.st.Flush(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("flushing collected logs: %w", err))...)
		}
		if err := c.save(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// list finds the log files, each sandbox's oldest first (.log.3 … .log).
func (c *Collector) list() ([]logFile, error) {
	apps, err := os.ReadDir(c.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing sandbox logs in %s: %w", c.dir, err)
	}
	var out []logFile
	for _, a := range apps {
		if !a.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(c.dir, a.Name()))
		if err != nil {
			c.log.Warn("log collector: listing an app's logs", "app", a.Name(), "err", err)
			continue
		}
		for _, e := range ents {
			sandbox, gen, ok := parseLogName(e.Name())
			if !ok || !e.Type().IsRegular() {
				continue
			}
			path := filepath.Join(c.dir, a.Name(), e.Name())
			fi, err := os.Stat(path)
			if err != nil {
				continue // rotated away meanwhile: seen at the next poll
			}
			sys, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				continue
			}
			out = append(out, logFile{path: path, app: a.Name(), sandbox: sandbox, gen: gen,
				id: fileID{uint64(sys.Dev), uint64(sys.Ino)}, size: fi.Size()})
		}
	}
	slices.SortFunc(out, func(a, b logFile) int {
		if a.app != b.app {
			return strings.Compare(a.app, b.app)
		}
		if a.sandbox != b.sandbox {
			return strings.Compare(a.sandbox, b.sandbox)
		}
		return b.gen - a.gen
	})
	return out, nil
}

// parseLogName reads "SANDBOX.log" (gen 0) and "SANDBOX.log.N".
func parseLogName(name string) (string, int, bool) {
	if s, ok := strings.CutSuffix(name, ".log"); ok && s != "" {
		return s, 0, true
	}
	i := strings.LastIndex(name, ".log.")
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[i+5:])
	if err != nil || n < 1 || n > 99 {
		return "", 0, false
	}
	return name[:i], n, true
}

// read takes the new lines of one file into the store and reports
// whether its state changed.
func (c *Collector) read(lf logFile) (bool, error) {
	fs := c.files[lf.id]
	isNew := fs == nil
	if isNew {
		fs = &fileState{Dev: lf.id.Dev, Ino: lf.id.Ino, App: lf.app, Sandbox: lf.sandbox}
		c.files[lf.id] = fs
	}
	changed := isNew || fs.Path != lf.path
	fs.Path = lf.path
	if lf.size == fs.Offset && fs.FPLen > 0 {
		return changed, nil
	}
	f, err := os.Open(lf.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return changed, nil
		}
		return changed, fmt.Errorf("reading sandbox log %s: %w", lf.path, err)
	}
	defer f.Close()
	// The first bytes tell a file that reuses a forgotten inode.
	var head [fpMax]byte
	hn, _ := f.ReadAt(head[:], 0)
	if fs.FPLen > 0 && (hn < fs.FPLen || crc32.Checksum(head[:fs.FPLen], castagnoli) != fs.FP) {
		c.log.Info("log collector: a new file on a known inode; reading it from the start", "path", lf.path)
		fs.Offset, fs.FPLen = 0, 0
	}
	if lf.size < fs.Offset {
		c.log.Info("log collector: file truncated; reading it from the start", "path", lf.path, "offset", fs.Offset, "size", lf.size)
		fs.Offset = 0
	}
	if fs.FPLen < min(hn, fpMax) {
		fs.FPLen, fs.FP, changed = hn, crc32.Checksum(head[:hn], castagnoli), true
	}
	maxRead := c.MaxRead
	if maxRead <= 0 {
		maxRead = 4 << 20
	}
	for fs.Offset < lf.size {
		want := int(min(lf.size-fs.Offset, int64(maxRead)))
		c.buf = slices.Grow(c.buf[:0], want)[:want]
		n, err := f.ReadAt(c.buf, fs.Offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return changed, fmt.Errorf("reading sandbox log %s: %w", lf.path, err)
		}
		b := c.buf[:n]
		end := bytes.LastIndexByte(b, '\n') + 1
		switch {
		case end == 0 && n == maxRead:
			end = n // a line longer than MaxRead: take a piece
		case end < n && lf.gen > 0 && fs.Offset+int64(n) == lf.size:
			end = n // the unfinished last line of a rotated file
		}
		if end == 0 {
			break // a partial line: wait for the rest
		}
		if err := c.st.Append(c.records(fs, b[:end])...); err != nil {
			return changed, fmt.Errorf("storing sandbox log %s: %w", lf.path, err)
		}
		fs.Offset += int64(end)
		changed = true
	}
	return changed, nil
}

// records parses the lines of b.
func (c *Collector) records(fs *fileState, b []byte) []Record {
	var out []Record
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		out = append(out, c.record(fs, line))
	}
	return out
}

func (c *Collector) record(fs *fileState, line []byte) Record {
	var j struct {
		Time   time.Time `json:"time"`
		Stream string    `json:"stream"`
		Line   *string   `json:"line"`
	}
	if json.Unmarshal(line, &j) == nil && j.Line != nil && !j.Time.IsZero() && (j.Stream == StreamStdout || j.Stream == StreamStderr) {
		r := Record{Time: j.Time, App: fs.App, Stream: j.Stream, Sandbox: fs.Sandbox, Line: *j.Line}
		r.TraceID, r.SpanID = traceOf(r.Line)
		return r
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return Record{Time: now(), App: fs.App, Stream: StreamStdout, Sandbox: fs.Sandbox, Line: string(line)}
}

// traceOf takes trace_id and span_id from an app's JSON log line, when
// they are hex IDs.
func traceOf(line string) (trace, span string) {
	if !strings.Contains(line, `"trace_id"`) {
		return "", ""
	}
	m := jsonObject(line)
	if t, ok := jsonField(m, "trace_id"); ok && isHex(t, 32) {
		trace = t
	}
	if s, ok := jsonField(m, "span_id"); ok && isHex(s, 16) {
		span = s
	}
	return trace, span
}
