package policy

import (
	"testing"

	"noops/internal/gateway/trust"
	"noops/internal/spec"
)

// threePolicies is a typical policy file: a role, a path and a forbid.
const threePolicies = `@id("admins")
permit (principal in Role::"admin", action, resource);

@id("readers")
permit (principal is User, action == Action::"GET", resource)
  when { context.path like "/docs/*" && context.trust >= 20 };

@id("office-network")
forbid (principal, action, resource)
  unless { context.source_ip.isInRange(ip("192.0.2.0/24")) || principal in Role::"admin" };
`

func BenchmarkAuthorize(b *testing.B) {
	score := trust.Score{Total: 35, Parts: []trust.Part{
		{Signal: trust.Password, Points: 10}, {Signal: trust.SecondFactor, Points: 10},
		{Signal: trust.DeviceCert, Points: 10}, {Signal: trust.KnownNetwork, Points: 5},
	}}
	for _, bc := range []struct {
		name   string
		access spec.Access
		src    string
		req    Request
	}{
		{"authenticated", spec.Access{Policy: spec.AccessAuthenticated, MinTrust: 10}, "", req(user("alice", "dev"), "GET", "/docs/a", 35)},
		{"file", spec.Access{Policy: "policy.cedar", MinTrust: 10}, threePolicies, req(user("bob", "dev", "ops"), "GET", "/docs/a", 35)},
	} {
		s := mustCompile(b, bc.access, bc.src)
		r := bc.req
		r.Trust = score
		if d := s.Authorize(r); !d.Allow {
			b.Fatalf("Authorize = %q, want allow", d.Reason)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Authorize(r)
			}
		})
	}
}
