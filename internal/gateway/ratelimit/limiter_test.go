package ratelimit

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is a whole minute (and a whole ten seconds), so sub-buckets of 60 s
// and 600 s windows start at t0.
var t0 = time.Unix(1_700_000_040, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustNew(t testing.TB, rules []Rule, opts ...Option) *Limiter {
	t.Helper()
	l, err := New(rules, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// fromIP is a GET / request from ip.
func fromIP(ip string) *Request {
	return &Request{IP: addr(ip), Method: "GET", Path: "/"}
}

func TestLimitIsExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		limit  int
		window time.Duration
		spread time.Duration // the first Limit requests are spread evenly over this
	}{
		{"1 per minute", 1, time.Minute, 0},
		{"50 per minute, one instant", 50, time.Minute, 0},
		{"50 per minute, spread over 59s", 50, time.Minute, 59 * time.Second},
		{"1000 per 10 minutes, spread over 9m50s", 1000, 10 * time.Minute, 590 * time.Second},
		{"7 per 90s", 7, 90 * time.Second, 88 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := mustNew(t, []Rule{{Name: "r", Limit: tc.limit, Window: tc.window}})
			r := fromIP("192.0.2.1")
			step := tc.spread / time.Duration(tc.limit)
			for i := range tc.limit {
				if v := l.Check(r, at(time.Duration(i)*step)); v.Rule != nil {
					t.Fatalf("request %d of %d refused: %+v", i+1, tc.limit, v)
				}
			}
			last := at(tc.spread)
			v := l.Check(r, last)
			if v.Rule == nil || v.Rule.Name != "r" || v.Action != Block || v.Count != tc.limit+1 || !v.First {
				t.Fatalf("request %d = %+v, want refused by r with count %d, first", tc.limit+1, v, tc.limit+1)
			}
			v = l.Check(r, last)
			if v.Rule == nil || v.Count != tc.limit+2 || v.First {
				t.Fatalf("request %d = %+v, want refused with count %d, not first", tc.limit+2, v, tc.limit+2)
			}
		})
	}
}

func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	// Limit 3 per 60 s: 1 s sub-buckets. Refused requests count too.
	l := mustNew(t, []Rule{{Name: "r", Limit: 3, Window: time.Minute}})
	r := fromIP("192.0.2.1")
	for _, step := range []struct {
		at        time.Duration
		wantCount int // 0 when the request passes
		wantFirst bool
	}{
		{0, 0, false},
		{10 * time.Second, 0, false},
		{20 * time.Second, 0, false},
		{30 * time.Second, 4, true},                                      // 0, 10, 20, 30
		{59*time.Second + 999*time.Millisecond, 5, false},                // still all of them
		{60 * time.Second, 5, false},                                     // 0 has aged out: 10, 20, 30, 59.999, 60
		{70*time.Second + 500*time.Millisecond, 5, false},                // 10 has aged out
		{100 * time.Second, 4, false},                                    // 59.999, 60, 70.5, 100
		{120 * time.Second, 0, false},                                    // 70.5, 100, 120: back at the limit
		{121 * time.Second, 4, true},                                     // over again: a new event
		{121*time.Second + 999*time.Millisecond, 5, false},               // same bucket
		{185 * time.Second, 0, false},                                    // everything before 126 s is gone
		{10*time.Minute + 300*time.Millisecond, 0, false},                // long idle: the ring is cleared
		{10*time.Minute + 400*time.Millisecond, 0, false},                // 2
		{10*time.Minute + 500*time.Millisecond, 0, false},                // 3
		{10*time.Minute + 600*time.Millisecond, 4, true},                 // 4
		{-time.Second + 10*time.Minute + 700*time.Millisecond, 5, false}, // a clock behind counts in the newest bucket
	} {
		v := l.Check(r, at(step.at))
		if v.Count != step.wantCount || v.First != step.wantFirst || (v.Rule != nil) != (step.wantCount > 0) {
			t.Errorf("Check at %v = %+v, want count %d (0 = passes), first %v", step.at, v, step.wantCount, step.wantFirst)
		}
	}
}

func TestBucketBoundaries(t *testing.T) {
	t.Parallel()
	// Limit 1 per 60 s: a first request at first, a second at second. A
	// request is forgotten when its 1 s bucket leaves the window.
	for _, tc := range []struct {
		name          string
		first, second time.Duration
		wantRefused   bool
	}{
		{"same instant", 0, 0, true},
		{"last moment of the window", 500 * time.Millisecond, 59*time.Second + 999*time.Millisecond, true},
		{"start of its bucket, 60s later", 0, 60 * time.Second, false},
		{"end of its bucket, aged out with it", 999 * time.Millisecond, 60 * time.Second, false},
		{"next bucket, just before it ages out", time.Second, 60*time.Second + 999*time.Millisecond, true},
		{"next bucket, aged out", time.Second, 61 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := mustNew(t, []Rule{{Name: "r", Limit: 1, Window: time.Minute}})
			r := fromIP("192.0.2.1")
			if v := l.Check(r, at(tc.first)); v.Rule != nil {
				t.Fatalf("first request refused: %+v", v)
			}
			if v := l.Check(r, at(tc.second)); (v.Rule != nil) != tc.wantRefused {
				t.Errorf("second request at %v after one at %v: refused = %v, want %v", tc.second, tc.first, v.Rule != nil, tc.wantRefused)
			}
		})
	}
}

// refusedTwice sends r twice to l, which has one rule of limit 1, and
// reports whether the second was refused, that is whether the rule counts r.
func refusedTwice(l *Limiter, r *Request) bool {
	l.Check(r, t0)
	return l.Check(r, t0).Rule != nil
}

func TestScopeDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		paths, method []string
		reqMethod     string
		reqPath       string
		want          bool
	}{
		{"no scope counts all", nil, nil, "GET", "/anything", true},
		{"prefix itself", []string{"/api"}, nil, "GET", "/api", true},
		{"below prefix", []string{"/api"}, nil, "GET", "/api/x/y", true},
		{"sibling with same start", []string{"/api"}, nil, "GET", "/apix", false},
		{"other path", []string{"/api"}, nil, "GET", "/", false},
		{"trailing slash in rule covers the prefix", []string{"/api/"}, nil, "GET", "/api", true},
		{"second prefix", []string{"/api", "/login"}, nil, "POST", "/login", true},
		{"root covers all", []string{"/"}, nil, "GET", "/x", true},
		{"method matches", nil, []string{"POST"}, "POST", "/", true},
		{"method folds case", nil, []string{"post"}, "Post", "/", true},
		{"method differs", nil, []string{"POST", "PUT"}, "GET", "/", false},
		{"both match", []string{"/login"}, []string{"POST"}, "POST", "/login", true},
		{"path matches, method not", []string{"/login"}, []string{"POST"}, "GET", "/login", false},
		{"method matches, path not", []string{"/login"}, []string{"POST"}, "POST", "/logout", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := mustNew(t, []Rule{{Name: "r", Limit: 1, Window: time.Minute, Paths: tc.paths, Methods: tc.method}})
			r := &Request{IP: addr("192.0.2.1"), Method: tc.reqMethod, Path: tc.reqPath}
			if got := refusedTwice(l, r); got != tc.want {
				t.Errorf("%s %s under paths %q methods %q: counted = %v, want %v", tc.reqMethod, tc.reqPath, tc.paths, tc.method, got, tc.want)
			}
		})
	}
}

// sameKey sends request a then request b to a fresh limiter with one rule of
// limit 1 and key parts, and reports whether b was refused (they share a key).
func sameKey(t *testing.T, parts []KeyPart, a, b *Request) bool {
	t.Helper()
	l := mustNew(t, []Rule{{Name: "r", Limit: 1, Window: time.Minute, Key: parts}})
	if v := l.Check(a, t0); v.Rule != nil {
		t.Fatalf("first request refused: %+v", v)
	}
	return l.Check(b, t0).Rule != nil
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestKeys(t *testing.T) {
	t.Parallel()
	ipHeader := []KeyPart{{Kind: "ip"}, {Kind: "header", Name: "X-Api-Key"}}
	proxy, c1, c2 := addr("203.0.113.9"), addr("192.0.2.1"), addr("192.0.2.2")
	for _, tc := range []struct {
		name  string
		parts []KeyPart
		a, b  Request
		same  bool
	}{
		{"ip: same", nil, Request{IP: c1}, Request{IP: c1}, true},
		{"ip: different", nil, Request{IP: c1}, Request{IP: c2}, false},
		{"ip: mapped IPv4 is the IPv4 address", nil, Request{IP: c1}, Request{IP: addr("::ffff:192.0.2.1")}, true},
		{"ip: zone ignored", nil, Request{IP: addr("fe80::1%eth0")}, Request{IP: addr("fe80::1%eth1")}, true},
		{"ip: ignores forwarded", nil, Request{IP: proxy, ForwardedIP: c1}, Request{IP: proxy, ForwardedIP: c2}, true},
		{"forwarded_ip: separates clients behind a proxy", []KeyPart{{Kind: "forwarded_ip"}}, Request{IP: proxy, ForwardedIP: c1}, Request{IP: proxy, ForwardedIP: c2}, false},
		{"forwarded_ip: same client via two proxies", []KeyPart{{Kind: "forwarded_ip"}}, Request{IP: proxy, ForwardedIP: c1}, Request{IP: c2, ForwardedIP: c1}, true},
		{"forwarded_ip: falls back to ip", []KeyPart{{Kind: "forwarded_ip"}}, Request{IP: c1}, Request{IP: proxy, ForwardedIP: c1}, true},
		{"forwarded_ip: fallbacks differ by ip", []KeyPart{{Kind: "forwarded_ip"}}, Request{IP: c1}, Request{IP: c2}, false},
		{"identity: same user", []KeyPart{{Kind: "identity"}}, Request{IP: c1, Identity: "alice"}, Request{IP: c2, Identity: "alice"}, true},
		{"identity: other user", []KeyPart{{Kind: "identity"}}, Request{IP: c1, Identity: "alice"}, Request{IP: c1, Identity: "bob"}, false},
		{"identity: anonymous is one key", []KeyPart{{Kind: "identity"}}, Request{IP: c1}, Request{IP: c2}, true},
		{"header: same value", []KeyPart{{Kind: "header", Name: "x-api-key"}}, Request{Header: hdr("X-Api-Key", "k1")}, Request{IP: c2, Header: hdr("X-Api-Key", "k1")}, true},
		{"header: other value", []KeyPart{{Kind: "header", Name: "X-Api-Key"}}, Request{Header: hdr("X-Api-Key", "k1")}, Request{Header: hdr("X-Api-Key", "k2")}, false},
		{"header: missing is the key \"\"", []KeyPart{{Kind: "header", Name: "X-Api-Key"}}, Request{Header: hdr("Other", "x")}, Request{}, true},
		{"header: missing equals empty", []KeyPart{{Kind: "header", Name: "X-Api-Key"}}, Request{}, Request{Header: hdr("X-Api-Key", "")}, true},
		{"header: missing differs from a value", []KeyPart{{Kind: "header", Name: "X-Api-Key"}}, Request{}, Request{Header: hdr("X-Api-Key", "k1")}, false},
		{"header: first value counts", []KeyPart{{Kind: "header", Name: "X-Api-Key"}}, Request{Header: hdr("X-Api-Key", "k1", "X-Api-Key", "k2")}, Request{Header: hdr("X-Api-Key", "k1")}, true},
		{"cookie: same value", []KeyPart{{Kind: "cookie", Name: "session"}}, Request{Header: hdr("Cookie", "a=1; session=abc")}, Request{Header: hdr("Cookie", "session=abc")}, true},
		{"cookie: quotes stripped", []KeyPart{{Kind: "cookie", Name: "session"}}, Request{Header: hdr("Cookie", `session="abc"`)}, Request{Header: hdr("Cookie", "x=1", "Cookie", "session=abc;y=2")}, true},
		{"cookie: other value", []KeyPart{{Kind: "cookie", Name: "session"}}, Request{Header: hdr("Cookie", "session=abc")}, Request{Header: hdr("Cookie", "session=abd")}, false},
		{"cookie: name is exact", []KeyPart{{Kind: "cookie", Name: "session"}}, Request{Header: hdr("Cookie", "Session=abc")}, Request{Header: hdr("Cookie", "session=abc")}, false},
		{"cookie: missing is the key \"\"", []KeyPart{{Kind: "cookie", Name: "session"}}, Request{Header: hdr("Cookie", "sessionx=1")}, Request{}, true},
		{"path", []KeyPart{{Kind: "path"}}, Request{Path: "/a"}, Request{Path: "/b"}, false},
		{"method", []KeyPart{{Kind: "method"}}, Request{Method: "GET"}, Request{IP: c2, Method: "GET"}, true},
		{"composite: same ip, other header", ipHeader, Request{IP: c1, Header: hdr("X-Api-Key", "k1")}, Request{IP: c1, Header: hdr("X-Api-Key", "k2")}, false},
		{"composite: same header, other ip", ipHeader, Request{IP: c1, Header: hdr("X-Api-Key", "k1")}, Request{IP: c2, Header: hdr("X-Api-Key", "k1")}, false},
		{"composite: both same", ipHeader, Request{IP: c1, Header: hdr("X-Api-Key", "k1")}, Request{IP: c1, Header: hdr("X-Api-Key", "k1")}, true},
		{"composite: both missing header", ipHeader, Request{IP: c1}, Request{IP: c1}, true},
		{"composite: values do not run together", []KeyPart{{Kind: "identity"}, {Kind: "path"}}, Request{Identity: "ab", Path: "c"}, Request{Identity: "a", Path: "bc"}, false},
		{"composite: IPv4 and IPv6", []KeyPart{{Kind: "ip"}, {Kind: "identity"}}, Request{IP: c1}, Request{IP: addr("::ffff:192.0.2.1")}, true},
		{"composite: five parts", []KeyPart{{Kind: "forwarded_ip"}, {Kind: "identity"}, {Kind: "method"}, {Kind: "path"}, {Kind: "cookie", Name: "s"}},
			Request{IP: proxy, ForwardedIP: c1, Identity: "u", Method: "GET", Path: "/", Header: hdr("Cookie", "s=1")},
			Request{IP: c2, ForwardedIP: c1, Identity: "u", Method: "GET", Path: "/", Header: hdr("Cookie", "s=1")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := sameKey(t, tc.parts, &tc.a, &tc.b); got != tc.same {
				t.Errorf("key %v: %+v and %+v share a key = %v, want %v", tc.parts, tc.a, tc.b, got, tc.same)
			}
		})
	}
}

func TestVerdictKey(t *testing.T) {
	t.Parallel()
	r := &Request{IP: addr("::ffff:192.0.2.1"), ForwardedIP: addr("2001:db8::1"), Identity: "alice", Method: "GET", Path: "/a b",
		Header: hdr("X-Api-Key", "secret", "Cookie", "s=token")}
	for _, tc := range []struct {
		parts []KeyPart
		want  string
	}{
		{nil, "192.0.2.1"},
		{[]KeyPart{{Kind: "forwarded_ip"}}, "2001:db8::1"},
		{[]KeyPart{{Kind: "identity"}}, "alice"},
		{[]KeyPart{{Kind: "header", Name: "x-api-key"}}, "sha256:2bb80d537b1d"},
		{[]KeyPart{{Kind: "header", Name: "X-Missing"}}, `""`},
		{[]KeyPart{{Kind: "ip"}, {Kind: "path"}, {Kind: "cookie", Name: "s"}}, `ip=192.0.2.1 path="/a b" cookie:s=sha256:3c469e9d6c58`},
	} {
		l := mustNew(t, []Rule{{Name: "r", Limit: 1, Window: time.Minute, Key: tc.parts}})
		l.Check(r, t0)
		if v := l.Check(r, t0); v.Key != tc.want {
			t.Errorf("key %v: Verdict.Key = %q, want %q", tc.parts, v.Key, tc.want)
		}
	}
}

func TestActionsAndOrder(t *testing.T) {
	t.Parallel()
	l := mustNew(t, []Rule{
		{Name: "watch", Limit: 1, Window: time.Minute, Action: Count},
		{Name: "login", Limit: 2, Window: time.Minute, Paths: []string{"/login"}, Action: Challenge},
		{Name: "site", Limit: 3, Window: time.Minute, Ban: time.Hour},
		{Name: "watch-more", Limit: 2, Window: time.Minute, Action: Count},
	})
	login := &Request{IP: addr("192.0.2.1"), Method: "POST", Path: "/login"}
	for i, want := range []struct {
		rule    string
		action  Action
		count   int
		counted []string
	}{
		{"", "", 0, nil},
		{"", "", 0, []string{"watch"}}, // a count rule never refuses
		{"login", Challenge, 3, []string{"watch", "watch-more"}},
		{"login", Challenge, 4, []string{"watch", "watch-more"}}, // site (4 > 3) trips too, but login comes first
	} {
		v := l.Check(login, t0)
		name := ""
		if v.Rule != nil {
			name = v.Rule.Name
		}
		if name != want.rule || v.Action != want.action || v.Count != want.count || !slices.Equal(v.Counted, want.counted) {
			t.Errorf("request %d = rule %q %+v, want rule %q action %q count %d counted %q", i+1, name, v, want.rule, want.action, want.count, want.counted)
		}
	}
	// Every matching rule counted every request: site is over for another path.
	v := l.Check(&Request{IP: addr("192.0.2.1"), Method: "GET", Path: "/"}, t0)
	if v.Rule == nil || v.Rule.Name != "site" || v.Action != Block || v.Count != 5 || v.Rule.Ban != time.Hour || v.First {
		t.Errorf("GET / after 4 logins = %+v, want site (block, ban 1h) with count 5, not first", v)
	}
	if v.Rule != nil && v.Rule.Name == "site" && !slices.Equal(v.Rule.Key, []KeyPart{{Kind: "ip"}}) {
		t.Errorf("site's key = %v, want the default [{ip}]", v.Rule.Key)
	}
}

func TestSweepAndLen(t *testing.T) {
	t.Parallel()
	l := mustNew(t, []Rule{
		{Name: "ip", Limit: 10, Window: time.Minute},
		{Name: "user", Limit: 10, Window: 2 * time.Minute, Key: []KeyPart{{Kind: "identity"}}},
	})
	for i := range 300 {
		r := &Request{IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Identity: "u" + strings.Repeat("x", i%3)}
		l.Check(r, at(time.Duration(i)*100*time.Millisecond)) // 0..29.9 s
	}
	for _, step := range []struct {
		at          time.Duration
		wantDropped int
		wantLen     int
	}{
		{59 * time.Second, 0, 303},                     // all windows still hold a request
		{60 * time.Second, 10, 293},                    // ip keys seen in 0..0.9 s
		{90 * time.Second, 290, 3},                     // all ip keys gone; the three users stay
		{147*time.Second + 900*time.Millisecond, 0, 3}, // 2 s buckets: 29.9 s is in 28..30 s
		{148 * time.Second, 3, 0},                      // which leaves the window at 148 s
	} {
		if got := l.Sweep(at(step.at)); got != step.wantDropped {
			t.Errorf("Sweep(t0+%v) = %d, want %d", step.at, got, step.wantDropped)
		}
		if got := l.Len(); got != step.wantLen {
			t.Errorf("after Sweep(t0+%v), Len() = %d, want %d", step.at, got, step.wantLen)
		}
	}
}
