package policy

import (
	"strings"
	"testing"

	"noops/internal/gateway/trust"
	"noops/internal/spec"
)

// TestDecisionsRemembered checks that the memo answers a repeated request
// as Cedar did and that any field that matters makes a new decision.
func TestDecisionsRemembered(t *testing.T) {
	src := `@id("admins") permit (principal in Role::"admin", action == Action::"GET", resource) when { context.path like "/admin*" && context.trust >= 20 };
@id("all") permit (principal, action == Action::"GET", resource) when { context.path == "/" };`
	s := mustCompile(t, spec.Access{Policy: "policy.cedar"}, src)
	admin := Principal{Kind: KindUser, Name: "alice", Roles: []string{"admin"}}
	tests := []struct {
		name string
		r    Request
		want bool
	}{
		{"admin at 20", req(admin, "GET", "/admin/x", 20), true},
		{"admin at 20 again (memo)", req(admin, "GET", "/admin/x", 20), true},
		{"admin at 10", req(admin, "GET", "/admin/x", 10), false},
		{"not an admin", req(Principal{Kind: KindUser, Name: "alice"}, "GET", "/admin/x", 20), false},
		{"another path", req(admin, "GET", "/other", 20), false},
		{"root for anyone", req(Principal{Kind: KindUser, Name: "bob"}, "GET", "/", 0), true},
		{"another method", req(admin, "DELETE", "/admin/x", 20), false},
		{"admin at 20 a third time", req(admin, "GET", "/admin/x", 20), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Authorize(tc.r); got.Allow != tc.want {
				t.Errorf("Authorize(%+v) = %v (%s), want %v", tc.r, got.Allow, got.Reason, tc.want)
			}
			if got, want := s.Authorize(tc.r), s.authorize(tc.r); got.Allow != want.Allow || got.Reason != want.Reason {
				t.Errorf("the memo says %v %q, Cedar says %v %q", got.Allow, got.Reason, want.Allow, want.Reason)
			}
		})
	}
}

// TestTrustReasonNamesPenalties checks that a score lowered by a penalty
// says so instead of asking for signals the request already has.
func TestTrustReasonNamesPenalties(t *testing.T) {
	s := mustCompile(t, spec.Access{Policy: "authenticated", MinTrust: 30}, "")
	sc := trust.Default.Score(trust.Input{Password: true, SecondFactor: true, DeviceCert: true, NewLocation: true})
	r := req(Principal{Kind: KindUser, Name: "alice"}, "GET", "/", 0)
	r.Trust = sc
	d := s.Authorize(r)
	if d.Allow || !strings.Contains(d.Reason, "lowers the score is new_location") {
		t.Errorf("Authorize with a new location = %v %q, want a denial naming new_location", d.Allow, d.Reason)
	}
}
