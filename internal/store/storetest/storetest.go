// Package storetest is the conformance suite of store.Store. Every Store
// implementation (store/sqlite today, PostgreSQL later) must pass Run
// unchanged: it pins down what callers rely on beyond the method set, such
// as error kinds and messages, release numbering, Promote, cascading
// deletes, which releases may be deleted, the audit log's hash chain,
// users, devices and sessions, bans, times to the nanosecond in UTC, ordering,
// and safety under concurrent use.
package storetest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

// Run runs the suite against stores made by open. open must return a new,
// empty store each time it is called; Run closes it when the subtest that
// asked for it ends. The subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Apps", testApps},
		{"CreateAppErrors", testCreateAppErrors},
		{"SetReplicas", testSetReplicas},
		{"DeleteApp", testDeleteApp},
		{"DeleteAppThenCreateAgain", testDeleteAppThenCreateAgain},
		{"ReleaseRoundTrip", testReleaseRoundTrip},
		{"ReleaseDefaults", testReleaseDefaults},
		{"ReleaseNumbering", testReleaseNumbering},
		{"CreateReleaseErrors", testCreateReleaseErrors},
		{"GetReleaseErrors", testGetReleaseErrors},
		{"SetReleaseStatus", testSetReleaseStatus},
		{"SetReleaseStatusErrors", testSetReleaseStatusErrors},
		{"ReleaseSBOM", testReleaseSBOM},
		{"Promote", testPromote},
		{"PromoteErrors", testPromoteErrors},
		{"DeleteReleases", testDeleteReleases},
		{"DeleteReleasesErrors", testDeleteReleasesErrors},
		{"DeleteReleasesRacesSandboxes", testDeleteReleasesRacesSandboxes},
		{"Sandboxes", testSandboxes},
		{"SandboxErrors", testSandboxErrors},
		{"Audit", testAudit},
		{"AuditLimits", testAuditLimits},
		{"AuditErrors", testAuditErrors},
		{"AuditChain", testAuditChain},
		{"Events", testEvents},
		{"Users", testUsers},
		{"CreateUserErrors", testCreateUserErrors},
		{"UpdateUser", testUpdateUser},
		{"Devices", testDevices},
		{"DeviceErrors", testDeviceErrors},
		{"UpdateDevice", testUpdateDevice},
		{"Sessions", testSessions},
		{"UpdateSession", testUpdateSession},
		{"DeleteSessions", testDeleteSessions},
		{"Bans", testBans},
		{"BanErrors", testBanErrors},
		{"ConcurrentCreateRelease", testConcurrentCreateRelease},
		{"ConcurrentWrites", testConcurrentWrites},
		{"ConcurrentUpdateUser", testConcurrentUpdateUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close() = %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// A time with nanoseconds in a zone other than UTC, to check that times
// are kept exactly and returned in UTC.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+5", 5*3600))

// digest is an image digest of the right shape.
const digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// ok fails the test now if err is not nil.
func ok(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", call, err)
	}
}

// wantErr checks that err has kind k and mentions msg.
func wantErr(t *testing.T, call string, err error, k errkind.Kind, msg string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s = nil error, want a %v error", call, k)
	case !errkind.Is(err, k):
		t.Errorf("%s = %v (kind %v), want kind %v", call, err, errkind.Of(err), k)
	case !strings.Contains(err.Error(), msg):
		t.Errorf("%s = %q, want a message containing %q", call, err, msg)
	}
}

// sameTime checks that got is the instant want, in UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s is in %v, want UTC", what, got.Location())
	}
}

// between checks that got, a time the store chose, is in [lo, hi] and UTC.
func between(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s = %v, want the time of the call (between %v and %v)", what, got, lo, hi)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s is in %v, want UTC", what, got.Location())
	}
}

func checkApp(t *testing.T, call string, got, want store.App) {
	t.Helper()
	if got.Name != want.Name || got.Release != want.Release || got.Replicas != want.Replicas {
		t.Errorf("%s = {Name:%q Release:%d Replicas:%d}, want {Name:%q Release:%d Replicas:%d}", call,
			got.Name, got.Release, got.Replicas, want.Name, want.Release, want.Replicas)
	}
	sameTime(t, call+".Created", got.Created, want.Created)
}

func checkRelease(t *testing.T, call string, got, want store.Release) {
	t.Helper()
	type fields struct {
		App, Image, SourceDigest, Buildpack, Reason string
		Number                                      int
		Status                                      store.Status
	}
	g := fields{got.App, got.Image, got.SourceDigest, got.Buildpack, got.Reason, got.Number, got.Status}
	w := fields{want.App, want.Image, want.SourceDigest, want.Buildpack, want.Reason, want.Number, want.Status}
	if g != w {
		t.Errorf("%s = %+v, want %+v", call, g, w)
	}
	if !reflect.DeepEqual(got.Env, want.Env) {
		t.Errorf("%s.Env = %#v, want %#v", call, got.Env, want.Env)
	}
	if !sameJSON(got.Config, want.Config) {
		t.Errorf("%s.Config = %s, want %s", call, got.Config, want.Config)
	}
	sameTime(t, call+".Created", got.Created, want.Created)
}

// sameJSON reports whether a and b are both empty or hold the same JSON
// value (an implementation may store JSON in a normal form).
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func checkSandbox(t *testing.T, call string, got, want store.Sandbox) {
	t.Helper()
	g, w := got, want
	g.Created, w.Created, g.Updated, w.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s = %+v, want %+v", call, g, w)
	}
	sameTime(t, call+".Created", got.Created, want.Created)
	sameTime(t, call+".Updated", got.Updated, want.Updated)
}

func checkAudit(t *testing.T, call string, got, want store.AuditEntry) {
	t.Helper()
	g, w := got, want
	g.Time, w.Time = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s = %+v, want %+v", call, g, w)
	}
	sameTime(t, call+".Time", got.Time, want.Time)
}

// newApp creates an app with one replica.
func newApp(t *testing.T, s store.Store, name string) store.App {
	t.Helper()
	a, err := s.CreateApp(t.Context(), store.App{Name: name, Created: t0, Replicas: 1})
	ok(t, "CreateApp("+name+")", err)
	return a
}

// newRelease creates a pending release of app.
func newRelease(t *testing.T, s store.Store, app string) store.Release {
	t.Helper()
	r, err := s.CreateRelease(t.Context(), store.Release{App: app, Image: digest, SourceDigest: digest,
		Buildpack: "golang", Config: json.RawMessage(`{"port":8080}`), Env: map[string]string{"K": "v"},
		Created: t0, Reason: "deploy"})
	ok(t, "CreateRelease("+app+")", err)
	return r
}

// numbers returns the numbers of rels in order.
func numbers(rels []store.Release) []int {
	out := make([]int, len(rels))
	for i, r := range rels {
		out[i] = r.Number
	}
	return out
}

// statuses returns the status of each release of app by number.
func statuses(t *testing.T, s store.Store, app string) map[int]store.Status {
	t.Helper()
	rels, err := s.ListReleases(t.Context(), app)
	ok(t, "ListReleases("+app+")", err)
	out := map[int]store.Status{}
	for _, r := range rels {
		out[r.Number] = r.Status
	}
	return out
}
