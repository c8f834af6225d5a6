package policy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"

	"noops/internal/errkind"
	"noops/internal/gateway/trust"
	"noops/internal/spec"
)

// FuzzCompile feeds arbitrary text to Compile, Check and Test: they never
// panic, agree with each other, fail only with an invalid error that names
// the file, and a Set they yield decides any request without panicking and
// never allows without a permit.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"", rolesFile, overflowFile, threePolicies, authenticatedSrc, platformSrc, officeFile,
		`permit (principal, action, resource) when { context.nosuch };`,
		`permit (principal, action, resource) when { context.trust > };`,
		`forbid (principal, action, resource) when { context.source_ip.isInRange(ip("10.0.0.0/8")) };`,
		`permit (principal is User, action, resource) when { principal.name like "a*" && resource.path == "/admin" };`,
		`permit (principal, action, resource) when { context.signals.password + context.hour * 9223372036854775807 > 0 };`,
		`permit (principal, action in [Action::"GET", Action::"read"], resource in App::"hello");`,
		"@id(\"x\")\n@id(\"y\") permit (principal, action, resource);",
		"// example: allow user=a\npermit (principal, action, resource);",
		`permit (principal, action, resource) when { context.path like "/x/*" && context has mtls && context.mtls != "" };`,
		`permit (principal, action, resource) when { [1, 2].contains(context.weekday) && {a: 1}.a == 1 };`,
		`permit (principal, action, resource) when { decimal("1.5").lessThan(decimal("2.0")) };`,
		`permit (principal, action, resource) when { datetime("2024-01-01").offset(duration("1d")) > datetime("2024-01-01") };`,
	} {
		f.Add(s)
	}
	access := spec.Access{Policy: "policy.cedar", MinTrust: 5, Routes: []spec.AccessRoute{{Path: "/admin", MinTrust: 20}}}
	score := trust.Score{Total: 30, Parts: []trust.Part{{Signal: trust.Password, Points: 10}, {Signal: trust.SecondFactor, Points: 10}, {Signal: trust.DeviceCert, Points: 10}}}
	var reqs []Request
	for _, p := range []Principal{user("alice", "admin", "staff"), user("bob"), workload("billing")} {
		for _, m := range []string{"GET", "POST", "DELETE", "BREW"} {
			for _, path := range []string{"/", "/admin/x", "/docs/a", "/invoices/1"} {
				for _, sc := range []trust.Score{{}, {Total: 2}, score} {
					reqs = append(reqs, Request{
						Principal: p, Action: m, App: "hello", Path: path, Trust: sc,
						SourceIP: netip.MustParseAddr("10.1.2.3"), Time: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC),
						MTLS: "spiffe://example.test/app/billing",
					})
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Compile("hello", access, "policy.cedar", []byte(src))
		checkErr := Check("policy.cedar", []byte(src))
		if (err == nil) != (checkErr == nil) {
			t.Fatalf("Compile = %v but Check = %v", err, checkErr)
		}
		_, _ = Test("policy.cedar", []byte(src))
		if err != nil {
			if !errkind.Is(err, errkind.Invalid) || !strings.HasPrefix(err.Error(), "policy.cedar:") {
				t.Fatalf("Compile = %q (%v), want an invalid error naming policy.cedar", err, errkind.Of(err))
			}
			return
		}
		permits := false
		for _, p := range s.policies {
			permits = permits || p.policy.Effect() == cedar.Permit
		}
		for _, r := range reqs {
			d := s.Authorize(r)
			if d.Allow && !permits {
				t.Fatalf("Authorize(%+v) allowed with no permit policy: %s", r, d.Reason)
			}
			if d.Reason == "" || strings.Contains(d.Reason, "\n") {
				t.Fatalf("Authorize(%+v).Reason = %q, want one line", r, d.Reason)
			}
		}
	})
}
