package ratelimit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// clientAddr returns the address an "ip" or "forwarded_ip" part aggregates
// on. An IPv4-mapped IPv6 address counts as the IPv4 address and the zone is
// dropped, so one client cannot split its count by how it is written.
func clientAddr(r *Request, kind string) netip.Addr {
	a := r.IP
	if kind == KindForwardedIP && r.ForwardedIP.IsValid() {
		a = r.ForwardedIP
	}
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	return a
}

// hashAddr hashes a for choosing a shard, keyed by two random words so that
// an attacker cannot pick addresses that share a victim's shard. Every bit of
// the address reaches every bit of the hash (splitmix64's finalizer, twice).
func hashAddr(key [2]uint64, a netip.Addr) uint64 {
	b := a.As16()
	return mix64(binary.BigEndian.Uint64(b[:8]) ^ key[0] ^ mix64(binary.BigEndian.Uint64(b[8:])^key[1]))
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// partValue returns the value of a string part (every kind but the two
// address kinds) of r. It does not allocate: the value is r's own string or
// a substring of it. p is normalized (a header name is canonical).
func partValue(r *Request, p KeyPart) string {
	switch p.Kind {
	case KindIdentity:
		return r.Identity
	case KindPath:
		return r.Path
	case KindMethod:
		return r.Method
	case KindHeader:
		if v := r.Header[p.Name]; len(v) > 0 {
			return v[0]
		}
	case KindCookie:
		return cookieValue(r.Header, p.Name)
	}
	return ""
}

// cookieValue returns the value of the first cookie called name in h's
// Cookie headers, without its surrounding quotes, or "" when there is none.
// Like http.Request.Cookie, but it allocates nothing.
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || strings.TrimSpace(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// appendKey appends the composite key of r for parts to b. Each part is
// length-prefixed, so no two different requests encode alike.
func appendKey(b []byte, r *Request, parts []KeyPart) []byte {
	for _, p := range parts {
		switch p.Kind {
		case KindIP, KindForwardedIP:
			a := clientAddr(r, p.Kind)
			switch {
			case a.Is4():
				a4 := a.As4()
				b = append(b, 4)
				b = append(b, a4[:]...)
			case a.Is6():
				a16 := a.As16()
				b = append(b, 16)
				b = append(b, a16[:]...)
			default:
				b = append(b, 0)
			}
		default:
			v := partValue(r, p)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

// displayKey returns the key of r for parts as Verdict.Key shows it: the
// value of a single part, or "kind=value" pairs separated by spaces. Header
// and cookie values (often API keys and session tokens) are shown as a
// fingerprint, so logs correlate them without holding the secret.
func displayKey(r *Request, parts []KeyPart) string {
	if len(parts) == 1 {
		return displayPart(r, parts[0], false)
	}
	var sb strings.Builder
	for i, p := range parts {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(p.Kind)
		if p.Name != "" {
			sb.WriteByte(':')
			sb.WriteString(p.Name)
		}
		sb.WriteByte('=')
		sb.WriteString(displayPart(r, p, true))
	}
	return sb.String()
}

func displayPart(r *Request, p KeyPart, quote bool) string {
	switch p.Kind {
	case KindIP, KindForwardedIP:
		a := clientAddr(r, p.Kind)
		if !a.IsValid() {
			return "invalid"
		}
		return a.String()
	case KindHeader, KindCookie:
		return fingerprint(partValue(r, p))
	}
	v := partValue(r, p)
	if quote {
		return strconv.Quote(v)
	}
	return v
}

// fingerprint returns "sha256:" and the first 12 hex digits of the SHA-256
// of v, or `""` for the empty value (a missing header or cookie).
func fingerprint(v string) string {
	if v == "" {
		return `""`
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:6])
}
