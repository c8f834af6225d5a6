package proto

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// DefaultMemLimit is the size at which a Buffer moves to a temporary file
// when the caller gives no limit.
const DefaultMemLimit = 16 << 20

// Buffer collects decoded bytes. It keeps them in memory up to a limit,
// then moves them to a temporary file that is unlinked as soon as it is
// created (nothing is left behind if the process dies). It is an
// io.Writer and an io.ReaderAt; Close releases the file.
type Buffer struct {
	dir      string
	memLimit int64
	mem      []byte
	f        *os.File
	size     int64
}

// NewBuffer returns an empty Buffer whose file, if it needs one, is
// created in dir ("" for the system's temporary directory) once memLimit
// bytes (DefaultMemLimit when ≤ 0) are held.
func NewBuffer(dir string, memLimit int64) *Buffer {
	if memLimit <= 0 {
		memLimit = DefaultMemLimit
	}
	return &Buffer{dir: dir, memLimit: memLimit}
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	if b.f == nil && b.size+int64(len(p)) > b.memLimit {
		if err := b.spill(); err != nil {
			return 0, err
		}
	}
	if b.f == nil {
		b.mem = append(b.mem, p...)
		b.size += int64(len(p))
		return len(p), nil
	}
	n, err := b.f.WriteAt(p, b.size)
	b.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing buffer file: %w", err)
	}
	return n, nil
}

func (b *Buffer) spill() error {
	f, err := os.CreateTemp(b.dir, "noops-object-*")
	if err != nil {
		return fmt.Errorf("creating buffer file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return fmt.Errorf("unlinking buffer file: %w", err)
	}
	if _, err := f.WriteAt(b.mem, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing buffer file: %w", err)
	}
	b.f, b.mem = f, nil
	return nil
}

// ReadAt reads what was written.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("reading buffer: negative offset")
	}
	if off >= b.size {
		return 0, io.EOF
	}
	if b.f == nil {
		n := copy(p, b.mem[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	want := min(int64(len(p)), b.size-off)
	n, err := b.f.ReadAt(p[:want], off)
	if err == nil && int64(n) < int64(len(p)) {
		err = io.EOF
	}
	return n, err
}

// Size is the number of bytes written.
func (b *Buffer) Size() int64 { return b.size }

// Close releases the memory and the file.
func (b *Buffer) Close() error {
	b.mem = nil
	if b.f == nil {
		return nil
	}
	f := b.f
	b.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing buffer file: %w", err)
	}
	return nil
}

// CopyLimit copies src into dst until src ends or limit bytes were
// copied. It reports whether src had more (the copy was cut at limit).
func CopyLimit(dst io.Writer, src io.Reader, limit int64) (n int64, cut bool, err error) {
	n, err = io.Copy(dst, io.LimitReader(src, limit))
	if err != nil || n < limit {
		return n, false, err
	}
	var one [1]byte
	m, _ := io.ReadFull(src, one[:])
	return n, m > 0, nil
}
