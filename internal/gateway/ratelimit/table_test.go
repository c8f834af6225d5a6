package ratelimit

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEviction(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		parts []KeyPart
		req   func(client string) *Request
	}{
		{"ip", nil, func(c string) *Request { return &Request{IP: addr(c)} }},
		{"string", []KeyPart{{Kind: "identity"}}, func(c string) *Request { return &Request{Identity: c} }},
		{"composite", []KeyPart{{Kind: "ip"}, {Kind: "identity"}}, func(c string) *Request { return &Request{IP: addr(c), Identity: c} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := mustNew(t, []Rule{{Name: "r", Limit: 1, Window: time.Minute, Key: tc.parts}}, WithMaxKeys(2))
			a, b, c := tc.req("192.0.2.1"), tc.req("192.0.2.2"), tc.req("192.0.2.3")
			steps := []struct {
				req       *Request
				name      string
				wantCount int // 0: passes
				wantLen   int
			}{
				{a, "a", 0, 1},
				{b, "b", 0, 2},
				{a, "a", 2, 2}, // a is over and was seen again
				{c, "c", 0, 2}, // full: evicts b, idle longest
				{a, "a", 3, 2}, // a kept its count
				{b, "b", 0, 2}, // b starts afresh; evicts c, the one not seen since
				{a, "a", 4, 2},
				{b, "b", 2, 2},
			}
			for i, s := range steps {
				v := l.Check(s.req, t0)
				if v.Count != s.wantCount || l.Len() != s.wantLen {
					t.Errorf("step %d, request from %s: count %d, Len %d; want count %d (0 = passes), Len %d", i+1, s.name, v.Count, l.Len(), s.wantCount, s.wantLen)
				}
			}
		})
	}
}

func TestMaxKeysBound(t *testing.T) {
	t.Parallel()
	for _, maxKeys := range []int{1, 3, 255, 1000, 20_000, DefaultMaxKeys} {
		t.Run(fmt.Sprint(maxKeys), func(t *testing.T) {
			t.Parallel()
			l := mustNew(t, []Rule{
				{Name: "ip", Limit: 5, Window: time.Minute},
				{Name: "user", Limit: 5, Window: time.Minute, Key: []KeyPart{{Kind: "identity"}}},
			}, WithMaxKeys(maxKeys))
			n := min(3*maxKeys, 150_000)
			for i := range n {
				l.Check(&Request{IP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Identity: fmt.Sprint(i)}, t0)
			}
			// Each rule is full: at most max keys, no fewer than the shards
			// can hold (max rounded down to a multiple of their number).
			got := l.Len()
			if got > 2*maxKeys || got < 2*(maxKeys-63) {
				t.Errorf("after %d clients, Len() = %d, want at most %d and near it", n, got, 2*maxKeys)
			}
		})
	}
}

func TestConcurrentChecks(t *testing.T) {
	t.Parallel()
	const (
		limit   = 100
		clients = 16
		workers = 8
		each    = 1000 // requests per worker, spread over the clients
	)
	l := mustNew(t, []Rule{
		{Name: "ip", Limit: limit, Window: time.Minute},
		{Name: "watch", Limit: limit / 2, Window: time.Minute, Action: Count, Key: []KeyPart{{Kind: "ip"}, {Kind: "method"}}},
	}, WithMaxKeys(1000))
	var passed [clients]atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a janitor and a metrics reader run alongside
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				l.Sweep(t0)
				l.Len()
			}
		}
	}()
	var checks sync.WaitGroup
	for w := range workers {
		checks.Add(1)
		go func() {
			defer checks.Done()
			for i := range each {
				c := (w + i) % clients
				r := &Request{IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(c)}), Method: "GET"}
				if v := l.Check(r, t0); v.Rule == nil {
					passed[c].Add(1)
				}
			}
		}()
	}
	checks.Wait()
	close(stop)
	wg.Wait()
	// Every client sent workers*each/clients = 500 requests at one instant:
	// exactly limit of them pass, however they interleaved.
	for c := range clients {
		if got := passed[c].Load(); got != limit {
			t.Errorf("client %d: %d requests passed, want %d", c, got, limit)
		}
	}
	if got := l.Len(); got != 2*clients {
		t.Errorf("Len() = %d, want %d", got, 2*clients)
	}
}

func TestWindowAdd(t *testing.T) {
	t.Parallel()
	// The ring directly: limit 2, requests at bucket numbers.
	var w window
	w.head = 1000
	for i, s := range []struct {
		b                   int64
		wantCount           uint32
		wantOver, wantFirst bool
	}{
		{1000, 1, false, false},
		{1030, 2, false, false},
		{1059, 3, true, true},
		{1060, 3, true, false},  // 1000 left: 1030, 1059, 1060
		{1090, 3, true, false},  // 1030 left: 1059, 1060, 1090
		{1120, 2, false, false}, // 1059 and 1060 left: back below the limit
		{1000, 3, true, true},   // a time behind counts in the newest bucket
		{1149, 4, true, false},  // 1090, 1120 (twice), 1149
		{1240, 1, false, false}, // all gone
		{-5, 2, false, false},   // far behind: still the newest bucket
	} {
		count, over, first := w.add(s.b, 2)
		if count != s.wantCount || over != s.wantOver || first != s.wantFirst {
			t.Errorf("step %d: add(%d) = %d, %v, %v; want %d, %v, %v", i+1, s.b, count, over, first, s.wantCount, s.wantOver, s.wantFirst)
		}
	}
}
