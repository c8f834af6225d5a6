package proto

import (
	"fmt"
	"strings"

	"noops/internal/forensics/flow"
)

// Ref names the direction h of connection c.
func Ref(c *flow.Conn, h *flow.Half) flow.FlowRef {
	if h == nil {
		return flow.FlowRef{Proto: "tcp", Src: c.Client, Dst: c.Server, Conn: c.ID}
	}
	return flow.FlowRef{Proto: "tcp", Src: h.Src, Dst: h.Dst, Conn: c.ID}
}

// FormatRanges writes ranges as "a-b, c-d".
func FormatRanges(rs []flow.Range) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d-%d", r.Start, r.End)
	}
	return b.String()
}

// MergeRanges sorts nothing: it joins ranges that touch or overlap in an
// already sorted list.
func MergeRanges(rs []flow.Range) []flow.Range {
	var out []flow.Range
	for _, r := range rs {
		if r.End <= r.Start {
			continue
		}
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Direction says which way h goes in c, for messages.
func Direction(c *flow.Conn, h *flow.Half) string {
	if h == c.ToServer {
		return "client→server"
	}
	return "server→client"
}

// GapWarnings describes the gaps of a control stream.
func GapWarnings(proto string, c *flow.Conn, h *flow.Half) []flow.Warning {
	if h == nil || len(h.Gaps) == 0 {
		return nil
	}
	return []flow.Warning{{Message: fmt.Sprintf("%s conn %d (%s→%s): %s bytes %s not captured; what was said there is lost",
		proto, c.ID, h.Src, h.Dst, Direction(c, h), FormatRanges(h.Gaps))}}
}

// ASCIILower lowers A-Z only, so that byte offsets in the result are
// offsets in s (strings.ToLower may change lengths of invalid UTF-8).
func ASCIILower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Swapped returns c seen from the other side: Client and Server, and
// their directions, exchanged. A capture without the SYN names the
// higher port the client, which is wrong for a server on a high port; an
// extractor that recognises its protocol only the other way round uses
// this view (the halves are shared, not copied).
func Swapped(c *flow.Conn) *flow.Conn {
	return &flow.Conn{ID: c.ID, Client: c.Server, Server: c.Client, ToServer: c.ToClient, ToClient: c.ToServer, Frames: c.Frames}
}
