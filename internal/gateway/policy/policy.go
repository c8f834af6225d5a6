package policy

import (
	"fmt"
	"iter"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"noops/internal/gateway/trust"
	"noops/internal/spec"
)

// The kinds of principal.
const (
	KindUser     = "user"
	KindWorkload = "workload"
)

// Principal is who makes a request.
type Principal struct {
	Kind  string   // "user" or "workload"
	Name  string   // user name or the workload's app
	Roles []string // users only
}

// Request is what Authorize decides: the facts the gateway or the API
// gathered about one request.
type Request struct {
	Principal Principal
	Action    string // HTTP method, or "read"/"write" for the platform API
	App       string // "" for the platform API
	Path      string // request path
	Verb      string // API verb, "" for HTTP
	Trust     trust.Score
	SourceIP  netip.Addr // the zero Addr becomes 0.0.0.0
	Time      time.Time
	MTLS      string // SPIFFE ID of the client certificate, "" without
	Device    string // device ID, "" without
}

// Decision is the answer to a Request.
type Decision struct {
	Allow bool
	// Reason is one line a user can act on.
	Reason string
	// Policies names the deciding policies: "admins-only (policy.cedar:3:1)"
	// for a file's, the @id alone for a built-in one.
	Policies []string
}

// Set is a compiled access policy of one app (or of the platform API);
// immutable, safe for concurrent use.
type Set struct {
	app      string
	public   bool
	platform bool
	access   spec.Access
	minTrust int // the platform API's; an app's come from access
	policies []compiled
	iter     *policyIter
	names    map[cedar.PolicyID]string
	actions  map[string]action
	routes   map[string]types.Entity // by route prefix; the platform's under ""

	contextMaps   sync.Pool // of types.RecordMap: NewRecord copies it
	signalMemo    memo[[9]int8, types.Value]
	principalMemo memo[string, types.Entity]
	decided       decisions
}

var (
	httpMethods     = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	platformActions = []string{"read", "write"}
)

const authenticatedSrc = `@id("authenticated")
permit (principal is User, action, resource);
`

const platformSrc = `@id("platform-admin")
permit (principal in Role::"admin", action in [Action::"read", Action::"write"], resource == Platform::"api");
@id("platform-viewer")
permit (principal in Role::"viewer", action == Action::"read", resource == Platform::"api");
`

// Compile compiles the access policy of app: a.Policy is "public",
// "authenticated" (also when empty) or a Cedar file, whose name (file, else
// a.Policy) and text (src) are given. A file is validated against the
// schema; an error is errkind.Invalid and names file:line:col. A file
// without permit policies compiles but denies everything.
func Compile(app string, a spec.Access, file string, src []byte) (*Set, error) {
	s := &Set{app: app, access: a}
	switch a.Policy {
	case spec.AccessPublic:
		s.public = true
		return s, nil
	case spec.AccessAuthenticated, "":
		s.policies = authenticatedPolicies()
	default:
		if file == "" {
			file = a.Policy
		}
		return compileFile(app, a, file, src)
	}
	s.finishApp()
	return s, nil
}

// compileFile compiles the Cedar file of an app, whatever a.Policy says.
func compileFile(app string, a spec.Access, file string, src []byte) (*Set, error) {
	list, err := parse(file, src, false)
	if err != nil {
		return nil, err
	}
	s := &Set{app: app, access: a, policies: list}
	s.finishApp()
	return s, nil
}

func (s *Set) finishApp() {
	s.finish(httpMethods)
	s.routes = map[string]types.Entity{"/": routeEntity(s.app, "/")}
	for _, r := range s.access.Routes {
		s.routes[r.Path] = routeEntity(s.app, r.Path)
	}
}

// The built-in policies, compiled once; a compiled Cedar policy is
// immutable and shared by every Set that uses it.
var (
	authenticatedPolicies = builtin("authenticated", authenticatedSrc)
	platformPolicies      = builtin("platform", platformSrc)
)

func builtin(name, src string) func() []compiled {
	return sync.OnceValue(func() []compiled {
		list, err := parse(name, []byte(src), true)
		if err != nil { // the tests compile both
			panic(fmt.Sprintf("policy: compiling the built-in %s policy: %v", name, err))
		}
		return list
	})
}

// Platform returns the platform API's built-in policy: users with
// Role::"admin" may read and write, users with Role::"viewer" may read, and
// both need a trust score of at least minTrust.
func Platform(minTrust int) *Set {
	s := &Set{platform: true, minTrust: minTrust, policies: platformPolicies()}
	s.finish(platformActions)
	s.routes = map[string]types.Entity{"": {UID: types.NewEntityUID("Platform", "api")}}
	return s
}

func (s *Set) finish(actions []string) {
	s.iter = newPolicyIter(s.policies)
	s.names = make(map[cedar.PolicyID]string, len(s.policies))
	for _, p := range s.policies {
		s.names[p.id] = p.name
	}
	s.actions = make(map[string]action, len(actions))
	for _, a := range actions {
		method := emptyString
		if !s.platform {
			method = types.String(a)
		}
		s.actions[a] = action{uid: types.NewEntityUID("Action", types.String(a)), method: method}
	}
	s.contextMaps.New = func() any { return make(types.RecordMap, contextAttrs) }
}

// action is an action a set serves, with its context.method.
type action struct {
	uid    types.EntityUID
	method types.Value
}

func routeEntity(app, prefix string) types.Entity {
	return types.Entity{
		UID:     types.NewEntityUID("Route", types.String(app+":"+prefix)),
		Parents: types.NewEntityUIDSet(types.NewEntityUID("App", types.String(app))),
		Attributes: types.NewRecord(types.RecordMap{
			"app":  types.String(app),
			"path": types.String(prefix),
		}),
	}
}

// Public reports whether the app is public: no sign-in, every request allowed.
func (s *Set) Public() bool { return s.public }

// Authorize decides r. It denies by default: an action the set does not
// serve, a trust score below the route's minimum, a Cedar evaluation error,
// a matching forbid and the lack of a matching permit all deny.
func (s *Set) Authorize(r Request) Decision {
	if s.public {
		return Decision{Allow: true, Reason: "public", Policies: []string{"public"}}
	}
	k, ok := keyOf(r)
	if ok {
		if d, hit := s.decided.get(k); hit {
			return d
		}
	}
	d := s.authorize(r)
	if ok {
		s.decided.put(k, d)
	}
	return d
}

// authorize decides r without the memo.
func (s *Set) authorize(r Request) (d Decision) {
	defer func() {
		// Never allow, nor take the gateway down, on a bug in an evaluator.
		if p := recover(); p != nil {
			d = deny("evaluating the policy of %s on %s failed (denied on error): %v", s.scope(), s.sentence("", r), p)
		}
	}()
	if s.public {
		return Decision{Allow: true, Reason: "public", Policies: []string{"public"}}
	}
	act, ok := s.actions[r.Action]
	if !ok {
		return deny("%s has no action %q", s.scope(), r.Action)
	}
	if !s.platform && r.App != "" && r.App != s.app {
		return deny("the policy of app %s cannot decide a request to app %s", s.app, r.App)
	}
	principal, err := s.principal(r.Principal)
	if err != nil {
		return deny("%v", err)
	}
	minTrust, route := s.minTrust, ""
	if !s.platform {
		minTrust, _, route = s.access.Rule(r.Path)
	}
	// The trust score measures how a person proved who they are; a
	// workload proves it with its SVID on every connection, and only the
	// policy judges it.
	if r.Principal.Kind == KindUser && r.Trust.Total < minTrust {
		return Decision{Reason: s.trustReason(r.Trust, minTrust, route)}
	}
	resource, ok := s.routes[route]
	if !ok { // Rule only returns listed prefixes; stay correct regardless
		resource = routeEntity(s.app, route)
	}
	req := cedar.Request{
		Principal: principal.UID,
		Action:    act.uid,
		Resource:  resource.UID,
		Context:   s.context(r, act),
	}
	dec, diag := cedar.Authorize(s.iter, &entities{principal, resource}, req)
	switch {
	case len(diag.Errors) > 0:
		d := Decision{}
		for _, e := range diag.Errors {
			d.Policies = append(d.Policies, s.names[e.PolicyID])
		}
		e := diag.Errors[0]
		d.Reason = fmt.Sprintf("policy %s failed on %s (denied on error): %s", s.names[e.PolicyID], s.sentence("", r), oneLine(e.Message))
		if n := len(diag.Errors) - 1; n > 0 {
			d.Reason += fmt.Sprintf(" (and %d more)", n)
		}
		return d
	case dec == cedar.Allow:
		names := s.reasonNames(diag.Reasons)
		return Decision{Allow: true, Policies: names, Reason: s.sentence(policies(names, "permits", "permit"), r)}
	case len(diag.Reasons) > 0:
		names := s.reasonNames(diag.Reasons)
		return Decision{Policies: names, Reason: s.sentence(policies(names, "forbids", "forbid"), r)}
	default:
		return Decision{Reason: s.sentence("no policy of "+s.scope()+" permits", r)}
	}
}

func deny(format string, args ...any) Decision {
	return Decision{Reason: fmt.Sprintf(format, args...)}
}

func (s *Set) reasonNames(rs []cedar.DiagnosticReason) []string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = s.names[r.PolicyID]
	}
	return names
}

// policies says what the named policies did: "policy admins permits".
func policies(names []string, one, many string) string {
	if len(names) == 1 {
		return "policy " + names[0] + " " + one
	}
	return "policies " + strings.Join(names, ", ") + " " + many
}

// scope names what the set guards: "app hello" or "the platform API".
func (s *Set) scope() string {
	if s.platform {
		return "the platform API"
	}
	return "app " + s.app
}

// sentence completes head with the request: "<head> user bob to DELETE
// /x", "<head> user bob to write (deploy)"; an empty head is left out.
func (s *Set) sentence(head string, r Request) string {
	var b strings.Builder
	b.Grow(len(head) + len(r.Principal.Kind) + len(r.Principal.Name) + len(r.Action) + len(r.Path) + len(r.Verb) + 10)
	if head != "" {
		b.WriteString(head)
		b.WriteByte(' ')
	}
	b.WriteString(r.Principal.Kind)
	b.WriteByte(' ')
	b.WriteString(oneLine(r.Principal.Name))
	b.WriteString(" to ")
	b.WriteString(r.Action)
	switch {
	case !s.platform:
		b.WriteByte(' ')
		b.WriteString(oneLine(r.Path))
	case r.Verb != "":
		b.WriteString(" (")
		b.WriteString(oneLine(r.Verb))
		b.WriteByte(')')
	}
	return b.String()
}

// oneLine quotes v when it holds a character that could break the reason's
// line (a path may carry a decoded newline), else returns it as is.
func oneLine(v string) string {
	if strings.IndexFunc(v, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0 {
		return strconv.Quote(v)
	}
	return v
}

// trustReason explains a score below a minimum and what would raise it.
func (s *Set) trustReason(sc trust.Score, minTrust int, route string) string {
	where := s.scope()
	if route != "" && route != "/" {
		where = "route " + route + " of " + where
	}
	hint := trust.Default.Missing(trust.Input{
		Password:     sc.Points(trust.Password) > 0,
		SecondFactor: sc.Points(trust.SecondFactor) > 0,
		DeviceCert:   sc.Points(trust.DeviceCert) > 0,
	})
	var lowered []string
	for _, p := range sc.Parts {
		if p.Points < 0 {
			lowered = append(lowered, string(p.Signal))
		}
	}
	switch {
	case hint != "":
		hint = "add " + hint
	case len(lowered) > 0:
		hint = "every sign-in signal is counted; what lowers the score is " + strings.Join(lowered, ", ") +
			" (a new network, recent WAF hits or failed sign-ins: try from a known network, or later)"
	default:
		hint = "every sign-in signal is already counted"
	}
	return fmt.Sprintf("trust %s is below %d, the minimum of %s: %s", sc, minTrust, where, hint)
}

func principalEntity(p Principal) (types.Entity, error) {
	if p.Kind != KindUser && p.Kind != KindWorkload {
		return types.Entity{}, fmt.Errorf("unknown principal kind %q (want %s or %s)", p.Kind, KindUser, KindWorkload)
	}
	if p.Name == "" {
		return types.Entity{}, fmt.Errorf("the request has no %s name", p.Kind)
	}
	if p.Kind == KindWorkload {
		return types.Entity{
			UID:        types.NewEntityUID("Workload", types.String(p.Name)),
			Attributes: types.NewRecord(types.RecordMap{"app": types.String(p.Name)}),
		}, nil
	}
	roles := make([]types.EntityUID, len(p.Roles))
	for i, r := range p.Roles {
		roles[i] = types.NewEntityUID("Role", types.String(r))
	}
	return types.Entity{
		UID:        types.NewEntityUID("User", types.String(p.Name)),
		Parents:    types.NewEntityUIDSet(roles...),
		Attributes: types.NewRecord(types.RecordMap{"name": types.String(p.Name)}),
	}, nil
}

// context builds the Cedar context of r; every attribute of the schema's
// Context is present.
func (s *Set) context(r Request, act action) types.Record {
	ip := r.SourceIP.Unmap().WithZone("")
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	t := r.Time.UTC()
	m := s.contextMaps.Get().(types.RecordMap)
	m["trust"] = types.Long(r.Trust.Total)
	m["signals"] = s.signalsRecord(r.Trust)
	m["source_ip"] = types.IPAddr(netip.PrefixFrom(ip, ip.BitLen()))
	m["hour"] = types.Long(t.Hour())
	m["weekday"] = types.Long(t.Weekday())
	m["path"] = str(r.Path)
	m["method"] = act.method
	m["mtls"] = str(r.MTLS)
	m["device"] = str(r.Device)
	m["verb"] = str(r.Verb)
	rec := types.NewRecord(m) // copies m
	clear(m)
	s.contextMaps.Put(m)
	return rec
}

// contextAttrs is the number of attributes of the context.
const contextAttrs = 10

// emptyString is "" as a Cedar value, boxed once.
var emptyString types.Value = types.String("")

func str(v string) types.Value {
	if v == "" {
		return emptyString
	}
	return types.String(v)
}

func signals(sc trust.Score) types.Record {
	m := make(types.RecordMap, len(trust.Signals))
	for _, sig := range trust.Signals {
		m[types.String(sig)] = types.Long(sc.Points(sig))
	}
	return types.NewRecord(m)
}

// entities is the request's entity store: the principal and the resource.
// Roles and the App need no entries: membership is the parents' business.
type entities struct{ principal, resource types.Entity }

func (e *entities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case e.principal.UID:
		return e.principal, true
	case e.resource.UID:
		return e.resource, true
	}
	return types.Entity{}, false
}

// policyIter yields a set's policies in file order, so that decisions name
// them in a stable order. The sequence is built once: Authorize allocates
// nothing for it.
type policyIter struct {
	seq iter.Seq2[cedar.PolicyID, *cedar.Policy]
}

func newPolicyIter(list []compiled) *policyIter {
	return &policyIter{seq: func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, p := range list {
			if !yield(p.id, p.policy) {
				return
			}
		}
	}}
}

func (p *policyIter) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return p.seq }
