package tracestore

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"noops/internal/errkind"
)

// Span is one operation of a trace, as stored.
type Span struct {
	TraceID  string // 32 lowercase hex digits
	SpanID   string // 16 lowercase hex digits
	ParentID string // "" for a root span
	Name     string
	Kind     string // "server", "client", "internal", "producer", "consumer"
	Service  string // the resource's service.name ("noops-gateway" for the gateway's spans)
	App      string // the noops app the span came from ("" for platform spans)

	Start, End time.Time

	StatusCode    string // "unset", "ok", "error"
	StatusMessage string

	// Attributes are flattened to text; Add bounds their count and the
	// length of keys and values (see the Max constants).
	Attributes map[string]string
	Events     []SpanEvent
}

// SpanEvent is a timestamped annotation of a span (an exception, a log
// line).
type SpanEvent struct {
	Name       string
	Time       time.Time
	Attributes map[string]string
}

// Duration is End - Start.
func (s *Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// The bounds Add applies to every span; longer text is cut at a rune
// boundary, extra attributes and events are dropped. The OTLP receiver
// applies the same ones while converting.
const (
	MaxNameLen         = 512  // span and event names, service and app names
	MaxStatusLen       = 1024 // the status message
	MaxAttributes      = 64   // per span
	MaxEventAttributes = 16   // per event
	MaxEvents          = 32   // per span
	MaxAttrKeyLen      = 128
	MaxAttrValueLen    = 2048
)

// Kinds and status codes, in the order of their codes on disk.
var (
	kinds    = [...]string{"internal", "server", "client", "producer", "consumer"}
	statuses = [...]string{"unset", "ok", "error"}
)

func kindCode(k string) byte {
	for i, n := range kinds {
		if n == k {
			return byte(i)
		}
	}
	return 0
}

func statusCode(c string) byte {
	for i, n := range statuses {
		if n == c {
			return byte(i)
		}
	}
	return 0
}

// Truncate cuts s to at most n bytes at a rune boundary and replaces
// invalid UTF-8, so that stored text is always printable as UTF-8.
func Truncate(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// ValidTraceID reports whether id is 32 lowercase hex digits, not all zero.
func ValidTraceID(id string) bool { return validHexID(id, 32) }

// ValidSpanID reports whether id is 16 lowercase hex digits, not all zero.
func ValidSpanID(id string) bool { return validHexID(id, 16) }

func validHexID(id string, n int) bool {
	if len(id) != n {
		return false
	}
	zero := true
	for i := 0; i < n; i++ {
		c := id[i]
		switch {
		case c == '0':
		case '1' <= c && c <= '9' || 'a' <= c && c <= 'f':
			zero = false
		default:
			return false
		}
	}
	return !zero
}

// check reports why s cannot be stored, or nil.
func (s *Span) check() error {
	switch {
	case !ValidTraceID(s.TraceID):
		return fmt.Errorf("span %.16q: trace ID %.40q is not 32 lowercase hex digits (not all zero)", s.SpanID, s.TraceID)
	case !ValidSpanID(s.SpanID):
		return fmt.Errorf("span of trace %s: span ID %.40q is not 16 lowercase hex digits (not all zero)", s.TraceID, s.SpanID)
	case s.ParentID != "" && !ValidSpanID(s.ParentID):
		return fmt.Errorf("span %s: parent ID %.40q is not 16 lowercase hex digits", s.SpanID, s.ParentID)
	case s.Start.IsZero() || s.Start.UnixNano() <= 0:
		return fmt.Errorf("span %s: no start time", s.SpanID)
	}
	return nil
}

// bound returns s within the Max limits, with End not before Start and
// Kind and StatusCode known. It shares nothing mutable with s.
func bound(s Span) Span {
	s.Name = Truncate(s.Name, MaxNameLen)
	s.Service = Truncate(s.Service, MaxNameLen)
	s.App = Truncate(s.App, MaxNameLen)
	s.StatusMessage = Truncate(s.StatusMessage, MaxStatusLen)
	s.Kind = kinds[kindCode(s.Kind)]
	s.StatusCode = statuses[statusCode(s.StatusCode)]
	if s.End.Before(s.Start) {
		s.End = s.Start
	}
	s.Attributes = boundAttrs(s.Attributes, MaxAttributes)
	if len(s.Events) > 0 {
		n := min(len(s.Events), MaxEvents)
		evs := make([]SpanEvent, n)
		for i := range n {
			e := s.Events[i]
			evs[i] = SpanEvent{Name: Truncate(e.Name, MaxNameLen), Time: e.Time, Attributes: boundAttrs(e.Attributes, MaxEventAttributes)}
		}
		s.Events = evs
	}
	return s
}

// boundAttrs copies m, keeping at most n entries (the smallest keys, so
// that the choice does not depend on map order) with bounded lengths.
func boundAttrs(m map[string]string, n int) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, min(len(m), n))
	if len(m) <= n {
		for k, v := range m {
			out[Truncate(k, MaxAttrKeyLen)] = Truncate(v, MaxAttrValueLen)
		}
		return out
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys[:n] {
		out[Truncate(k, MaxAttrKeyLen)] = Truncate(m[k], MaxAttrValueLen)
	}
	return out
}

// size estimates the memory a span takes, for the buffer's bound.
func (s *Span) size() int {
	n := 200 + len(s.Name) + len(s.Service) + len(s.App) + len(s.StatusMessage)
	for k, v := range s.Attributes {
		n += 32 + len(k) + len(v)
	}
	for _, e := range s.Events {
		n += 64 + len(e.Name)
		for k, v := range e.Attributes {
			n += 32 + len(k) + len(v)
		}
	}
	return n
}

// invalid classifies a bad span for the caller.
func invalid(err error) error { return errkind.E(errkind.Invalid, err) }

// utcNano is the time of n nanoseconds since the epoch, in UTC.
func utcNano(n int64) time.Time { return time.Unix(0, n).UTC() }
