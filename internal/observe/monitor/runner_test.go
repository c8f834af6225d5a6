package monitor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/errkind"
)

// TestDetectsDownWithinInterval runs monitors on their real schedule
// against an app that starts failing: the monitor is down within its
// Interval (FailAfter 1), or within Interval+RetryInterval (FailAfter 2).
func TestDetectsDownWithinInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failAfter int
		close     bool // stop listening instead of answering 503
		errWant   string
	}{
		{"503, fail_after 1", 1, false, "status 503"},
		{"503, fail_after 2", 2, false, "status 503"},
		{"stops listening", 1, true, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var broken atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if broken.Load() {
					http.Error(w, "down", 503)
				}
			}))
			t.Cleanup(srv.Close)
			changes := make(chan Status, 16)
			r := newRunner(t, Config{OnChange: func(st Status, from State) { changes <- st }})
			s := Spec{Name: "app", Kind: HTTP, Target: srv.URL, Interval: time.Second, FailAfter: tc.failAfter}
			mustSet(t, r, s)
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, changes, "app", Up, 3*time.Second)
			broke := time.Now()
			if tc.close {
				srv.Listener.Close()
				srv.CloseClientConnections()
			} else {
				broken.Store(true)
			}
			st := waitFor(t, changes, "app", Down, 5*time.Second)
			took := time.Since(broke)
			// One interval (±5% jitter) until the first failed check, then
			// RetryInterval (1s) per further failure, and some slack.
			limit := time.Duration(tc.failAfter)*1050*time.Millisecond + 750*time.Millisecond
			if took > limit {
				t.Errorf("down %s after the app broke, want within %s", took, limit)
			}
			if !strings.Contains(st.Last.Error, tc.errWant) || st.Since.Before(broke) {
				t.Errorf("down status = %+v, want error %q since after %s", st, tc.errWant, broke)
			}
		})
	}
}

func TestSetKeepsState(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	clk := newClock()
	r := newRunner(t, Config{Now: clk.Now})
	a := Spec{Name: "a", Kind: HTTP, Target: srv.URL}
	b := Spec{Name: "b", Kind: TCP, Target: srv.Listener.Addr().String()}
	p := Spec{Name: "p", Kind: Push}
	mustSet(t, r, a, b, p)
	for range 3 {
		for _, n := range []string{"a", "b"} {
			if _, err := r.CheckNow(context.Background(), n); err != nil {
				t.Fatal(err)
			}
		}
		clk.Add(time.Minute)
	}
	before := mustGet(t, r, "a")
	token := mustGet(t, r, "p").PushToken
	if before.State != Up || len(before.Recent) != 3 || token == "" {
		t.Fatalf("before Set: a is %s with %d results, p token %q", before.State, len(before.Recent), token)
	}

	a2 := a
	a2.Interval, a2.BodyContains = time.Minute, "" // same target: history stays
	c := Spec{Name: "c", Kind: TCP, Target: srv.Listener.Addr().String()}
	mustSet(t, r, a2, p, c)
	after := mustGet(t, r, "a")
	if after.State != Up || !after.Since.Equal(before.Since) || len(after.Recent) != 3 || after.Spec.Interval != time.Minute {
		t.Errorf("after Set: a = %s since %s with %d results, interval %s; want up since %s with 3, 1m",
			after.State, after.Since, len(after.Recent), after.Spec.Interval, before.Since)
	}
	if got := mustGet(t, r, "p").PushToken; got != token {
		t.Errorf("after Set: push token changed")
	}
	if _, ok := r.Get("b"); ok {
		t.Errorf("after Set: b still exists")
	}
	if got := mustGet(t, r, "c"); got.State != Pending || len(got.Recent) != 0 {
		t.Errorf("new monitor c = %s with %d results, want pending with none", got.State, len(got.Recent))
	}
	names := []string{}
	for _, st := range r.List() {
		names = append(names, st.Spec.Name)
	}
	if strings.Join(names, ",") != "a,c,p" {
		t.Errorf("List() names = %v, want a,c,p", names)
	}

	// A new target is a new monitor.
	a3 := a2
	a3.Target = srv.URL + "/other"
	mustSet(t, r, a3, p, c)
	if got := mustGet(t, r, "a"); got.State != Pending || len(got.Recent) != 0 {
		t.Errorf("a with a new target = %s with %d results, want pending with none", got.State, len(got.Recent))
	}

	// An invalid set changes nothing.
	for _, bad := range [][]Spec{
		{a3, {Name: "bad", Kind: HTTP}},
		{a3, a3},
	} {
		err := r.Set(bad)
		if !errkind.Is(err, errkind.Invalid) {
			t.Errorf("Set(%d specs) = %v, want invalid", len(bad), err)
		}
		if len(r.List()) != 3 {
			t.Errorf("a failed Set changed the monitors: %d", len(r.List()))
		}
	}
	if err := r.Set([]Spec{a3, a3}); err == nil || !strings.Contains(err.Error(), `monitor "a": defined twice`) {
		t.Errorf("Set with a duplicate = %v", err)
	}
}

func TestOnChange(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(srv.Close)
	type call struct {
		from, to State
		err      string
	}
	var mu sync.Mutex
	var calls []call
	var r *Runner
	r = newRunner(t, Config{OnChange: func(st Status, from State) {
		// Calling back into the Runner must not deadlock.
		if _, ok := r.Get(st.Spec.Name); !ok || len(r.List()) != 1 {
			t.Errorf("OnChange: Get and List do not see the monitor")
		}
		mu.Lock()
		calls = append(calls, call{from, st.State, st.Last.Error})
		mu.Unlock()
	}})
	mustSet(t, r, Spec{Name: "web", Kind: HTTP, Target: srv.URL, FailAfter: 2})
	check := func() {
		if _, err := r.CheckNow(context.Background(), "web"); err != nil {
			t.Fatal(err)
		}
	}
	check() // pending -> up
	broken.Store(true)
	check() // one failure: still up
	check() // down
	check() // no change
	broken.Store(false)
	check() // up
	want := []call{{Pending, Up, ""}, {Up, Down, "status 500, want 2xx"}, {Down, Up, ""}}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != len(want) {
		t.Fatalf("OnChange calls = %+v, want %+v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("OnChange call %d = %+v, want %+v", i, calls[i], want[i])
		}
	}
}

func TestPushDeadMansSwitch(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var changes []string
	var mu sync.Mutex
	r := newRunner(t, Config{Now: clk.Now, OnChange: func(st Status, from State) {
		if st.PushToken != "" {
			t.Errorf("OnChange got the push token")
		}
		mu.Lock()
		changes = append(changes, string(from)+">"+string(st.State))
		mu.Unlock()
	}})
	mustSet(t, r,
		Spec{Name: "backup", Kind: Push, Interval: 5 * time.Minute, Grace: 30 * time.Second},
		Spec{Name: "web", Kind: HTTP, Target: "http://127.0.0.1:1/"})
	token := mustGet(t, r, "backup").PushToken
	if len(token) < 20 {
		t.Fatalf("push token %q is too short", token)
	}
	check := func(wantOK bool, wantErr string) {
		t.Helper()
		res, err := r.CheckNow(context.Background(), "backup")
		if err != nil || res.OK != wantOK || !strings.Contains(res.Error, wantErr) {
			t.Fatalf("CheckNow(backup) = %+v, %v; want OK %v, error %q", res, err, wantOK, wantErr)
		}
	}

	// No push yet, within Interval+Grace: pending, nothing recorded.
	clk.Add(5*time.Minute + 29*time.Second)
	check(true, "")
	if st := mustGet(t, r, "backup"); st.State != Pending || len(st.Recent) != 0 {
		t.Fatalf("before the deadline: %s with %d results, want pending with none", st.State, len(st.Recent))
	}
	// The deadline passes: down.
	clk.Add(time.Second)
	check(false, "no push for 5m30s")
	if st := mustGet(t, r, "backup"); st.State != Down {
		t.Fatalf("after the deadline: %s, want down", st.State)
	}
	// A push brings it up; a later check within the deadline is fine.
	if err := r.Push("backup", token, true, ""); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * time.Minute)
	check(true, "")
	if st := mustGet(t, r, "backup"); st.State != Up || st.Last.Detail != "push received" {
		t.Fatalf("after a push: %s (%+v), want up", st.State, st.Last)
	}
	// An explicit failure is down at once (fail_after 1 for push).
	if err := r.Push("backup", token, false, "disk full"); err != nil {
		t.Fatal(err)
	}
	if st := mustGet(t, r, "backup"); st.State != Down || st.Last.Error != "disk full" {
		t.Fatalf("after a failure push: %s (%+v), want down, disk full", st.State, st.Last)
	}
	// Missed deadlines are recorded once per Interval after the first.
	clk.Add(5*time.Minute + 30*time.Second)
	check(false, "no push for 5m30s")
	check(true, "")
	clk.Add(5 * time.Minute)
	check(false, "no push for 10m30s")

	// Refusals.
	for _, tc := range []struct{ name, monitor, token string }{
		{"wrong token", "backup", token[:len(token)-1] + "x"},
		{"empty token", "backup", ""},
		{"unknown monitor", "nope", token},
		{"not a push monitor", "web", ""},
	} {
		err := r.Push(tc.monitor, tc.token, true, "")
		if !errkind.Is(err, errkind.Permission) || strings.Contains(err.Error(), token) {
			t.Errorf("%s: Push = %v, want a permission error without the token", tc.name, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(changes, " "); got != "pending>down down>up up>down" {
		t.Errorf("changes = %s, want pending>down down>up up>down", got)
	}
}

// TestPushLoop lets the Runner notice a missing push by itself.
func TestPushLoop(t *testing.T) {
	t.Parallel()
	changes := make(chan Status, 8)
	r := newRunner(t, Config{OnChange: func(st Status, from State) { changes <- st }})
	mustSet(t, r, Spec{Name: "cron", Kind: Push, Interval: time.Second})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, changes, "cron", Down, 3*time.Second)
	if !strings.HasPrefix(st.Last.Error, "no push for 1") {
		t.Errorf("down with %q, want no push for 1s", st.Last.Error)
	}
	if err := r.Push("cron", mustGet(t, r, "cron").PushToken, true, "ran"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, "cron", Up, time.Second)
}

func TestFlappingRunner(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var got []string
	r := newRunner(t, Config{Now: clk.Now, FlapWindow: 6, FlapChanges: 4, OnChange: func(st Status, from State) {
		got = append(got, string(st.State))
	}})
	mustSet(t, r, Spec{Name: "job", Kind: Push, Interval: time.Hour})
	token := mustGet(t, r, "job").PushToken
	for _, ok := range []bool{true, false, true, false, true, false, true, true, true, true, true} {
		clk.Add(time.Minute)
		if err := r.Push("job", token, ok, ""); err != nil {
			t.Fatal(err)
		}
	}
	// up down up down, the 4th change flaps; the window of 6 holds at most
	// 2 changes 3 results after the last.
	want := "up down up down flapping up"
	if strings.Join(got, " ") != want {
		t.Errorf("states = %v, want %s", got, want)
	}
	if st := mustGet(t, r, "job"); st.State != Up || st.Changes > 2 {
		t.Errorf("final state %s with %d changes, want up with at most 2", st.State, st.Changes)
	}
}

// TestStopCutsChecks stops a Runner whose check hangs: Stop returns at
// once and the cut check is not recorded.
func TestStopCutsChecks(t *testing.T) {
	t.Parallel()
	addr, accepted := hangServer(t)
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, r, Spec{Name: "hang", Kind: HTTP, Target: "http://" + addr + "/", Interval: 2 * time.Second, Timeout: 2 * time.Second})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Errorf("second Start = nil, want an error")
	}
	select {
	case <-accepted:
	case <-time.After(4 * time.Second):
		t.Fatal("the monitor never connected")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Stop took %s with a check hanging, want well under its 2s timeout", took)
	}
	if st := mustGet(t, r, "hang"); st.State != Pending || len(st.Recent) != 0 {
		t.Errorf("after Stop: %s with %d results, want pending with none", st.State, len(st.Recent))
	}
}

func TestCheckNowErrors(t *testing.T) {
	t.Parallel()
	r := newRunner(t, Config{})
	if _, err := r.CheckNow(context.Background(), "nope"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("CheckNow(nope) = %v, want not found", err)
	}
	addr, _ := hangServer(t)
	mustSet(t, r, Spec{Name: "hang", Kind: TCP, Target: addr})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.CheckNow(ctx, "hang"); err == nil {
		t.Errorf("CheckNow with a cancelled context = nil, want an error")
	}
	if _, err := New(Config{FlapWindow: 4, FlapChanges: 4}); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("New with flap changes = window: %v, want invalid", err)
	}
}
