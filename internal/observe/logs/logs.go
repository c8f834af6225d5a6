// Package logs reads the sandboxes' log files: the JSON lines that the
// runtime's shim writes per sandbox under LOGDIR/<app>/<sandbox>.log (with
// rotated .1, .2, .3 siblings). It merges an app's files by time for
// `noops logs APP` and follows them for `-f`.
package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Reader reads the log files under Dir.
type Reader struct {
	Dir  string        // LOGDIR: one folder per app
	Poll time.Duration // how often -f looks for new lines (default 200ms)
}

type line struct {
	t   time.Time
	raw []byte
}

// Tail calls emit with the last n lines of app's sandboxes, oldest first,
// and with follow keeps calling it with new lines until ctx ends.
func (r *Reader) Tail(ctx context.Context, app string, n int, follow bool, emit func([]byte) error) error {
	dir := filepath.Join(r.Dir, app)
	offsets := map[string]int64{}
	var all []line
	files, err := r.files(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		ls, off, err := readFrom(f, 0)
		if err != nil {
			return err
		}
		if !strings.Contains(filepath.Base(f), ".log.") {
			offsets[f] = off
		}
		all = append(all, ls...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].t.Before(all[j].t) })
	if len(all) > n {
		all = all[len(all)-n:]
	}
	for _, l := range all {
		if err := emit(l.raw); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	poll := r.Poll
	if poll == 0 {
		poll = 200 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		files, err := r.files(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			if strings.Contains(filepath.Base(f), ".log.") {
				continue
			}
			off := offsets[f]
			if fi, err := os.Stat(f); err == nil && fi.Size() < off {
				off = 0 // rotated: the file started again
			}
			ls, next, err := readFrom(f, off)
			if err != nil {
				continue
			}
			offsets[f] = next
			for _, l := range ls {
				if err := emit(l.raw); err != nil {
					return err
				}
			}
		}
	}
}

// files lists the app's log files, rotated ones first.
func (r *Reader) files(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*.log*"))
	if err != nil {
		return nil, fmt.Errorf("listing logs in %s: %w", dir, err)
	}
	sort.Slice(m, func(i, j int) bool { return rank(m[i]) < rank(m[j]) })
	return m, nil
}

// rank orders a sandbox's files oldest first: .log.3, .log.2, .log.1, .log.
func rank(p string) string {
	base := filepath.Base(p)
	i := strings.Index(base, ".log")
	suffix := base[i+4:]
	if suffix == "" {
		suffix = ".0"
	}
	return base[:i] + string(rune('9'-suffix[1]+'0'))
}

// readFrom reads whole lines from off; a partial last line is left for later.
func readFrom(path string, off int64) ([]line, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, off, nil
		}
		return nil, off, fmt.Errorf("reading log %s: %w", path, err)
	}
	defer f.Close()
	sandbox, _, _ := strings.Cut(filepath.Base(path), ".log")
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, off, fmt.Errorf("reading log %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var out []line
	for {
		b, err := br.ReadBytes('\n')
		if err != nil { // EOF: keep the partial line for the next read
			break
		}
		off += int64(len(b))
		raw := b[:len(b)-1]
		var rec struct {
			Time time.Time `json:"time"`
		}
		_ = json.Unmarshal(raw, &rec)
		out = append(out, line{t: rec.Time, raw: tag(raw, sandbox)})
	}
	return out, off, nil
}

// tag adds the sandbox's ID to a JSON line: {"sandbox":"…",…}.
func tag(raw []byte, sandbox string) []byte {
	if len(raw) < 2 || raw[0] != '{' {
		b, _ := json.Marshal(map[string]string{"sandbox": sandbox, "line": string(raw)})
		return b
	}
	id, _ := json.Marshal(sandbox)
	out := make([]byte, 0, len(raw)+len(id)+12)
	out = append(out, `{"sandbox":`...)
	out = append(out, id...)
	if raw[1] != '}' {
		out = append(out, ',')
	}
	return append(out, raw[1:]...)
}
