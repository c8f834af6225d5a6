package ratelimit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Rule{Name: "api", Limit: 50, Window: time.Minute}
	with := func(f func(r *Rule)) Rule {
		r := ok
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name string
		rule Rule
		want string // the whole message; "" for valid
	}{
		{"minimal", ok, ""},
		{"everything", Rule{Name: "api", Limit: 2_000_000_000, Window: 600 * time.Second, Action: Block, Ban: time.Hour,
			Key:     []KeyPart{{Kind: "ip"}, {Kind: "forwarded_ip"}, {Kind: "identity"}, {Kind: "header", Name: "X-Api-Key"}, {Kind: "cookie", Name: "__Host-s"}},
			Paths:   []string{"/", "/api/"},
			Methods: []string{"GET", "post"}}, ""},
		{"challenge", with(func(r *Rule) { r.Action = Challenge }), ""},
		{"count", with(func(r *Rule) { r.Action = Count }), ""},
		{"window 90s", with(func(r *Rule) { r.Window = 90 * time.Second }), ""},
		{"no name", with(func(r *Rule) { r.Name = "" }), `rate rule: name is empty`},
		{"limit 0", with(func(r *Rule) { r.Limit = 0 }), `rate rule "api": limit 0 is below 1`},
		{"limit too high", with(func(r *Rule) { r.Limit = 2_000_000_001 }), `rate rule "api": limit 2000000001 is above 2000000000`},
		{"window too short", with(func(r *Rule) { r.Window = 30 * time.Second }), `rate rule "api": window 30s is outside 60s..600s`},
		{"window too long", with(func(r *Rule) { r.Window = time.Hour }), `rate rule "api": window 3600s is outside 60s..600s`},
		{"window zero", with(func(r *Rule) { r.Window = 0 }), `rate rule "api": window 0s is outside 60s..600s`},
		{"window fraction", with(func(r *Rule) { r.Window = 90*time.Second + time.Millisecond }), `rate rule "api": window 1m30.001s is not a whole number of seconds`},
		{"six parts", with(func(r *Rule) {
			r.Key = []KeyPart{{Kind: "ip"}, {Kind: "identity"}, {Kind: "path"}, {Kind: "method"}, {Kind: "header", Name: "A"}, {Kind: "header", Name: "B"}}
		}), `rate rule "api": key has 6 parts, at most 5 are allowed`},
		{"unknown kind", with(func(r *Rule) { r.Key = []KeyPart{{Kind: "ip"}, {Kind: "country"}} }),
			`rate rule "api": key part 2: unknown kind "country" (want ip, forwarded_ip, identity, header, cookie, path or method)`},
		{"header without name", with(func(r *Rule) { r.Key = []KeyPart{{Kind: "header"}} }), `rate rule "api": key part 1: header needs a name`},
		{"bad header name", with(func(r *Rule) { r.Key = []KeyPart{{Kind: "header", Name: "X Key"}} }), `rate rule "api": key part 1: header name "X Key" is not a valid token`},
		{"bad cookie name", with(func(r *Rule) { r.Key = []KeyPart{{Kind: "cookie", Name: "a=b"}} }), `rate rule "api": key part 1: cookie name "a=b" is not a valid token`},
		{"name on ip", with(func(r *Rule) { r.Key = []KeyPart{{Kind: "ip", Name: "x"}} }), `rate rule "api": key part 1: kind "ip" takes no name (got "x")`},
		{"repeated part", with(func(r *Rule) { r.Key = []KeyPart{{Kind: "ip"}, {Kind: "identity"}, {Kind: "ip"}} }), `rate rule "api": key part 3 repeats part 1`},
		{"repeated header in other case", with(func(r *Rule) {
			r.Key = []KeyPart{{Kind: "header", Name: "x-api-key"}, {Kind: "header", Name: "X-API-KEY"}}
		}), `rate rule "api": key part 2 repeats part 1`},
		{"cookie names are case sensitive", with(func(r *Rule) { r.Key = []KeyPart{{Kind: "cookie", Name: "s"}, {Kind: "cookie", Name: "S"}} }), ""},
		{"unknown action", with(func(r *Rule) { r.Action = "deny" }), `rate rule "api": action "deny" is not block, challenge or count`},
		{"relative path", with(func(r *Rule) { r.Paths = []string{"/ok", "api"} }), `rate rule "api": path "api" does not start with /`},
		{"empty method", with(func(r *Rule) { r.Methods = []string{""} }), `rate rule "api": method "" is not a valid HTTP method`},
		{"method with space", with(func(r *Rule) { r.Methods = []string{"GET "} }), `rate rule "api": method "GET " is not a valid HTTP method`},
		{"negative ban", with(func(r *Rule) { r.Ban = -time.Second }), `rate rule "api": ban -1s is negative`},
		{"ban with count", with(func(r *Rule) { r.Action, r.Ban = Count, time.Minute }), `rate rule "api": ban needs action block, not "count"`},
		{"ban with challenge", with(func(r *Rule) { r.Action, r.Ban = Challenge, time.Minute }), `rate rule "api": ban needs action block, not "challenge"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.rule.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate(%+v) = %v, want nil", tc.rule, err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("Validate(%+v) = nil, want %q", tc.rule, tc.want)
			case err.Error() != tc.want:
				t.Errorf("Validate(%+v) = %q, want %q", tc.rule, err, tc.want)
			case !errkind.Is(err, errkind.Invalid):
				t.Errorf("Validate(%+v) kind = %v, want invalid", tc.rule, errkind.Of(err))
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	good := Rule{Name: "a", Limit: 1, Window: time.Minute}
	for _, tc := range []struct {
		name  string
		rules []Rule
		opts  []Option
		want  []string // substrings of the error, each on its own line
	}{
		{"duplicate name", []Rule{good, {Name: "b", Limit: 1, Window: time.Minute}, good}, nil,
			[]string{`rate rule "a": name is used by an earlier rule`}},
		{"every bad rule is reported", []Rule{{Name: "x", Limit: 0, Window: time.Minute}, good, {Name: "y", Limit: 1}}, nil,
			[]string{`rate rule "x": limit 0 is below 1`, `rate rule "y": window 0s is outside 60s..600s`}},
		{"max keys 0", []Rule{good}, []Option{WithMaxKeys(0)}, []string{`rate limiter: max keys 0 is below 1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := New(tc.rules, tc.opts...)
			if err == nil {
				t.Fatalf("New = %v, nil; want error %q", l, tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tc.want) {
				t.Errorf("New error = %q, want %q", got, tc.want)
			}
			if !errkind.Is(err, errkind.Invalid) {
				t.Errorf("New error kind = %v, want invalid", errkind.Of(err))
			}
		})
	}
}

func TestNewDoesNotAliasRules(t *testing.T) {
	t.Parallel()
	rules := []Rule{{Name: "a", Limit: 1, Window: time.Minute, Key: []KeyPart{{Kind: "identity"}}, Paths: []string{"/api"}}}
	l := mustNew(t, rules)
	rules[0].Key[0].Kind = "path"
	rules[0].Paths[0] = "/other"
	r := &Request{IP: addr("192.0.2.1"), Identity: "u", Path: "/api/x"}
	l.Check(r, t0)
	r.Path = "/api/y" // another path, same identity: counted under the same key
	if v := l.Check(r, t0); v.Rule == nil {
		t.Errorf("after the caller changed its rules, Check = %+v, want the rule as it was given to New", v)
	}
}

func TestNoRules(t *testing.T) {
	t.Parallel()
	l := mustNew(t, nil)
	if v := l.Check(fromIP("192.0.2.1"), t0); v.Rule != nil || v.Counted != nil {
		t.Errorf("Check with no rules = %+v, want zero Verdict", v)
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
}
