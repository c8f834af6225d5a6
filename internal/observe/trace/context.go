// Package trace is W3C trace context (https://www.w3.org/TR/trace-context/):
// parsing, starting and continuing the traceparent header that joins the
// gateway, apps and events into one trace.
package trace

import (
	"crypto/rand"
	"encoding/hex"
)

// Parent is a parsed traceparent header (version 00).
type Parent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// Header is the W3C header name.
const Header = "traceparent"

// Parse reads a traceparent value: "00-<32 hex>-<16 hex>-<2 hex>". An
// all-zero trace or span ID is invalid, as the specification says. Later
// versions are read by their first four fields.
func Parse(s string) (Parent, bool) {
	var p Parent
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return p, false
	}
	if s[:2] == "ff" || !isHex(s[:2]) || s[:2] == "00" && len(s) != 55 || len(s) > 55 && s[55] != '-' {
		return p, false
	}
	if !lowerHex(s[3:35]) || !lowerHex(s[36:52]) || !isHex(s[53:55]) {
		return p, false
	}
	_, _ = hex.Decode(p.TraceID[:], []byte(s[3:35]))
	_, _ = hex.Decode(p.SpanID[:], []byte(s[36:52]))
	var f [1]byte
	_, _ = hex.Decode(f[:], []byte(s[53:55]))
	p.Flags = f[0]
	if p.TraceID == [16]byte{} || p.SpanID == [8]byte{} {
		return Parent{}, false
	}
	return p, true
}

// New starts a trace: a random trace ID and span ID, sampled.
func New() Parent {
	var p Parent
	_, _ = rand.Read(p.TraceID[:])
	_, _ = rand.Read(p.SpanID[:])
	p.Flags = 1
	return p
}

// Child continues the trace with a new span ID.
func (p Parent) Child() Parent {
	_, _ = rand.Read(p.SpanID[:])
	return p
}

// TraceIDString is the trace ID in hex.
func (p Parent) TraceIDString() string { return hex.EncodeToString(p.TraceID[:]) }

// String is the header value.
func (p Parent) String() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], p.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], p.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{p.Flags})
	return string(b[:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// lowerHex: the IDs must be lower-case hex.
func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
