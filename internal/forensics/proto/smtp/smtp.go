package smtp

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// Extract finds SMTP sessions among conns by content, on any port, and
// returns each message the client sent (as a .eml object) followed by
// its attachments and its base64 or quoted-printable parts, decoded.
// A session of which only the server's side was captured has no message
// content: a warning says how many messages it accepted.
//
// The objects own their storage (memory, or an unlinked temporary file
// for big messages): Object.Close releases it.
func Extract(conns []*flow.Conn) ([]*flow.Object, []flow.Warning) {
	sorted := make([]*flow.Conn, 0, len(conns))
	for _, c := range conns {
		if c != nil {
			sorted = append(sorted, c)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	var (
		objs  []*flow.Object
		warns []flow.Warning
	)
	for _, c := range sorted {
		if !isSMTP(c) {
			if !isSMTP(proto.Swapped(c)) {
				continue
			}
			c = proto.Swapped(c) // no SYN, and the server on the higher port
		}
		warns = append(warns, proto.GapWarnings("SMTP", c, c.ToServer)...)
		warns = append(warns, proto.GapWarnings("SMTP", c, c.ToClient)...)
		if c.ToServer == nil || c.ToServer.Size == 0 {
			warns = append(warns, serverOnly(c))
			continue
		}
		s := &session{c: c, lr: proto.HalfLines(c.ToServer, maxLine)}
		if c.ToClient != nil {
			s.rr = proto.NewReplyReader(proto.HalfLines(c.ToClient, maxLine))
		}
		s.run()
		objs = append(objs, s.objs...)
		warns = append(warns, s.warns...)
	}
	return objs, warns
}

// serverOnly describes a session of which only the server's replies were
// captured.
func serverOnly(c *flow.Conn) flow.Warning {
	rr := proto.NewReplyReader(proto.HalfLines(c.ToClient, maxLine))
	var data int
	var queued []string
	after354 := false
	for {
		r, ok := rr.Next()
		if !ok {
			break
		}
		switch {
		case r.Code == 354:
			data++
			after354 = true
		case after354:
			queued = append(queued, fmt.Sprintf("%d %s", r.Code, r.Text()))
			after354 = false
		}
	}
	msg := fmt.Sprintf("SMTP conn %d (%s→%s): only the server's side was captured: %d message(s) were sent after 354 but their content, sent by the client, is not in the capture",
		c.ID, c.Client, c.Server, data)
	if len(queued) > 0 {
		msg += "; the server answered " + strings.Join(queued, "; ")
	}
	return flow.Warning{Message: msg}
}

// message is a message being read: after DATA, or over BDAT chunks.
type message struct {
	buf        *proto.Buffer
	start, end int64 // stream offsets
	written    int64 // bytes offered to the buffer, kept or not
	cut        bool
	gaps       []flow.Range
	notes      []string
	decoded    string
	from       string
	rcpt       []string
	sizeP      int64
}

func (s *session) newMessage() *message {
	return &message{buf: proto.NewBuffer("", 0), start: s.lr.Offset(), end: -1, from: s.from, rcpt: s.rcpt, sizeP: s.sizeP}
}

func (m *message) Write(p []byte) (int, error) {
	n := len(p)
	if room := maxMessageSize - m.buf.Size(); int64(len(p)) > room {
		m.cut = true
		p = p[:max(0, room)]
	}
	if _, err := m.buf.Write(p); err != nil {
		return 0, fmt.Errorf("keeping a message: %w", err)
	}
	m.written += int64(n)
	return n, nil
}

func (m *message) write(p []byte) {
	if _, err := m.Write(p); err != nil {
		m.cut = true
	}
}

// finish makes the objects of a message read to its end (or as far as
// the capture goes).
func (s *session) finish(m *message, ended bool, why string) {
	s.n++
	size := m.buf.Size()
	if m.end < 0 {
		m.end = s.lr.Offset()
	}
	o := &flow.Object{
		Protocol: "smtp", Name: fmt.Sprintf("smtp-%d-%d.eml", s.c.ID, s.n), Data: m.buf, Size: size,
		Flow: proto.Ref(s.c, s.c.ToServer), Frames: s.c.ToServer.Frames, Ranges: []flow.Range{{Start: m.start, End: m.end}},
		ExpectedSize: -1, ContentType: "message/rfc822",
	}
	o.SetClose(m.buf.Close)
	for _, g := range proto.MergeRanges(m.gaps) {
		if g.Start < size {
			o.Gaps = append(o.Gaps, flow.Range{Start: g.Start, End: min(g.End, size)})
		}
	}
	if m.decoded != "" {
		o.Decoded = []string{m.decoded}
	}
	o.Notes = append(o.Notes, "MAIL FROM:"+m.from, "RCPT TO:"+strings.Join(m.rcpt, ", "))
	if m.sizeP >= 0 {
		o.Notes = append(o.Notes, fmt.Sprintf("MAIL FROM declared SIZE=%d", m.sizeP))
	}
	o.Notes = append(o.Notes, m.notes...)
	if why != "" {
		o.Notes = append(o.Notes, why)
	}
	if m.cut {
		o.Notes = append(o.Notes, fmt.Sprintf("message cut at %d bytes (the size limit)", size))
	}
	if len(o.Gaps) > 0 {
		o.Notes = append(o.Notes, "message bytes not captured: "+proto.FormatRanges(o.Gaps))
	}
	o.Complete = ended && !m.cut && len(o.Gaps) == 0
	w := &walker{msg: o, base: strings.TrimSuffix(o.Name, ".eml")}
	w.message(io.NewSectionReader(m.buf, 0, size), 0)
	o.Notes = append(o.Notes, w.notes...)
	s.objs = append(s.objs, o)
	s.objs = append(s.objs, w.objs...)
}
