package proto

import (
	"strings"
)

// Reply is one reply of an FTP or SMTP server: a three-digit code and its
// text, possibly on several lines ("NNN-first", …, "NNN last").
type Reply struct {
	Code       int
	Lines      []string // the text of each line, the code and separator removed where present
	Start, End int64    // stream offsets of the reply
}

// Text joins the reply's lines with spaces.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// ReplyCode returns the code of a reply line ("NNN " or "NNN-" or a bare
// "NNN") and whether the line continues (the "-" form).
func ReplyCode(line []byte) (code int, more, ok bool) {
	if len(line) < 3 {
		return 0, false, false
	}
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	if line[0] < '1' || line[0] > '6' {
		return 0, false, false
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, true
	}
	switch line[3] {
	case ' ':
		return code, false, true
	case '-':
		return code, true, true
	}
	return 0, false, false
}

// ReplyReader reads replies from a LineReader.
type ReplyReader struct {
	lr *LineReader
	// MaxLines bounds the lines of one multi-line reply.
	MaxLines int
	// Junk counts lines that were not part of any reply (a gap's zeros,
	// an encrypted stream, another protocol).
	Junk int
}

// NewReplyReader reads replies from lr.
func NewReplyReader(lr *LineReader) *ReplyReader {
	return &ReplyReader{lr: lr, MaxLines: 1000}
}

// Next returns the next reply; ok is false at the end of the stream.
func (rr *ReplyReader) Next() (Reply, bool) {
	for {
		ln, err := rr.lr.Next()
		if err != nil {
			return Reply{}, false
		}
		code, more, ok := ReplyCode(ln.Text)
		if !ok {
			rr.Junk++
			continue
		}
		r := Reply{Code: code, Start: ln.Start, End: ln.End, Lines: []string{lineText(ln.Text)}}
		for more {
			ln, err = rr.lr.Next()
			if err != nil {
				break
			}
			r.End = ln.End
			c, m, ok := ReplyCode(ln.Text)
			if ok && c == code {
				more = m
				r.Lines = appendBounded(r.Lines, lineText(ln.Text), rr.MaxLines)
				continue
			}
			// FTP lets the lines between the first and the last carry
			// any text.
			r.Lines = appendBounded(r.Lines, strings.TrimSpace(string(ln.Text)), rr.MaxLines)
		}
		return r, true
	}
}

func lineText(b []byte) string {
	if len(b) <= 4 {
		return ""
	}
	return strings.TrimSpace(string(b[4:]))
}

func appendBounded(s []string, v string, maxLen int) []string {
	if len(s) >= maxLen {
		return s
	}
	return append(s, v)
}
