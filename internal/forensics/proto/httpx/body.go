package httpx

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// body is a message body with its transfer coding removed: a view of the
// stream's bytes (chunk data placed end to end), not a copy.
type body struct {
	asm      *proto.Assembly
	size     int64        // bytes the framing places in the body (captured or not)
	declared int64        // Content-Length, -1 when none
	ranges   []flow.Range // stream ranges the body's bytes came from
	complete bool         // the framing's end was captured and nothing is missing
	chunked  bool
	notes    []string
	// next is the stream offset after the message, -1 when the framing
	// was lost (the stream ended early or chunk sizes stopped making
	// sense).
	next int64
	// lostAt is where chunk sizes stopped making sense, -1 if they did not.
	lostAt int64
}

// gaps returns the body's missing ranges in body offsets.
func (b *body) gaps() []flow.Range {
	g := b.asm.Gaps(b.asm.Size())
	if b.size > b.asm.Size() {
		g = append(g, flow.Range{Start: b.asm.Size(), End: b.size})
	}
	return proto.MergeRanges(g)
}

// lengthBody is Content-Length bytes at off.
func lengthBody(h *flow.Half, off, n int64) *body {
	b := &body{asm: &proto.Assembly{}, size: n, declared: n, next: off + n, complete: true, lostAt: -1}
	end := min(off+n, h.Size)
	b.asm.AddHalf(0, h, off, end)
	b.asm.SetSize(max(0, end-off))
	b.addRange(off, end)
	if off+n > h.Size {
		b.complete, b.next = false, -1
		b.notes = append(b.notes, fmt.Sprintf("body cut off: Content-Length %d, the stream holds %d of it", n, max(0, h.Size-off)))
	}
	if len(h.GapsIn(off, end)) > 0 {
		b.complete = false
	}
	return b
}

// closeBody runs to the end of the stream (no length, no chunking).
func closeBody(h *flow.Half, off int64) *body {
	b := &body{asm: &proto.Assembly{}, declared: -1, next: -1, lostAt: -1}
	end := h.Size
	b.asm.AddHalf(0, h, off, end)
	b.size = max(0, end-off)
	b.asm.SetSize(b.size)
	b.addRange(off, end)
	b.complete = h.FIN && !h.RST && len(h.GapsIn(off, end)) == 0
	b.notes = append(b.notes, "body delimited by the connection's close")
	if !h.FIN {
		b.notes = append(b.notes, "the connection's close was not captured: the body may be cut off")
	}
	return b
}

// chunkedBody reads a chunked body at off, and its trailers.
func chunkedBody(h *flow.Half, off int64, maxHeader int) *body {
	b := &body{asm: &proto.Assembly{}, declared: -1, chunked: true, next: -1, lostAt: -1}
	pos := off
	var line [1024]byte
	for {
		n, err := h.Data.ReadAt(line[:min(int64(len(line)), max(0, h.Size-pos))], pos)
		if n == 0 && err != nil {
			b.notes = append(b.notes, fmt.Sprintf("chunked body cut off at stream offset %d: the final chunk was not captured", pos))
			return b.finish()
		}
		i := bytes.IndexByte(line[:n], '\n')
		if i < 0 {
			b.notes = append(b.notes, fmt.Sprintf("chunked body: no chunk-size line at stream offset %d", pos))
			b.lostAt = pos
			return b.finish()
		}
		size, ok := chunkSize(line[:i])
		if len(h.GapsIn(pos, pos+int64(i)+1)) > 0 {
			b.notes = append(b.notes, fmt.Sprintf("chunked framing lost at stream offset %d: the chunk-size line was not captured", pos))
			b.lostAt = pos
			return b.finish()
		}
		if !ok {
			b.notes = append(b.notes, fmt.Sprintf("chunked framing lost at stream offset %d (chunk-size line %q)", pos, trunc(line[:i], 40)))
			b.lostAt = pos
			return b.finish()
		}
		data := pos + int64(i) + 1
		if size == 0 {
			end, ok := trailerEnd(h, data, maxHeader)
			if !ok {
				b.notes = append(b.notes, "chunked body: the trailers were not captured")
				return b.finish()
			}
			b.next, b.complete = end, true
			return b.finish()
		}
		b.asm.AddHalf(b.size, h, data, data+size)
		b.addRange(data, min(data+size, h.Size))
		b.size += size
		b.asm.SetSize(b.size)
		if data+size > h.Size {
			b.asm.SetSize(b.size - (data + size - h.Size))
			b.notes = append(b.notes, fmt.Sprintf("chunked body cut off inside a %d-byte chunk", size))
			return b.finish()
		}
		pos = data + size
		crlf, _ := h.Bytes(pos, pos+2)
		switch {
		case bytes.HasPrefix(crlf, []byte("\r\n")):
			pos += 2
		case bytes.HasPrefix(crlf, []byte("\n")):
			pos++
		default:
			b.notes = append(b.notes, fmt.Sprintf("chunk at stream offset %d not followed by CRLF", data))
		}
	}
}

// keepRaw appends the stream's bytes [b.lostAt, end) as they are, chunk
// framing and all, to a chunked body whose framing was lost: better than
// dropping them.
func (b *body) keepRaw(h *flow.Half, end int64) {
	if b.lostAt < 0 || end <= b.lostAt {
		return
	}
	at := b.asm.Size()
	b.asm.AddHalf(at, h, b.lostAt, end)
	b.asm.SetSize(at + end - b.lostAt)
	b.size = b.asm.Size()
	b.addRange(b.lostAt, end)
	b.notes = append(b.notes, fmt.Sprintf("body bytes %d-%d are the stream's bytes %d-%d kept raw, chunk-size lines included", at, b.size, b.lostAt, end))
	b.complete = false
}

func (b *body) finish() *body {
	if len(b.gaps()) > 0 {
		b.complete = false
	}
	return b
}

func (b *body) addRange(start, end int64) {
	if end <= start {
		return
	}
	if n := len(b.ranges); n > 0 && b.ranges[n-1].End == start {
		b.ranges[n-1].End = end
		return
	}
	b.ranges = append(b.ranges, flow.Range{Start: start, End: end})
}

// chunkSize reads "1a2b;ext=1\r".
func chunkSize(line []byte) (int64, bool) {
	s := strings.TrimSpace(strings.TrimSuffix(string(line), "\r"))
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if s == "" || len(s) > 15 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 16, 64)
	if err != nil || n < 0 || n > proto.MaxOffset {
		return 0, false
	}
	return n, true
}

// trailerEnd finds the empty line that ends the trailer section at off.
func trailerEnd(h *flow.Half, off int64, maxBytes int) (int64, bool) {
	b, _ := h.Bytes(off, off+int64(maxBytes))
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0, false
		}
		line := b[i : i+j]
		i += j + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return off + int64(i), true
		}
	}
	return 0, false
}

func trunc(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
