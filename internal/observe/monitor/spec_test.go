package monitor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	web := Spec{Name: "web", Kind: HTTP, Target: "https://example.com/health"}
	with := func(f func(*Spec)) Spec { s := web; f(&s); return s }
	tests := []struct {
		name string
		spec Spec
		want []string // substrings of the error; none = valid
	}{
		{"http", web, nil},
		{"tcp", Spec{Name: "db", Kind: TCP, Target: "db.internal:5432"}, nil},
		{"tls ipv6", Spec{Name: "cert", Kind: TLS, Target: "[::1]:443", Host: "example.com", CertMinDays: 30}, nil},
		{"push", Spec{Name: "backup", Kind: Push, Interval: 24 * time.Hour, Grace: time.Hour}, nil},
		{"app monitor", Spec{Name: "app:hello", App: "hello", Kind: HTTP, Target: "https://127.0.0.1:443/healthz", Host: "hello.example.com"}, nil},
		{"every condition", with(func(s *Spec) {
			s.Method, s.Headers, s.Status = "HEAD", map[string]string{"Authorization": "Bearer x"}, []string{"2xx", "301", "400-404"}
			s.BodyContains, s.BodyRegexp, s.MaxLatency, s.FollowRedirects, s.Insecure = "ok", `"status":\s*"up"`, time.Second, true, true
		}), nil},

		{"no name", with(func(s *Spec) { s.Name = "" }), []string{"name is missing"}},
		{"upper-case name", with(func(s *Spec) { s.Name = "Web" }), []string{`name "Web" is not valid`}},
		{"long name", with(func(s *Spec) { s.Name = strings.Repeat("a", 101) }), []string{"name is 101 bytes"}},
		{"app prefix of another app", with(func(s *Spec) { s.Name = "app:other"; s.App = "hello" }), []string{`reserved for the default monitor of app "other"`}},
		{"app prefix standalone", with(func(s *Spec) { s.Name = "app:hello" }), []string{"reserved"}},
		{"no kind", with(func(s *Spec) { s.Kind = "" }), []string{"kind is missing"}},
		{"bad kind", with(func(s *Spec) { s.Kind = "icmp" }), []string{`kind "icmp" is not one of`}},
		{"short interval", with(func(s *Spec) { s.Interval = 500 * time.Millisecond }), []string{"interval 500ms is below the minimum of 1s"}},
		{"negative interval", with(func(s *Spec) { s.Interval = -time.Second }), []string{"interval -1s is below"}},
		{"timeout over interval", with(func(s *Spec) { s.Interval, s.Timeout = 5*time.Second, 6*time.Second }), []string{"timeout 6s is longer than the interval 5s"}},
		{"negative timeout", with(func(s *Spec) { s.Timeout = -1 }), []string{"timeout -1ns is negative"}},
		{"retry over interval", with(func(s *Spec) { s.Interval, s.RetryInterval = 5*time.Second, time.Minute }), []string{"retry_interval 1m0s is not between"}},
		{"fail_after", with(func(s *Spec) { s.FailAfter = -1 }), []string{"fail_after -1 is not between 1 and 100"}},
		{"success_after", with(func(s *Spec) { s.SuccessAfter = 1000 }), []string{"success_after 1000"}},
		{"no target", with(func(s *Spec) { s.Target = "" }), []string{"target is missing"}},
		{"ftp target", with(func(s *Spec) { s.Target = "ftp://example.com/" }), []string{`target scheme "ftp" is not http or https`}},
		{"target without host", with(func(s *Spec) { s.Target = "http:///x" }), []string{"target has no host"}},
		{"target bad port", with(func(s *Spec) { s.Target = "http://example.com:99999/" }), []string{`target port "99999"`}},
		{"target unparsable", with(func(s *Spec) { s.Target = "http://exa mple.com:x/?secret" }), []string{"target is not a valid URL"}},
		{"tcp without port", Spec{Name: "db", Kind: TCP, Target: "db.internal"}, []string{`target: "db.internal" is not host:port`}},
		{"tcp bad host", Spec{Name: "db", Kind: TCP, Target: "bad host:1"}, []string{`"bad host" is not a host name`}},
		{"push with target", Spec{Name: "p", Kind: Push, Target: "x:1"}, []string{"target does not apply to push monitors"}},
		{"push with timeout", Spec{Name: "p", Kind: Push, Timeout: time.Second}, []string{"timeout does not apply to push"}},
		{"push negative grace", Spec{Name: "p", Kind: Push, Grace: -time.Second}, []string{"grace -1s is not between"}},
		{"grace on http", with(func(s *Spec) { s.Grace = time.Second }), []string{"grace applies to push monitors only"}},
		{"bad method", with(func(s *Spec) { s.Method = "GE T" }), []string{`method "GE T" is not an HTTP method`}},
		{"header newline", with(func(s *Spec) { s.Headers = map[string]string{"X-A": "a\r\nX-B: b"} }), []string{"the value of X-A is not a valid header value"}},
		{"header name", with(func(s *Spec) { s.Headers = map[string]string{"X A": "a"} }), []string{`headers: "X A" is not a header name`}},
		{"host header", with(func(s *Spec) { s.Headers = map[string]string{"host": "a"} }), []string{"set the Host header with host"}},
		{"bad status", with(func(s *Spec) { s.Status = []string{"2xx", "abc"} }), []string{`status: "abc" is not a status code`}},
		{"empty status range", with(func(s *Spec) { s.Status = []string{"399-200"} }), []string{"empty range"}},
		{"bad regexp", with(func(s *Spec) { s.BodyRegexp = "(" }), []string{"body_regexp: error parsing regexp"}},
		{"huge regexp", with(func(s *Spec) { s.BodyRegexp = strings.Repeat("a", 5000) }), []string{"body_regexp is 5000 bytes"}},
		{"negative latency", with(func(s *Spec) { s.MaxLatency = -1 }), []string{"max_latency -1ns is negative"}},
		{"body on tcp", Spec{Name: "db", Kind: TCP, Target: "db:1", BodyContains: "x"}, []string{"body_contains applies to http monitors only"}},
		{"status on tls", Spec{Name: "c", Kind: TLS, Target: "c:443", Status: []string{"200"}}, []string{"status applies to http monitors only"}},
		{"insecure on tcp", Spec{Name: "db", Kind: TCP, Target: "db:1", Insecure: true}, []string{"insecure applies to http and tls"}},
		{"cert days on http", with(func(s *Spec) { s.CertMinDays = 3 }), []string{"cert_min_days applies to tls monitors only"}},
		{"bad host", with(func(s *Spec) { s.Host = "a b" }), []string{`host: "a b" is not a host name`}},
		{"several", Spec{Name: "x", Kind: HTTP, Interval: time.Millisecond, Method: "a b"}, []string{"interval 1ms", "target is missing", "method"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.spec.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tc.want)
			}
			if !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Validate() kind = %v, want invalid", errkind.Of(err))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate() = %q quotes the target URL", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  Spec
		check func(t *testing.T, s Spec)
	}{
		{"http", Spec{Name: "a", Kind: HTTP, Target: "http://a/"}, func(t *testing.T, s Spec) {
			if s.Interval != 30*time.Second || s.Timeout != 10*time.Second || s.Method != "GET" ||
				!slices.Equal(s.Status, []string{"2xx"}) || s.FailAfter != 2 || s.SuccessAfter != 1 || s.RetryInterval != 15*time.Second {
				t.Errorf("normalize() = %+v", s)
			}
		}},
		{"short interval caps timeout", Spec{Name: "a", Kind: TCP, Target: "a:1", Interval: 3 * time.Second}, func(t *testing.T, s Spec) {
			if s.Timeout != 3*time.Second || s.RetryInterval != 1500*time.Millisecond {
				t.Errorf("Timeout, RetryInterval = %s, %s; want 3s, 1.5s", s.Timeout, s.RetryInterval)
			}
		}},
		{"retry at least 1s", Spec{Name: "a", Kind: TCP, Target: "a:1", Interval: time.Second, FailAfter: 3}, func(t *testing.T, s Spec) {
			if s.RetryInterval != time.Second {
				t.Errorf("RetryInterval = %s, want 1s", s.RetryInterval)
			}
		}},
		{"tls", Spec{Name: "a", Kind: TLS, Target: "a:443"}, func(t *testing.T, s Spec) {
			if s.CertMinDays != 14 || s.FailAfter != 2 {
				t.Errorf("CertMinDays, FailAfter = %d, %d; want 14, 2", s.CertMinDays, s.FailAfter)
			}
		}},
		{"push", Spec{Name: "a", Kind: Push}, func(t *testing.T, s Spec) {
			if s.FailAfter != 1 || s.Timeout != 0 || s.RetryInterval != 0 {
				t.Errorf("FailAfter, Timeout, RetryInterval = %d, %s, %s; want 1, 0, 0", s.FailAfter, s.Timeout, s.RetryInterval)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, err := tc.spec.normalize()
			if err != nil {
				t.Fatalf("normalize(): %v", err)
			}
			tc.check(t, s)
		})
	}
}

func TestDefaultForApp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		gateway, health, want string
	}{
		{":443", "/healthz", "https://127.0.0.1:443/healthz"},
		{"0.0.0.0:8443", "health", "https://127.0.0.1:8443/health"},
		{"[::]:443", "", "https://[::1]:443/"},
		{"10.0.0.5:443", "/h", "https://10.0.0.5:443/h"},
	}
	for _, tc := range tests {
		s := DefaultForApp("hello", tc.health, tc.gateway, "hello.example.com")
		if s.Target != tc.want || s.Name != "app:hello" || s.App != "hello" || s.Kind != HTTP ||
			s.Host != "hello.example.com" || s.Interval != 30*time.Second || s.Insecure {
			t.Errorf("DefaultForApp(hello, %q, %q) = %+v, want target %s", tc.health, tc.gateway, s, tc.want)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("DefaultForApp(hello, %q, %q).Validate() = %v", tc.health, tc.gateway, err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		lo, hi int
		bad    bool
	}{
		{in: "200", lo: 200, hi: 200},
		{in: "2xx", lo: 200, hi: 299},
		{in: "5XX", lo: 500, hi: 599},
		{in: " 301 ", lo: 301, hi: 301},
		{in: "200-399", lo: 200, hi: 399},
		{in: "404 - 404", lo: 404, hi: 404},
		{in: "", bad: true},
		{in: "6xx", bad: true},
		{in: "0xx", bad: true},
		{in: "99", bad: true},
		{in: "600", bad: true},
		{in: "2x0", bad: true},
		{in: "+20", bad: true},
		{in: "200-", bad: true},
		{in: "300-200", bad: true},
		{in: "200-300-400", bad: true},
		{in: "２00", bad: true},
	}
	for _, tc := range tests {
		r, err := parseStatus(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseStatus(%q) = %v, want an error", tc.in, r)
			}
			continue
		}
		if err != nil || r.lo != tc.lo || r.hi != tc.hi {
			t.Errorf("parseStatus(%q) = %v, %v; want {%d %d}", tc.in, r, err, tc.lo, tc.hi)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"200", "2xx", "5XX", "200-399", " 404 ", "", "6xx", "300-200", "1-2-3", "\x00xx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseStatus(s)
		if err != nil {
			if r != (statusRange{}) {
				t.Errorf("parseStatus(%q) = %v with error %v", s, r, err)
			}
			return
		}
		if r.lo < 100 || r.hi > 599 || r.lo > r.hi {
			t.Errorf("parseStatus(%q) = %v, out of 100-599", s, r)
		}
		if !acceptStatus([]statusRange{r}, r.lo) || !acceptStatus([]statusRange{r}, r.hi) || acceptStatus([]statusRange{r}, r.hi+1) {
			t.Errorf("parseStatus(%q) = %v does not accept its own ends", s, r)
		}
	})
}
