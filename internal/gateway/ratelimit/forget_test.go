package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestForget(t *testing.T) {
	for _, key := range [][]KeyPart{{{Kind: KindIP}}, {{Kind: KindMethod}}, {{Kind: KindIP}, {Kind: KindPath}}} {
		l, err := New([]Rule{{Name: "r", Limit: 2, Window: time.Minute, Key: key}})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1000, 0)
		r := &Request{IP: netip.MustParseAddr("192.0.2.1"), Method: "GET", Path: "/"}
		for i := 0; i < 3; i++ {
			l.Check(r, now)
		}
		if v := l.Check(r, now); v.Rule == nil {
			t.Fatalf("key %v: not over the limit after 4 requests", key)
		}
		l.Forget("r", r)
		l.Forget("other", r) // unknown rule: nothing happens
		if v := l.Check(r, now); v.Rule != nil {
			t.Errorf("key %v: still over after Forget: %+v", key, v)
		}
	}
}
