package httpx

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

type field struct{ name, value string } // name lower-cased

// header is a request's or response's start line and header fields.
type header struct {
	first      string
	fields     []field
	start, end int64 // stream offsets: the start line's first byte, the body's first byte

	// A request's method and target, a response's status.
	method, target, proto string
	status                int
	reason                string
}

func (h *header) get(name string) string {
	for _, f := range h.fields {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

func (h *header) all(name string) []string {
	var out []string
	for _, f := range h.fields {
		if f.name == name {
			out = append(out, f.value)
		}
	}
	return out
}

var (
	errNoHeader  = errors.New("no HTTP start line")
	errTruncated = errors.New("header block cut off by the end of the stream")
	errTooBig    = errors.New("header block larger than the limit")
)

// readHeader reads the header block that starts at off: first a small
// window, then up to max bytes.
func readHeader(h *flow.Half, off int64, maxBytes int) (header, error) {
	var buf []byte
	for _, n := range []int{4096, maxBytes} {
		b, err := h.Bytes(off, off+int64(n))
		if err != nil && len(b) == 0 {
			return header{}, fmt.Errorf("reading header at %d: %w", off, err)
		}
		buf = b
		if end := headerEnd(buf); end > 0 {
			return parseHeader(buf[:end], off)
		}
		if int64(len(buf)) < int64(n) {
			break // the stream ended
		}
	}
	if int64(len(buf)) >= int64(maxBytes) {
		return header{}, errTooBig
	}
	return header{}, errTruncated
}

// headerEnd returns the length of the header block including the empty
// line, or 0.
func headerEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		line := b[i : i+j]
		i += j + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			if i == j+1 { // an empty first line is not a header block
				return 0
			}
			return i
		}
	}
	return 0
}

func parseHeader(b []byte, off int64) (header, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	h := header{start: off, end: off + int64(len(b))}
	h.first = strings.TrimSuffix(lines[0], "\r")
	if !parseStartLine(&h) {
		return header{}, errNoHeader
	}
	for _, ln := range lines[1:] {
		ln = strings.TrimSuffix(ln, "\r")
		if ln == "" {
			continue
		}
		if (ln[0] == ' ' || ln[0] == '\t') && len(h.fields) > 0 {
			h.fields[len(h.fields)-1].value += " " + strings.TrimSpace(ln) // obsolete line folding
			continue
		}
		name, value, ok := strings.Cut(ln, ":")
		if !ok {
			continue
		}
		h.fields = append(h.fields, field{proto.ASCIILower(strings.TrimSpace(name)), strings.TrimSpace(value)})
	}
	return h, nil
}

// parseStartLine reads "METHOD target HTTP/1.x" or "HTTP/1.x NNN reason".
func parseStartLine(h *header) bool {
	f := strings.SplitN(h.first, " ", 3)
	if len(f) < 2 {
		return false
	}
	if isVersion(f[0]) {
		if len(f[1]) != 3 {
			return false
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 100 || n > 999 {
			return false
		}
		h.proto, h.status = f[0], n
		if len(f) == 3 {
			h.reason = f[2]
		}
		return true
	}
	if len(f) != 3 || !isMethod(f[0]) || !isVersion(f[2]) || f[1] == "" {
		return false
	}
	h.method, h.target, h.proto = f[0], f[1], f[2]
	return true
}

func isVersion(s string) bool { return s == "HTTP/1.1" || s == "HTTP/1.0" }

func isMethod(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// looksLikeStart says whether b starts an HTTP message of the wanted kind.
func looksLikeStart(b []byte, response bool) bool {
	if response {
		return bytes.HasPrefix(b, []byte("HTTP/1.1 ")) || bytes.HasPrefix(b, []byte("HTTP/1.0 "))
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	h := header{first: strings.TrimSuffix(string(line), "\r")}
	return parseStartLine(&h) && h.method != ""
}

// resync finds the next message start at a line start in [from, from+limit).
func resync(h *flow.Half, from, limit int64, response bool) (int64, bool) {
	const window = 1 << 20
	end := min(h.Size, from+limit)
	for pos := from; pos < end; pos += window - 64 {
		b, _ := h.Bytes(pos, min(end, pos+window))
		for i := 0; i < len(b); {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				break
			}
			i += j + 1
			if looksLikeStart(b[i:], response) && (len(b)-i >= 16 || pos+int64(len(b)) >= end) {
				return pos + int64(i), true
			}
		}
		if pos+window >= end {
			break
		}
	}
	return 0, false
}
