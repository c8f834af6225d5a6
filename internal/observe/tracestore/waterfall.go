package tracestore

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLabel bounds the span column of a waterfall, in runes.
const maxLabel = 72

// Waterfall writes a trace as a text waterfall: a title line, a column
// header, then one line per span in depth-first order, children sorted by
// start and indented two spaces per level under their parent. A span
// whose parent is not among spans (an orphan: the parent was not
// exported, or not yet) is shown at the top level marked "(orphan)". Each
// line has the start offset from the trace's first span, the duration,
// the status, the span (name, then service and app) and a bar of width
// columns (at least 10) placing the span on the trace's time line. Spans
// need not be sorted; a cycle of parents is broken and marked as orphans.
func Waterfall(w io.Writer, spans []Span, width int) error {
	bw := bufio.NewWriter(w)
	if len(spans) == 0 {
		fmt.Fprintln(bw, "no spans")
		return bw.Flush()
	}
	width = max(width, 10)
	order := make([]*Span, len(spans))
	for i := range spans {
		order[i] = &spans[i]
	}
	slices.SortStableFunc(order, func(a, b *Span) int { return a.Start.Compare(b.Start) })
	start, end := order[0].Start, order[0].End
	byID := map[string]*Span{}
	services := map[string]bool{}
	for _, s := range order {
		end = later(end, s.End)
		if _, dup := byID[s.SpanID]; !dup {
			byID[s.SpanID] = s
		}
		services[s.Service] = true
	}
	total := end.Sub(start)

	// Children lists; a span is a root when it has no parent, and an
	// orphan when its parent is missing. Spans that the walk from those
	// does not reach sit on a cycle of parents: each becomes an orphan.
	children := map[*Span][]*Span{}
	var tops []*Span
	orphan := map[*Span]bool{}
	for _, s := range order {
		p := byID[s.ParentID]
		if s.ParentID == "" || p == nil {
			orphan[s] = s.ParentID != ""
			tops = append(tops, s)
			continue
		}
		children[p] = append(children[p], s)
	}

	type row struct {
		s     *Span
		depth int
	}
	var rows []row
	seen := map[*Span]bool{}
	var walk func(s *Span, depth int)
	walk = func(s *Span, depth int) {
		seen[s] = true
		rows = append(rows, row{s, depth})
		for _, c := range children[s] {
			if !seen[c] {
				walk(c, depth+1)
			}
		}
	}
	for _, s := range tops {
		walk(s, 0)
	}
	for _, s := range order {
		if !seen[s] {
			orphan[s] = true
			walk(s, 0)
		}
	}

	labels := make([]string, len(rows))
	labelWidth := len("span")
	for i, r := range rows {
		l := strings.Repeat("  ", min(r.depth, 16)) + label(r.s)
		if orphan[r.s] {
			l += " (orphan)"
		}
		l = clip(l, maxLabel)
		labels[i] = l
		labelWidth = max(labelWidth, utf8.RuneCountInString(l))
	}

	fmt.Fprintf(bw, "trace %s: %d spans, %d services, %s\n", order[0].TraceID, len(spans), len(services), fmtDur(total))
	fmt.Fprintf(bw, "%9s %9s %-6s %s  %s\n", "start", "duration", "status", pad("span", labelWidth), "timeline")
	for i, r := range rows {
		s := r.s
		fmt.Fprintf(bw, "%9s %9s %-6s %s  |%s|\n", fmtDur(s.Start.Sub(start)), fmtDur(s.Duration()), s.StatusCode,
			pad(labels[i], labelWidth), bar(s.Start.Sub(start), s.End.Sub(start), total, width))
	}
	return bw.Flush()
}

func label(s *Span) string {
	name := s.Name
	if name == "" {
		name = "(unnamed)"
	}
	var who string
	switch {
	case s.App != "" && s.App != s.Service:
		who = s.Service + " [app " + s.App + "]"
	case s.Service != "":
		who = s.Service
	default:
		who = s.App
	}
	if who == "" {
		return name
	}
	return name + "  " + who
}

// clip cuts s to n runes, marking the cut with "…". Control characters
// become spaces so that a hostile name cannot move the cursor.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n-1]) + "…"
}

func pad(s string, n int) string {
	return s + strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s)))
}

// bar draws [from, to) of total on width columns, at least one column.
func bar(from, to, total time.Duration, width int) string {
	a, b := 0, width
	if total > 0 {
		a = int(int64(from) * int64(width) / int64(total))
		b = int((int64(to)*int64(width) + int64(total) - 1) / int64(total))
	}
	a = min(max(a, 0), width-1)
	b = min(max(b, a+1), width)
	return strings.Repeat(" ", a) + strings.Repeat("█", b-a) + strings.Repeat(" ", width-b)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fmtDur prints a duration with three significant digits at most.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return trimFloat(float64(d)/1e3) + "µs"
	case d < time.Second:
		return trimFloat(float64(d)/1e6) + "ms"
	case d < time.Minute:
		return trimFloat(float64(d)/1e9) + "s"
	}
	return d.Round(time.Second).String()
}

func trimFloat(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}
