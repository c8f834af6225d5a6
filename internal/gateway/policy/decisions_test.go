package policy

import (
	"testing"

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
