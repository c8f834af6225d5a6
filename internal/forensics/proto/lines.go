package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"noops/internal/forensics/flow"
)

// Line is one line of a stream.
type Line struct {
	Text []byte // without the line ending; cut to the reader's maximum
	// Start is the stream offset of the line's first byte, End the offset
	// after its line ending.
	Start, End int64
	Long       bool // the line was longer than the maximum and was cut
	// Unterminated: the stream ended before a line ending.
	Unterminated bool
}

// LineReader reads lines ("\n" or "\r\n" terminated) from a region of an
// io.ReaderAt and knows the stream offset of each.
type LineReader struct {
	br  *bufio.Reader
	off int64
	max int
}

// NewLineReader reads [start, end) of r; lines longer than maxLine are cut
// (the rest is skipped up to the line ending).
func NewLineReader(r io.ReaderAt, start, end int64, maxLine int) *LineReader {
	if maxLine <= 0 {
		maxLine = 4096
	}
	// A buffer no larger than the region: extractors open readers on
	// every connection they look at.
	size := int(min(max(end-start, 16), 64<<10))
	return &LineReader{
		br:  bufio.NewReaderSize(io.NewSectionReader(r, start, max(0, end-start)), size),
		off: start,
		max: maxLine,
	}
}

// HalfLines reads all of h.
func HalfLines(h *flow.Half, maxLine int) *LineReader {
	return NewLineReader(h.Data, 0, h.Size, maxLine)
}

// Offset is the stream offset of the next unread byte.
func (l *LineReader) Offset() int64 { return l.off }

// Next returns the next line, or io.EOF when none is left.
func (l *LineReader) Next() (Line, error) {
	ln := Line{Start: l.off}
	for {
		frag, err := l.br.ReadSlice('\n')
		l.off += int64(len(frag))
		if room := l.max - len(ln.Text); room > 0 {
			ln.Text = append(ln.Text, frag[:min(room, len(frag))]...)
			if len(frag) > room {
				ln.Long = true
			}
		} else if len(frag) > 0 {
			ln.Long = true
		}
		switch {
		case err == nil:
			ln.End = l.off
			ln.Text = trimEOL(ln.Text)
			return ln, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if l.off == ln.Start {
				return Line{}, io.EOF
			}
			ln.End = l.off
			ln.Unterminated = true
			return ln, nil
		default:
			return Line{}, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// Fragment returns the stream up to and including the next "\n", or a
// buffer's worth (64 KiB) of a longer line, so that lines of any length
// can be copied; io.EOF at the end. The slice is valid until the next
// call.
func (l *LineReader) Fragment() ([]byte, error) {
	frag, err := l.br.ReadSlice('\n')
	l.off += int64(len(frag))
	if errors.Is(err, bufio.ErrBufferFull) || (len(frag) > 0 && errors.Is(err, io.EOF)) {
		err = nil
	}
	return frag, err
}

// Peek returns the next n bytes (fewer at the end) without reading them.
func (l *LineReader) Peek(n int) []byte {
	b, _ := l.br.Peek(n)
	return b
}

// Read reads raw bytes (for a length-delimited part inside a line
// protocol, such as SMTP's BDAT).
func (l *LineReader) Read(p []byte) (int, error) {
	n, err := l.br.Read(p)
	l.off += int64(n)
	return n, err
}
