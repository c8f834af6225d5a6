package policy

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go/types"

	"noops/internal/errkind"
	"noops/internal/gateway/trust"
	"noops/internal/spec"
)

const rolesFile = `// The admin area is for admins; nobody but owners deletes.
@id("admins")
permit (principal in Role::"admin", action, resource);

@id("readers")
permit (principal is User, action == Action::"GET", resource)
  when { context.path like "/docs/*" };

@id("no-delete")
forbid (principal is User, action == Action::"DELETE", resource)
  unless { principal in Role::"owner" };

@id("billing")
permit (principal == Workload::"billing", action == Action::"POST", resource)
  when { context.path like "/invoices/*" && context.mtls == "spiffe://noops/app/billing" };
`

// overflowFile permits everything, but its forbid fails to evaluate (Long
// overflow) once trust is 2 or more.
const overflowFile = `permit (principal, action, resource);
@id("overflow")
forbid (principal, action, resource) when { context.trust * 4611686018427387904 > 0 };
`

func user(name string, roles ...string) Principal {
	return Principal{Kind: KindUser, Name: name, Roles: roles}
}

func workload(app string) Principal { return Principal{Kind: KindWorkload, Name: app} }

func req(p Principal, method, path string, score int) Request {
	return Request{
		Principal: p, Action: method, App: "hello", Path: path,
		Trust:    trust.Score{Total: score},
		SourceIP: netip.MustParseAddr("192.0.2.7"),
		Time:     time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC),
	}
}

func mustCompile(t testing.TB, a spec.Access, src string) *Set {
	t.Helper()
	s, err := Compile("hello", a, "policy.cedar", []byte(src))
	if err != nil {
		t.Fatalf("Compile(%q) = %v", a.Policy, err)
	}
	return s
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	public := mustCompile(t, spec.Access{Policy: spec.AccessPublic}, "")
	authn := mustCompile(t, spec.Access{Policy: spec.AccessAuthenticated}, "")
	defaulted := mustCompile(t, spec.Access{}, "")
	roles := mustCompile(t, spec.Access{Policy: "policy.cedar"}, rolesFile)
	empty := mustCompile(t, spec.Access{Policy: "policy.cedar"}, "// nothing yet\n")
	trusted := mustCompile(t, spec.Access{Policy: spec.AccessAuthenticated, MinTrust: 10,
		Routes: []spec.AccessRoute{{Path: "/admin", MinTrust: 20}}}, "")
	overflow := mustCompile(t, spec.Access{Policy: "policy.cedar"}, overflowFile)
	password := trust.Score{Total: 10, Parts: []trust.Part{{Signal: trust.Password, Points: 10}}}
	withTrust := func(r Request, s trust.Score) Request { r.Trust = s; return r }
	withMTLS := func(r Request, id string) Request { r.MTLS = id; return r }

	tests := []struct {
		name     string
		set      *Set
		req      Request
		allow    bool
		reason   string // substring of the reason
		policies []string
	}{
		{"public allows anyone", public, req(Principal{}, "DELETE", "/", 0), true, "public", []string{"public"}},
		{"authenticated allows a user", authn, req(user("alice"), "GET", "/", 0), true, "policy authenticated permits user alice to GET /", []string{"authenticated"}},
		{"empty policy means authenticated", defaulted, req(user("alice"), "GET", "/", 0), true, "permits", []string{"authenticated"}},
		{"authenticated denies a workload", authn, req(workload("billing"), "GET", "/", 0), false, "no policy of app hello permits workload billing to GET /", nil},
		{"unknown method", authn, req(user("alice"), "BREW", "/", 0), false, `app hello has no action "BREW"`, nil},
		{"platform action on an app", authn, req(user("alice"), "read", "/", 0), false, `has no action "read"`, nil},
		{"unknown principal kind", authn, req(Principal{Kind: "robot", Name: "r2"}, "GET", "/", 0), false, `unknown principal kind "robot"`, nil},
		{"no principal name", authn, req(user(""), "GET", "/", 0), false, "no user name", nil},
		{"another app's request", authn, func() Request { r := req(user("alice"), "GET", "/", 0); r.App = "other"; return r }(), false, "cannot decide a request to app other", nil},
		{"file permits a role", roles, req(user("alice", "dev", "admin"), "PUT", "/x", 0), true, "policy admins (policy.cedar:2:1) permits", []string{"admins (policy.cedar:2:1)"}},
		{"file permits by path", roles, req(user("bob"), "GET", "/docs/a", 0), true, "readers", []string{"readers (policy.cedar:5:1)"}},
		{"file denies without a permit", roles, req(user("bob"), "GET", "/x", 0), false, "no policy of app hello permits user bob to GET /x", nil},
		{"forbid beats permit", roles, req(user("alice", "admin"), "DELETE", "/x", 0), false, "policy no-delete (policy.cedar:9:1) forbids user alice to DELETE /x", []string{"no-delete (policy.cedar:9:1)"}},
		{"unless lifts the forbid", roles, req(user("alice", "admin", "owner"), "DELETE", "/x", 0), true, "admins", nil},
		{"workload named by the file", roles, withMTLS(req(workload("billing"), "POST", "/invoices/7", 0), "spiffe://noops/app/billing"), true, "billing", nil},
		{"workload without its certificate", roles, req(workload("billing"), "POST", "/invoices/7", 0), false, "no policy", nil},
		{"other workload", roles, withMTLS(req(workload("shop"), "POST", "/invoices/7", 0), "spiffe://noops/app/shop"), false, "no policy", nil},
		{"file without permits denies", empty, req(user("alice", "admin"), "GET", "/", 100), false, "no policy", nil},
		{"below the route minimum", trusted, withTrust(req(user("alice"), "GET", "/admin/users", 0), password), false,
			"trust 10 (password +10) is below 20, the minimum of route /admin of app hello: add second_factor +10, device_cert +10", nil},
		{"below the app minimum", trusted, req(user("alice"), "GET", "/", 5), false, "trust 5 (no signals) is below 10, the minimum of app hello: add password +10, second_factor +10, device_cert +10", nil},
		{"at the route minimum", trusted, req(user("alice"), "GET", "/admin", 20), true, "permits", nil},
		{"app minimum elsewhere", trusted, withTrust(req(user("alice"), "GET", "/administrator", 0), password), true, "permits", nil},
		{"no signal left to add", trusted, withTrust(req(user("alice"), "GET", "/admin", 0), trust.Score{Total: 15, Parts: []trust.Part{
			{Signal: trust.Password, Points: 10}, {Signal: trust.SecondFactor, Points: 10}, {Signal: trust.DeviceCert, Points: 10}, {Signal: trust.WAFHits, Points: -15}}}),
			false, "what lowers the score is waf_hits", nil},
		{"no evaluation error", overflow, req(user("alice"), "GET", "/", 0), true, "permits", nil},
		{"evaluation error denies", overflow, req(user("alice"), "GET", "/", 2), false, "policy overflow (policy.cedar:2:1) failed on user alice to GET / (denied on error): ", []string{"overflow (policy.cedar:2:1)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tc.set.Authorize(tc.req)
			if d.Allow != tc.allow || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Authorize(%+v) = %v %q, want %v and a reason containing %q", tc.req, d.Allow, d.Reason, tc.allow, tc.reason)
			}
			if tc.policies != nil && strings.Join(d.Policies, "|") != strings.Join(tc.policies, "|") {
				t.Errorf("Authorize(%+v).Policies = %q, want %q", tc.req, d.Policies, tc.policies)
			}
		})
	}
}

func TestPublic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy string
		want   bool
	}{{spec.AccessPublic, true}, {spec.AccessAuthenticated, false}, {"policy.cedar", false}} {
		s := mustCompile(t, spec.Access{Policy: tc.policy}, rolesFile)
		if got := s.Public(); got != tc.want {
			t.Errorf("Compile(%q).Public() = %v, want %v", tc.policy, got, tc.want)
		}
	}
}

func TestPlatform(t *testing.T) {
	t.Parallel()
	p := Platform(20)
	api := func(pr Principal, action, verb string, score int) Request {
		return Request{Principal: pr, Action: action, Verb: verb, Path: "/v1/apps", Trust: trust.Score{Total: score}}
	}
	tests := []struct {
		name   string
		req    Request
		allow  bool
		reason string
	}{
		{"admin reads", api(user("root", "admin"), "read", "apps", 20), true, "policy platform-admin permits user root to read (apps)"},
		{"admin writes", api(user("root", "admin"), "write", "deploy", 30), true, "platform-admin"},
		{"viewer reads", api(user("vic", "viewer"), "read", "apps", 20), true, "platform-viewer"},
		{"viewer may not write", api(user("vic", "viewer"), "write", "deploy", 50), false, "no policy of the platform API permits user vic to write (deploy)"},
		{"user without a role", api(user("eve"), "read", "", 50), false, "no policy of the platform API permits user eve to read"},
		{"workload", api(workload("billing"), "read", "apps", 50), false, "no policy"},
		{"admin below the minimum", api(user("root", "admin"), "write", "deploy", 10), false, "trust 10 (no signals) is below 20, the minimum of the platform API: add password +10"},
		{"HTTP method", api(user("root", "admin"), "GET", "", 50), false, `the platform API has no action "GET"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := p.Authorize(tc.req)
			if d.Allow != tc.allow || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Platform(20).Authorize(%+v) = %v %q, want %v and a reason containing %q", tc.req, d.Allow, d.Reason, tc.allow, tc.reason)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // substring of the error
	}{
		{"unknown context attribute", "permit (principal, action, resource)\n  when { context.trust > 10 && context.nosuch == 1 };", "policy.cedar:2:40: attribute `nosuch` in context not found"},
		{"unknown entity attribute", "permit (principal is User, action, resource)\n  when { principal.email == \"x\" };", "policy.cedar:2:20: attribute `email` on entity type `User` not found"},
		{"unknown entity type", "// users\npermit (principal is Group, action, resource);", "policy.cedar:2:22: unrecognized entity type `Group`"},
		{"unknown action", "permit (principal, action == Action::\"BREW\", resource);", "policy.cedar:1:30: unrecognized action `Action::\"BREW\"`"},
		{"attribute of the wrong principal", "permit (principal, action, resource) when { principal.name == \"x\" };", "policy.cedar:1:55: attribute `name` on entity type `Workload` not found"},
		{"syntax error", "permit (principal, action, resource)\n  when { context.trust > };", "policy.cedar:2:27: syntax error near \";\""},
		{"second policy", "permit (principal, action, resource);\n\nforbid (principal, action, resource) when { context.x };", "policy.cedar:3:53: attribute `x`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for fn, err := range map[string]error{
				"Check": Check("policy.cedar", []byte(tc.src)),
				"Compile": func() error {
					_, err := Compile("hello", spec.Access{Policy: "policy.cedar"}, "policy.cedar", []byte(tc.src))
					return err
				}(),
			} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s(%q) = %v, want an error containing %q", fn, tc.src, err, tc.want)
				}
				if !errkind.Is(err, errkind.Invalid) {
					t.Errorf("%s(%q) kind = %v, want invalid", fn, tc.src, errkind.Of(err))
				}
			}
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", rolesFile, overflowFile, authenticatedSrc, platformSrc} {
		if err := Check("policy.cedar", []byte(src)); err != nil {
			t.Errorf("Check(%q) = %v, want nil", src, err)
		}
	}
}

// TestContextMatchesSchema checks that the request Authorize builds is
// one the schema describes, so no policy can see a missing attribute.
func TestContextMatchesSchema(t *testing.T) {
	t.Parallel()
	app := mustCompile(t, spec.Access{Policy: spec.AccessAuthenticated, Routes: []spec.AccessRoute{{Path: "/admin"}}}, "")
	r := req(user("alice", "admin"), "POST", "/admin/x", 30)
	r.Trust.Parts = []trust.Part{{Signal: trust.Password, Points: 10}, {Signal: trust.NewLocation, Points: -10}}
	r.SourceIP = netip.MustParseAddr("::ffff:10.1.2.3")
	for _, tc := range []struct {
		name     string
		set      *Set
		req      Request
		resource string
	}{
		{"app", app, r, "/admin"},
		{"workload", app, req(workload("billing"), "GET", "/", 0), "/"},
		{"platform", Platform(0), Request{Principal: user("root", "admin"), Action: "write", Verb: "deploy"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := principalEntity(tc.req.Principal)
			if err != nil {
				t.Fatal(err)
			}
			res := tc.set.routes[tc.resource]
			cr := types.Request{Principal: p.UID, Action: tc.set.actions[tc.req.Action].uid, Resource: res.UID, Context: tc.set.context(tc.req, tc.set.actions[tc.req.Action])}
			if err := validator().Request(cr); err != nil {
				t.Errorf("the request of %+v does not match the schema: %v", tc.req, err)
			}
			if err := validator().Entities(types.EntityMap{p.UID: p, res.UID: res}); err != nil {
				t.Errorf("the entities of %+v do not match the schema: %v", tc.req, err)
			}
		})
	}
}

func TestAuthorizeConcurrent(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, spec.Access{Policy: "policy.cedar"}, rolesFile)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if d := s.Authorize(req(user("alice", "admin"), "GET", "/", i)); !d.Allow {
					t.Errorf("Authorize = %q, want allow", d.Reason)
					return
				}
			}
		}()
	}
	wg.Wait()
}
