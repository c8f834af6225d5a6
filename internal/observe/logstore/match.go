package logstore

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// match reports whether r meets every criterion of q.
func (q *Query) match(r *Record) bool {
	if q.App != "" && r.App != q.App || len(q.Streams) > 0 && !slices.Contains(q.Streams, r.Stream) {
		return false
	}
	if !q.From.IsZero() && r.Time.Before(q.From) || !q.To.IsZero() && !r.Time.Before(q.To) {
		return false
	}
	if q.TraceID != "" && r.TraceID != q.TraceID {
		return false
	}
	if q.Grep != "" || q.Regexp != nil {
		text := r.Line
		if r.Access != nil || r.Severity != "" || r.TraceID != "" || r.Truncated {
			text = r.Text()
		}
		if q.Grep != "" && !strings.Contains(text, q.Grep) || q.Regexp != nil && !q.Regexp.MatchString(text) {
			return false
		}
	}
	if len(q.Fields) > 0 {
		var js map[string]json.RawMessage
		parsed := false
		for k, want := range q.Fields {
			v, ok := r.field(k)
			if !ok {
				if !parsed {
					js, parsed = jsonObject(r.Line), true
				}
				v, ok = jsonField(js, k)
			}
			if !ok || v != want {
				return false
			}
		}
	}
	return true
}

// field returns one of the record's own attributes, if set.
func (r *Record) field(k string) (string, bool) {
	var v string
	switch k {
	case "app":
		v = r.App
	case "stream":
		v = r.Stream
	case "sandbox":
		v = r.Sandbox
	case "trace_id":
		v = r.TraceID
	case "span_id":
		v = r.SpanID
	case "severity":
		v = r.Severity
	}
	if v != "" {
		return v, true
	}
	a := r.Access
	if a == nil {
		return "", false
	}
	switch k {
	case "method":
		return a.Method, true
	case "host":
		return a.Host, true
	case "path":
		return a.Path, true
	case "proto":
		return a.Proto, true
	case "status":
		return strconv.Itoa(a.Status), true
	case "duration_us":
		return strconv.FormatInt(a.Duration.Microseconds(), 10), true
	case "bytes_in":
		return strconv.FormatInt(a.BytesIn, 10), true
	case "bytes_out":
		return strconv.FormatInt(a.BytesOut, 10), true
	case "client":
		return a.Client, true
	case "user":
		return a.User, true
	case "user_agent":
		return a.UserAgent, true
	case "referer":
		return a.Referer, true
	}
	return "", false
}

// jsonObject parses line as a JSON object's top level, or returns nil.
func jsonObject(line string) map[string]json.RawMessage {
	t := strings.TrimSpace(line)
	if len(t) < 2 || t[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(t), &m) != nil {
		return nil
	}
	return m
}

func jsonField(m map[string]json.RawMessage, k string) (string, bool) {
	raw, ok := m[k]
	if !ok {
		return "", false
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	if len(raw) > 0 && (raw[0] == '{' || raw[0] == '[') {
		return "", false
	}
	return string(raw), true
}
