package unpack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
)

// beginLine opens a uuencoded file: "begin 644 name", or with
// "begin-base64" the base64 variant that `uuencode -m` writes.
var beginLine = regexp.MustCompile(`^begin(-base64)? ([0-7]{3,4}) (.+)$`)

func hasBeginLine(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if bytes.HasPrefix(line, []byte("begin")) && beginLine.Match(bytes.TrimRight(line, "\r")) {
			return true
		}
	}
	return false
}

// maxLine is the longest line the uuencode scanner reads whole.
const maxLine = 4096

// lineReader reads lines without their end; a line longer than maxLine
// comes back empty. off counts the bytes read, line ends included.
type lineReader struct {
	br  *bufio.Reader
	off int64
}

func (l *lineReader) next() ([]byte, error) {
	line, err := l.br.ReadSlice('\n')
	l.off += int64(len(line))
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			line, err = l.br.ReadSlice('\n')
			l.off += int64(len(line))
		}
		return []byte{}, nil
	}
	if err != nil && len(line) == 0 {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// span is a byte range [off, end) of an object.
type span struct{ off, end int64 }

// uudecode decodes every uuencoded file in n, each into a child named by
// its begin line, and returns where the blocks are. A block without its
// end line is kept, marked truncated.
func (w *walker) uudecode(n *Node) (blocksAt []span) {
	lr := &lineReader{br: bufio.NewReaderSize(n.Content(), maxLine)}
	for blocks := 0; ; {
		start := lr.off
		line, err := lr.next()
		if err != nil {
			return blocksAt
		}
		if !bytes.HasPrefix(line, []byte("begin")) {
			continue
		}
		m := beginLine.FindSubmatch(line)
		if m == nil {
			continue
		}
		original := string(m[3])
		if blocks == w.opt.MaxEntries {
			n.warn("entry limit of %d reached (MaxEntries): uuencoded files from %q on not decoded", w.opt.MaxEntries, original)
			return blocksAt
		}
		blocks++
		if !w.room(n, fmt.Sprintf("uuencoded file %q and the ones after it", original)) {
			return blocksAt
		}
		limit, budget := w.limit(n.Size)
		sp := w.newSpool(limit, budget)
		ended, bad, werr := w.uuBody(lr, sp, len(m[1]) > 0)
		blocksAt = append(blocksAt, span{start, lr.off})
		c := w.entry(n, KindUUEncode, original, sp)
		c.Score, c.Why = c.Printable, "uuencode begin line"
		w.settle(c, sp, n.Size, werr, "uuencoded file")
		if !ended && werr == nil {
			c.Truncated = true
			c.warn("no end line: %s decoded, the rest of the uuencoded file may be missing", human(c.Size))
		}
		if bad > 0 {
			c.warn("%d malformed uuencode lines skipped", bad)
		}
		w.keep(n, c)
	}
}

// uuBody decodes the lines after a begin line up to "end" (or "====" for
// begin-base64) into sp.
func (w *walker) uuBody(lr *lineReader, sp *spool, b64 bool) (ended bool, bad int, err error) {
	dec := newDecoder(KindBase64, sp)
	var out []byte
	for {
		if err := w.ctx.Err(); err != nil {
			return false, bad, err
		}
		line, rerr := lr.next()
		if rerr != nil {
			if rerr != io.EOF {
				return false, bad, rerr
			}
			return false, bad, nil
		}
		if b64 {
			if string(line) == "====" {
				return true, bad, nil
			}
			if _, err := dec.Write(line); err != nil {
				return false, bad, err
			}
			continue
		}
		if string(bytes.TrimSpace(line)) == "end" {
			return true, bad, nil
		}
		var ok bool
		if out, ok = uuLine(line, out); !ok {
			bad++
			continue
		}
		if _, err := sp.Write(out); err != nil {
			return false, bad, err
		}
	}
}

// uuLine decodes one uuencoded line: a length character, then groups of
// four characters for three bytes. Trailing spaces some tools strip are
// restored; a line too short or with characters outside ' '..'`' fails.
func uuLine(line, out []byte) ([]byte, bool) {
	if len(line) == 0 {
		return out[:0], false
	}
	n := int((line[0] - ' ') & 63)
	body := line[1:]
	need := (n + 2) / 3 * 4
	if len(body)+3 < need {
		return out[:0], false
	}
	out = out[:0]
	for i := 0; i < need; i += 4 {
		var q [4]byte
		for j := range q {
			c := byte(' ')
			if i+j < len(body) {
				c = body[i+j]
			}
			if c < ' ' || c > '`' {
				return out[:0], false
			}
			q[j] = (c - ' ') & 63
		}
		out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
	}
	return out[:n], true
}
