package ratelimit

import (
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// clientAddrs returns n distinct client addresses, IPv4 and IPv6 mixed.
func clientAddrs(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		if i%4 == 3 {
			out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i), 14: byte(i >> 8), 13: byte(i >> 16)})
		} else {
			out[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		}
	}
	return out
}

// typicalRules are what a manifest might hold: a site-wide limit per
// client, a tighter one on sign-in, and a per-user count rule on the API.
var typicalRules = []Rule{
	{Name: "site", Limit: 1_000_000, Window: 5 * time.Minute},
	{Name: "login", Limit: 1_000_000, Window: time.Minute, Paths: []string{"/login"}, Methods: []string{"POST"}, Ban: time.Hour},
	{Name: "api-users", Limit: 1_000_000, Window: time.Minute, Paths: []string{"/api"}, Key: []KeyPart{{Kind: "identity"}}, Action: Count},
}

func TestCheckAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun counts the whole process's allocations.
	h := http.Header{"X-Api-Key": {"k1"}, "Cookie": {"theme=dark; session=abc123"}}
	req := &Request{IP: addr("192.0.2.1"), ForwardedIP: addr("2001:db8::1"), Identity: "alice", Method: "GET", Path: "/api/items", Header: h}
	for _, tc := range []struct {
		name  string
		rules []Rule
	}{
		{"ip", []Rule{{Name: "r", Limit: 1_000_000, Window: time.Minute}}},
		{"forwarded_ip", []Rule{{Name: "r", Limit: 1_000_000, Window: time.Minute, Key: []KeyPart{{Kind: "forwarded_ip"}}}}},
		{"typical rules", typicalRules},
		{"header", []Rule{{Name: "r", Limit: 1_000_000, Window: time.Minute, Key: []KeyPart{{Kind: "header", Name: "x-api-key"}}}}},
		{"cookie", []Rule{{Name: "r", Limit: 1_000_000, Window: time.Minute, Key: []KeyPart{{Kind: "cookie", Name: "session"}}}}},
		{"composite", []Rule{{Name: "r", Limit: 1_000_000, Window: time.Minute,
			Key: []KeyPart{{Kind: "ip"}, {Kind: "identity"}, {Kind: "method"}, {Kind: "cookie", Name: "session"}}}}},
	} {
		l := mustNew(t, tc.rules)
		now := t0
		l.Check(req, now) // the first request stores the key
		allocs := testing.AllocsPerRun(1000, func() {
			now = now.Add(time.Second) // crosses sub-buckets, and windows after a minute
			if v := l.Check(req, now); v.Rule != nil {
				t.Fatalf("%s: request refused: %+v", tc.name, v)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Check of a known key allocates %v times, want 0", tc.name, allocs)
		}
	}
}

// BenchmarkCheckIP is the common case: client-address rules, requests from
// 10 000 clients on every core, nobody over the limit.
func BenchmarkCheckIP(b *testing.B) {
	clients := clientAddrs(10_000)
	for _, bc := range []struct {
		name  string
		rules []Rule
	}{
		{"one-rule", []Rule{{Name: "site", Limit: 1_000_000, Window: 5 * time.Minute}}},
		{"typical-rules", typicalRules},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, bc.rules)
			var next atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				r := &Request{Method: "GET", Path: "/api/items", Identity: "alice"}
				now := t0
				for pb.Next() {
					i++
					r.IP = clients[i%len(clients)]
					now = now.Add(time.Millisecond)
					l.Check(r, now)
				}
			})
		})
	}
}

// BenchmarkCheckKeys compares the kinds of key on one core.
func BenchmarkCheckKeys(b *testing.B) {
	clients := clientAddrs(1000)
	for _, bc := range []struct {
		name string
		key  []KeyPart
	}{
		{"ip", nil},
		{"header", []KeyPart{{Kind: "header", Name: "X-Api-Key"}}},
		{"cookie", []KeyPart{{Kind: "cookie", Name: "session"}}},
		{"ip+identity+cookie", []KeyPart{{Kind: "ip"}, {Kind: "identity"}, {Kind: "cookie", Name: "session"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, []Rule{{Name: "r", Limit: 1_000_000, Window: time.Minute, Key: bc.key}})
			reqs := make([]Request, len(clients))
			for i, a := range clients {
				v := a.String()
				reqs[i] = Request{IP: a, Identity: "u" + v, Method: "GET", Path: "/",
					Header: http.Header{"X-Api-Key": {v}, "Cookie": {"theme=dark; session=" + v}}}
			}
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				now = now.Add(time.Millisecond)
				l.Check(&reqs[i%len(reqs)], now)
			}
		})
	}
}

// BenchmarkCheckNewKeys is a flood from ever new clients into a full
// limiter: every request evicts a key.
func BenchmarkCheckNewKeys(b *testing.B) {
	l := mustNew(b, []Rule{{Name: "site", Limit: 100, Window: time.Minute}}, WithMaxKeys(10_000))
	r := &Request{Method: "GET", Path: "/"}
	b.ReportAllocs()
	for i := range b.N {
		r.IP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Check(r, t0)
	}
}
