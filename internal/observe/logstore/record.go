package logstore

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one log line.
type Record struct {
	Time     time.Time // kept to the microsecond
	App      string    // "" for platform-wide lines
	Stream   string    // "stdout", "stderr", "access", "platform", "otlp"
	Sandbox  string    // sandbox ID (stdout/stderr), optional
	TraceID  string    // 32 lowercase hex, or ""
	SpanID   string    // 16 lowercase hex, or ""
	Severity string    // optional ("INFO", "ERROR"...; otlp and platform lines)
	Line     string    // the text (stdout/stderr/platform/otlp); "" for access records
	Access   *Access   // set when Stream == "access"
	// Truncated says that Line (or a field of Access) was longer than the
	// store keeps and was cut.
	Truncated bool
}

// Access is one request the gateway answered.
type Access struct {
	Method, Host, Path, Proto string // Path includes the query, clipped
	Status                    int
	Duration                  time.Duration // kept to the microsecond
	BytesIn, BytesOut         int64
	Client                    string // client IP
	User                      string // authenticated caller, "" if anonymous
	UserAgent, Referer        string
}

// The well-known streams.
const (
	StreamStdout   = "stdout"
	StreamStderr   = "stderr"
	StreamAccess   = "access"
	StreamPlatform = "platform"
	StreamOTLP     = "otlp"
)

// Limits on the fields other than Line (which Options.MaxLine bounds).
const (
	maxName  = 256      // app, stream, sandbox, severity, method, proto, client, user
	maxField = 8 << 10  // host, path, user agent, referer, and ids that are not hex
	truncMrk = "…[cut]" // appended to a value that was cut
)

// Text is the record's text without time, app and stream: the Line (with
// the severity before it, and " trace_id=…" after it when set), or for an
// access record a combined-log-like rendering:
//
//	CLIENT - USER "METHOD PATH PROTO" STATUS BYTES_OUT "REFERER" "USER_AGENT" host=HOST in=BYTES_IN dur=DURATION trace_id=ID
//
// Query.Grep and Query.Regexp match it.
func (r Record) Text() string {
	var b strings.Builder
	r.appendText(&b)
	return b.String()
}

func (r *Record) appendText(b *strings.Builder) {
	if a := r.Access; a != nil {
		b.WriteString(orDash(a.Client))
		b.WriteString(" - ")
		b.WriteString(orDash(a.User))
		b.WriteString(` "`)
		b.WriteString(a.Method)
		b.WriteByte(' ')
		b.WriteString(a.Path)
		b.WriteByte(' ')
		b.WriteString(a.Proto)
		b.WriteString(`" `)
		b.WriteString(strconv.Itoa(a.Status))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(a.BytesOut, 10))
		b.WriteString(` "`)
		b.WriteString(orDash(a.Referer))
		b.WriteString(`" "`)
		b.WriteString(orDash(a.UserAgent))
		b.WriteString(`" host=`)
		b.WriteString(orDash(a.Host))
		b.WriteString(" in=")
		b.WriteString(strconv.FormatInt(a.BytesIn, 10))
		b.WriteString(" dur=")
		b.WriteString(a.Duration.String())
	} else {
		if r.Severity != "" {
			b.WriteString(r.Severity)
			b.WriteByte(' ')
		}
		b.WriteString(r.Line)
	}
	if r.Truncated && r.Access == nil {
		b.WriteString(truncMrk)
	}
	if r.TraceID != "" {
		b.WriteString(" trace_id=")
		b.WriteString(r.TraceID)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// String renders the record as one human line:
//
//	2026-12-06T10:00:00.123456Z APP[/SANDBOX] STREAM TEXT
//
// with "-" for a platform-wide record's app and TEXT as Text gives it.
func (r Record) String() string {
	var b strings.Builder
	b.Grow(64 + len(r.Line))
	b.WriteString(r.Time.UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteByte(' ')
	b.WriteString(orDash(r.App))
	if r.Sandbox != "" {
		b.WriteByte('/')
		b.WriteString(r.Sandbox)
	}
	b.WriteByte(' ')
	b.WriteString(orDash(r.Stream))
	b.WriteByte(' ')
	r.appendText(&b)
	return b.String()
}

// jsonRecord is the JSON form of a Record: snake_case names, the time in
// RFC 3339 with nanoseconds, empty fields left out, and an access
// record's fields nested under "access".
type jsonRecord struct {
	Time      time.Time   `json:"time"`
	App       string      `json:"app,omitempty"`
	Stream    string      `json:"stream"`
	Sandbox   string      `json:"sandbox,omitempty"`
	TraceID   string      `json:"trace_id,omitempty"`
	SpanID    string      `json:"span_id,omitempty"`
	Severity  string      `json:"severity,omitempty"`
	Line      string      `json:"line,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
	Access    *jsonAccess `json:"access,omitempty"`
}

type jsonAccess struct {
	Method     string `json:"method"`
	Host       string `json:"host"`
	Path       string `json:"path"`
	Proto      string `json:"proto"`
	Status     int    `json:"status"`
	DurationUS int64  `json:"duration_us"`
	BytesIn    int64  `json:"bytes_in"`
	BytesOut   int64  `json:"bytes_out"`
	Client     string `json:"client"`
	User       string `json:"user,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	Referer    string `json:"referer,omitempty"`
}

// MarshalJSON encodes the record for --json:
//
//	{"time":"2026-12-06T10:00:00.123456Z","app":"shop","stream":"access",
//	 "trace_id":"…","access":{"method":"GET","host":"shop.example.com",
//	 "path":"/cart?id=1","proto":"HTTP/2.0","status":200,"duration_us":1234,
//	 "bytes_in":0,"bytes_out":512,"client":"203.0.113.9","user":"alice",
//	 "user_agent":"…","referer":"…"}}
//
// Keys are snake_case; the time is RFC 3339 with nanoseconds in UTC;
// app, sandbox, trace_id, span_id, severity, line, truncated, and the
// access record's user, user_agent and referer are left out when empty;
// an access record's fields are nested under "access".
func (r Record) MarshalJSON() ([]byte, error) {
	j := jsonRecord{Time: r.Time.UTC(), App: r.App, Stream: r.Stream, Sandbox: r.Sandbox, TraceID: r.TraceID,
		SpanID: r.SpanID, Severity: r.Severity, Line: r.Line, Truncated: r.Truncated}
	if a := r.Access; a != nil {
		j.Access = &jsonAccess{Method: a.Method, Host: a.Host, Path: a.Path, Proto: a.Proto, Status: a.Status,
			DurationUS: a.Duration.Microseconds(), BytesIn: a.BytesIn, BytesOut: a.BytesOut, Client: a.Client,
			User: a.User, UserAgent: a.UserAgent, Referer: a.Referer}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j jsonRecord
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decoding log record: %w", err)
	}
	*r = Record{Time: j.Time, App: j.App, Stream: j.Stream, Sandbox: j.Sandbox, TraceID: j.TraceID, SpanID: j.SpanID,
		Severity: j.Severity, Line: j.Line, Truncated: j.Truncated}
	if a := j.Access; a != nil {
		r.Access = &Access{Method: a.Method, Host: a.Host, Path: a.Path, Proto: a.Proto, Status: a.Status,
			Duration: time.Duration(a.DurationUS) * time.Microsecond, BytesIn: a.BytesIn, BytesOut: a.BytesOut,
			Client: a.Client, User: a.User, UserAgent: a.UserAgent, Referer: a.Referer}
	}
	return nil
}

// clean makes a value safe to store and print: invalid UTF-8 becomes
// U+FFFD, control characters other than tab are escaped (\n, \r, \xHH),
// and a value longer than max bytes is cut at a rune boundary. It reports
// whether it cut.
func clean(s string, max int) (string, bool) {
	i := 0
	for i < len(s) {
		if c := s[i]; c < 0x20 && c != '\t' || c >= 0x7f {
			break
		}
		i++
	}
	switch {
	case i == len(s) && len(s) <= max:
		return s, false // plain printable ASCII within the limit: the common case
	case i >= max:
		return s[:max], true
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + 8)
	b.WriteString(s[:i])
	cut := false
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = "\uFFFD"
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r < 0x20 && r != '\t' || r == 0x7f:
			piece = `\x` + hex.EncodeToString([]byte{byte(r)})
		default:
			piece = s[i : i+size]
		}
		if b.Len()+len(piece) > max {
			cut = true
			break
		}
		b.WriteString(piece)
		i += size
	}
	return b.String(), cut
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// sanitize cleans every field of r in place (r.Access must be r's own
// copy), setting Truncated when it cut something.
func (r *Record) sanitize(maxLine int) {
	var cut, c bool
	r.App, c = clean(r.App, maxName)
	cut = cut || c
	r.Stream, c = clean(r.Stream, maxName)
	cut = cut || c
	r.Sandbox, c = clean(r.Sandbox, maxName)
	cut = cut || c
	r.Severity, c = clean(r.Severity, maxName)
	cut = cut || c
	r.Line, c = clean(r.Line, maxLine)
	cut = cut || c
	if !isHex(r.TraceID, 32) {
		r.TraceID, c = clean(r.TraceID, maxField)
		cut = cut || c
	}
	if !isHex(r.SpanID, 16) {
		r.SpanID, c = clean(r.SpanID, maxField)
		cut = cut || c
	}
	if a := r.Access; a != nil {
		for _, f := range []struct {
			p   *string
			max int
		}{{&a.Method, maxName}, {&a.Proto, maxName}, {&a.Client, maxName}, {&a.User, maxName},
			{&a.Host, maxField}, {&a.Path, maxField}, {&a.UserAgent, maxField}, {&a.Referer, maxField}} {
			*f.p, c = clean(*f.p, f.max)
			cut = cut || c
		}
		if a.BytesIn < 0 {
			a.BytesIn = 0
		}
		if a.BytesOut < 0 {
			a.BytesOut = 0
		}
		if a.Duration < 0 {
			a.Duration = 0
		}
		if a.Status < 0 {
			a.Status = 0
		}
	}
	r.Truncated = r.Truncated || cut
}
