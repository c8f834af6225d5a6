// Package logfile writes a sandbox's output as the JSON lines that
// internal/observe/logstore's Collector reads into the log store: one object per line with "time"
// (RFC 3339, nanoseconds), "stream" ("stdout" or "stderr") and "line".
// The file is rotated by size, keeping FILE.1 (newest) to FILE.3 (oldest).
// Both runtime drivers use it: runc's shim and the fake driver.
package logfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// The defaults of Options.
const (
	DefaultMaxSize = 10 << 20 // rotate when the file would grow past 10 MiB
	DefaultKeep    = 3        // keep FILE.1 … FILE.3
	DefaultMaxLine = 16 << 10 // split longer lines into 16 KiB pieces
)

// Options tune a File; zero values take the defaults.
type Options struct {
	MaxSize int64            // bytes after which the file is rotated
	Keep    int              // rotated files kept
	MaxLine int              // longest line recorded whole, in bytes
	Now     func() time.Time // clock (time.Now)
}

// File is an open, rotating JSON-lines log. Its methods are safe for
// concurrent use: a sandbox's stdout and stderr share one File.
type File struct {
	path string
	opt  Options

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Record is one line of a log file.
type Record struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
}

// Open opens (creating or appending to) the log at path.
func Open(path string, opt Options) (*File, error) {
	if opt.MaxSize <= 0 {
		opt.MaxSize = DefaultMaxSize
	}
	if opt.Keep <= 0 {
		opt.Keep = DefaultKeep
	}
	if opt.MaxLine <= 0 {
		opt.MaxLine = DefaultMaxLine
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	l := &File{path: path, opt: opt}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening log %s: %w", l.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening log %s: %w", l.path, err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write records one line of stream, split into MaxLine pieces if longer.
func (l *File) Write(stream, line string) error {
	for {
		piece := line
		if len(piece) > l.opt.MaxLine {
			piece = line[:l.opt.MaxLine]
		}
		if err := l.record(stream, piece); err != nil {
			return err
		}
		line = line[len(piece):]
		if line == "" {
			return nil
		}
	}
}

func (l *File) record(stream, line string) error {
	b, err := json.Marshal(Record{Time: l.opt.Now().UTC(), Stream: stream, Line: line})
	if err != nil {
		return fmt.Errorf("encoding log line: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("writing log %s: %w", l.path, os.ErrClosed)
	}
	if l.size > 0 && l.size+int64(len(b)) > l.opt.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("writing log %s: %w", l.path, err)
	}
	return nil
}

// rotate shifts FILE.N to FILE.N+1 (dropping the oldest), FILE to FILE.1,
// and starts an empty FILE. Called with l.mu held.
func (l *File) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("rotating log %s: %w", l.path, err)
	}
	l.f = nil
	for i := l.opt.Keep - 1; i >= 1; i-- {
		err := os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotating log %s: %w", l.path, err)
		}
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotating log %s: %w", l.path, err)
	}
	return l.open()
}

// Copy records what r yields as lines of stream until r ends (EOF or a
// closed pipe), then records the partial last line, if any. Lines longer
// than MaxLine are recorded in MaxLine pieces.
func (l *File) Copy(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, l.opt.MaxLine+1) // a whole line and its newline
	var pend []byte
	for {
		b, err := br.ReadSlice('\n')
		complete := err == nil
		if complete {
			b = b[:len(b)-1]
		}
		pend = append(pend, b...)
		for len(pend) > l.opt.MaxLine {
			if werr := l.Write(stream, string(pend[:l.opt.MaxLine])); werr != nil {
				return werr
			}
			pend = append(pend[:0], pend[l.opt.MaxLine:]...)
		}
		switch {
		case complete:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case len(pend) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed)):
			return nil
		case len(pend) == 0:
			return fmt.Errorf("reading %s: %w", stream, err)
		}
		if werr := l.Write(stream, string(pend)); werr != nil {
			return werr
		}
		pend = pend[:0]
	}
}

// Close closes the file; later writes fail.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("closing log %s: %w", l.path, err)
	}
	return nil
}
