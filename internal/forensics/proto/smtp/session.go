package smtp

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

const (
	maxLine        = 8192
	sniffBytes     = 4096
	maxMessageSize = 1 << 30
)

var verbs = map[string]bool{
	"EHLO": true, "HELO": true, "LHLO": true, "MAIL": true, "RCPT": true, "DATA": true, "BDAT": true,
	"RSET": true, "NOOP": true, "QUIT": true, "VRFY": true, "EXPN": true, "HELP": true, "STARTTLS": true,
	"AUTH": true, "ETRN": true, "XCLIENT": true, "XFORWARD": true, "TURN": true, "ATRN": true,
}

func verbOf(line []byte) (verb, arg string) {
	v, a, _ := strings.Cut(string(line), " ")
	return strings.ToUpper(v), a
}

// isSMTP tells an SMTP (or LMTP) session by content: the client's
// EHLO/HELO/LHLO, or the server's 220 greeting naming SMTP followed by
// 250 or 354 replies.
func isSMTP(c *flow.Conn) bool {
	if h := c.ToServer; h != nil && h.Size > 0 {
		lr := proto.NewLineReader(h.Data, 0, min(h.Size, sniffBytes), 512)
		for i := 0; i < 3; i++ {
			ln, err := lr.Next()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(ln.Text)) == 0 {
				continue
			}
			v, _ := verbOf(ln.Text)
			if v == "EHLO" || v == "HELO" || v == "LHLO" {
				return true
			}
			break
		}
	}
	h := c.ToClient
	if h == nil || h.Size == 0 {
		return false
	}
	rr := proto.NewReplyReader(proto.NewLineReader(h.Data, 0, min(h.Size, sniffBytes), 512))
	greet, ok := rr.Next()
	if !ok || greet.Code != 220 || rr.Junk > 0 {
		return false
	}
	t := strings.ToUpper(greet.Text())
	if !strings.Contains(t, "SMTP") && !strings.Contains(t, "LMTP") && !strings.Contains(t, "MAIL") {
		return false
	}
	for i := 0; i < 20; i++ {
		r, ok := rr.Next()
		if !ok {
			break
		}
		if r.Code == 250 || r.Code == 354 {
			return rr.Junk == 0
		}
	}
	return false
}

// session reads one SMTP connection.
type session struct {
	c     *flow.Conn
	lr    *proto.LineReader  // the client's side
	rr    *proto.ReplyReader // the server's side, nil when not captured
	n     int                // messages so far
	from  string
	rcpt  []string
	sizeP int64 // MAIL FROM's SIZE=, -1 when absent
	bdat  *message
	objs  []*flow.Object
	warns []flow.Warning
}

func (s *session) warn(format string, args ...any) {
	s.warns = append(s.warns, flow.Warning{Message: fmt.Sprintf("SMTP conn %d (%s→%s): ", s.c.ID, s.c.Client, s.c.Server) + fmt.Sprintf(format, args...)})
}

// reply returns the server's next reply; ok is false when the server's
// side was not captured or has ended.
func (s *session) reply() (proto.Reply, bool) {
	if s.rr == nil {
		return proto.Reply{}, false
	}
	return s.rr.Next()
}

func (s *session) run() {
	s.sizeP = -1
	if s.rr != nil {
		if r, ok := s.rr.Next(); ok && r.Code != 220 {
			s.warn("the first reply is %d, not the 220 greeting: the capture began mid-session?", r.Code)
		}
	}
	for {
		ln, err := s.lr.Next()
		if err != nil {
			break
		}
		verb, arg := verbOf(ln.Text)
		if !verbs[verb] {
			continue
		}
		switch verb {
		case "MAIL":
			s.from, s.rcpt, s.sizeP = cutKeyword(arg, "FROM:"), nil, sizeParam(arg)
			s.reply()
		case "RCPT":
			r, ok := s.reply()
			if !ok || r.Code/100 == 2 {
				s.rcpt = append(s.rcpt, cutKeyword(arg, "TO:"))
			}
		case "RSET":
			s.from, s.rcpt, s.bdat = "", nil, nil
			s.reply()
		case "DATA":
			s.data()
		case "BDAT":
			if !s.chunk(arg) {
				return
			}
		case "STARTTLS":
			r, ok := s.reply()
			tls := (ok && r.Code == 220) || (!ok && s.rr == nil && bytes.HasPrefix(s.lr.Peek(1), []byte{0x16}))
			if tls {
				s.warn("STARTTLS at client→server offset %d: the rest of the session is encrypted and was not read", ln.Start)
				return
			}
		case "AUTH":
			s.auth()
		case "QUIT":
			s.reply()
			return
		default:
			s.reply()
		}
	}
	if s.bdat != nil {
		s.finish(s.bdat, false, "the client's side ended before BDAT LAST")
	}
}

// auth skips an AUTH exchange: the client's lines answering 334
// challenges (or, without the server's side, every line up to the next
// command).
func (s *session) auth() {
	if s.rr == nil {
		for {
			v, _ := verbOf(bytes.TrimRight(s.lr.Peek(16), "\r\n"))
			if verbs[v] || len(s.lr.Peek(1)) == 0 {
				return
			}
			if _, err := s.lr.Next(); err != nil {
				return
			}
		}
	}
	for {
		r, ok := s.reply()
		if !ok || r.Code != 334 {
			return
		}
		if _, err := s.lr.Next(); err != nil {
			return
		}
	}
}

// data reads a message after DATA: lines until one holding a single dot,
// with the dot that starts any other line removed.
func (s *session) data() {
	if r, ok := s.reply(); ok && r.Code != 354 {
		return // refused: no content follows
	} else if !ok && s.rr == nil && s.refusedWithoutServer() {
		return
	}
	m := s.newMessage()
	atStart := true
	var gapIdx int
	h := s.c.ToServer
	for {
		frag, err := s.lr.Fragment()
		if err != nil || len(frag) == 0 {
			s.finish(m, false, "the client's side ended before the final \".\"")
			return
		}
		fragStart := s.lr.Offset() - int64(len(frag))
		if atStart && frag[0] == '.' {
			if t := string(frag); t == ".\r\n" || t == ".\n" || (t == "." && len(s.lr.Peek(1)) == 0) {
				m.end = fragStart
				if r, ok := s.reply(); ok {
					if r.Code/100 == 2 {
						m.notes = append(m.notes, fmt.Sprintf("accepted: %d %s", r.Code, r.Text()))
					} else {
						m.notes = append(m.notes, fmt.Sprintf("refused by the server: %d %s", r.Code, r.Text()))
					}
				}
				s.finish(m, true, "")
				return
			}
			frag = frag[1:]
			fragStart++
			if len(frag) == 0 {
				continue
			}
		}
		for gapIdx < len(h.Gaps) && h.Gaps[gapIdx].End <= fragStart {
			gapIdx++
		}
		for i := gapIdx; i < len(h.Gaps) && h.Gaps[i].Start < fragStart+int64(len(frag)); i++ {
			g := h.Gaps[i]
			at := m.written - fragStart
			m.gaps = append(m.gaps, flow.Range{Start: max(g.Start, fragStart) + at, End: min(g.End, fragStart+int64(len(frag))) + at})
		}
		m.write(frag)
		atStart = frag[len(frag)-1] == '\n'
	}
}

// refusedWithoutServer guesses, with no replies to go by, whether DATA
// was refused: a client whose DATA was refused sends a command next,
// where a message starts with header fields.
func (s *session) refusedWithoutServer() bool {
	next := bytes.TrimRight(s.lr.Peek(16), "\r\n")
	v, _ := verbOf(next)
	switch v {
	case "QUIT", "RSET", "NOOP":
		return len(next) == 4
	case "MAIL":
		return bytes.HasPrefix(bytes.ToUpper(next), []byte("MAIL FROM:"))
	}
	return false
}

// chunk reads "BDAT n [LAST]" and its n bytes; false when the stream
// cannot be followed after it.
func (s *session) chunk(arg string) bool {
	f := strings.Fields(arg)
	if len(f) == 0 {
		s.reply()
		return true
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 || n > proto.MaxOffset {
		s.warn("BDAT with a bad size %q: the rest of the session cannot be followed", f[0])
		return false
	}
	if s.bdat == nil {
		s.bdat = s.newMessage()
		s.bdat.decoded = "BDAT chunks joined"
	}
	m := s.bdat
	start := s.lr.Offset()
	for _, g := range s.c.ToServer.GapsIn(start, start+n) {
		m.gaps = append(m.gaps, flow.Range{Start: m.written + g.Start - start, End: m.written + g.End - start})
	}
	got, err := io.Copy(m, io.LimitReader(s.lr, n))
	if err != nil || got < n {
		s.finish(m, false, fmt.Sprintf("a BDAT chunk of %d bytes is cut off after %d", n, got))
		s.bdat = nil
		return false
	}
	r, ok := s.reply()
	last := len(f) > 1 && strings.EqualFold(f[1], "LAST")
	if ok && r.Code/100 != 2 {
		m.notes = append(m.notes, fmt.Sprintf("BDAT refused: %d %s", r.Code, r.Text()))
	}
	if last {
		m.end = s.lr.Offset()
		s.bdat = nil
		s.finish(m, true, "")
	}
	return true
}

// cutKeyword removes "FROM:" or "TO:" (any case, spaces allowed) from a
// MAIL or RCPT argument.
func cutKeyword(arg, kw string) string {
	a := strings.TrimSpace(arg)
	if len(a) >= len(kw) && strings.EqualFold(a[:len(kw)], kw) {
		a = strings.TrimSpace(a[len(kw):])
	}
	return a
}

func sizeParam(arg string) int64 {
	for _, f := range strings.Fields(arg) {
		if v, ok := strings.CutPrefix(strings.ToUpper(f), "SIZE="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				return n
			}
		}
	}
	return -1
}
