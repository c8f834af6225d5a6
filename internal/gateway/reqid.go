package gateway

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// maxRequestIDLen bounds a client's X-Request-Id that the gateway keeps.
const maxRequestIDLen = 128

// requestID returns the request's ID and makes sure the request header
// carries it: a client's X-Request-Id is kept when it is 1 to 128 printable
// ASCII characters without spaces, anything else is replaced by a random ID.
func requestID(h http.Header) string {
	if v := h["X-Request-Id"]; len(v) > 0 && validRequestID(v[0]) {
		if len(v) > 1 {
			h["X-Request-Id"] = v[:1:1]
		}
		return v[0]
	}
	id := newRequestID()
	h["X-Request-Id"] = []string{id}
	return id
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// newRequestID returns 32 hex digits from the runtime's per-thread
// generator: unique enough to correlate logs, and no lock or syscall.
func newRequestID() string {
	var raw [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		raw[i], raw[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	var out [32]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}
