package monitor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPersistRoundTrip(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(503)
		}
	}))
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "state", "monitors.json")
	clk := newClock()
	specs := []Spec{
		{Name: "web", Kind: HTTP, Target: srv.URL},
		{Name: "down", Kind: HTTP, Target: srv.URL + "/down", FailAfter: 1},
		{Name: "job", Kind: Push, Interval: time.Hour},
		{Name: "moved", Kind: TCP, Target: srv.Listener.Addr().String()},
	}
	r1, err := New(Config{Now: clk.Now, StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, r1, specs...)
	for range 5 {
		for _, n := range []string{"web", "down", "moved"} {
			if _, err := r1.CheckNow(context.Background(), n); err != nil {
				t.Fatal(err)
			}
		}
		clk.Add(time.Minute)
	}
	if err := r1.Push("job", mustGet(t, r1, "job").PushToken, true, "nightly"); err != nil {
		t.Fatal(err)
	}
	if err := r1.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	want := r1.List()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v; want mode 0600", fi, err)
	}

	clk.Add(2 * time.Hour) // the server was down for two hours
	r2 := newRunner(t, Config{Now: clk.Now, StatePath: path})
	specs[3].Target = "127.0.0.1:1" // a new target: its state is not carried over
	mustSet(t, r2, specs...)
	for _, w := range want {
		got := mustGet(t, r2, w.Spec.Name)
		if w.Spec.Name == "moved" {
			if got.State != Pending || len(got.Recent) != 0 {
				t.Errorf("moved monitor restored as %s with %d results, want pending with none", got.State, len(got.Recent))
			}
			continue
		}
		got.Spec, w.Spec = Spec{}, Spec{}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("restored %s =\n%+v\nwant\n%+v", w.Spec.Name, got, w)
		}
	}
	if st := mustGet(t, r2, "down"); st.State != Down || st.Uptime["24h"] != 0 {
		t.Errorf("restored down monitor: %s, uptime %v", st.State, st.Uptime)
	}
	if st := mustGet(t, r2, "web"); st.State != Up || st.Uptime["24h"] != 1 || st.Uptime["7d"] != 1 || len(st.Recent) != 5 {
		t.Errorf("restored web monitor: %s, uptime %v, %d results", st.State, st.Uptime, len(st.Recent))
	}
	// The push clock restarts: the job, last pushed 2h ago with an
	// interval of 1h, is not overdue at once.
	if res, err := r2.CheckNow(context.Background(), "job"); err != nil || !res.OK || !strings.Contains(res.Detail, "last push 2h0m0s ago") {
		t.Errorf("restored push monitor: CheckNow = %+v, %v; want OK, last push 2h ago (its clock restarted at Set)", res, err)
	}
}

// TestPersistedBySet proves that a new push token is on disk before Set
// returns, and that the periodic save writes changes without Stop.
func TestPersistedBySet(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "monitors.json")
	r := newRunner(t, Config{StatePath: path, SaveEvery: 20 * time.Millisecond})
	mustSet(t, r, Spec{Name: "job", Kind: Push, Interval: time.Hour})
	token := mustGet(t, r, "job").PushToken
	file := readState(t, path)
	if len(file.Monitors) != 1 || file.Monitors[0].Token != token {
		t.Fatalf("state after Set = %+v, want the job with its token", file)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Push("job", token, true, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		if f := readState(t, path); len(f.Monitors[0].Recent) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the push was not saved within 3s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readState(t *testing.T, path string) savedFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f savedFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPersistBadFiles(t *testing.T) {
	t.Parallel()
	many := make([]string, 1000)
	for i := range many {
		many[i] = `{"time":"2026-03-01T11:00:00Z","ok":true,"error":"` + strings.Repeat("e", 2000) + `"}`
	}
	hostile := `{"version":1,"monitors":[
		null,
		{"name":"BAD NAME","kind":"tcp","state":"up"},
		{"name":"web","kind":"tcp","target":"a:1","state":"sideways","base":"exploded","fails":-5,"oks":99999999999,
		 "window":["up","weird","down"],"recent":[` + strings.Join(many, ",") + `],
		 "minutes":[[61,1,1],[120,5,3],[180,1,2],[120,1,1],[240,-1,1]],"hours":[[7200,1,1]],"token":"not-for-tcp"},
		{"name":"web","kind":"tcp","target":"a:1","state":"down"}
	]}`
	tests := []struct {
		name    string
		content string
		aside   bool // moved to .corrupt
		check   func(t *testing.T, r *Runner)
	}{
		{"garbage", "\x00\xffnot json", true, nil},
		{"truncated", `{"version":1,"monitors":[{"name":"web"`, true, nil},
		{"future version", `{"version":99,"monitors":[]}`, true, nil},
		{"hostile values", hostile, false, func(t *testing.T, r *Runner) {
			st := mustGet(t, r, "web")
			if st.State != Pending || len(st.Recent) != RecentSize || len(st.Recent[0].Error) > maxMessage+3 || st.PushToken != "" {
				t.Errorf("restored %s with %d results (first error %d bytes), token %q", st.State, len(st.Recent), len(st.Recent[0].Error), st.PushToken)
			}
			m := r.mons["web"]
			if len(m.t.minutes) != 1 || m.t.minutes[0].Start != 180 || m.t.fails != 0 || m.t.oks != 1<<20 || len(m.t.window) != 2 {
				t.Errorf("restored tracker: minutes %+v, fails %d, oks %d, window %v", m.t.minutes, m.t.fails, m.t.oks, m.t.window)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "monitors.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r := newRunner(t, Config{StatePath: path})
			mustSet(t, r, Spec{Name: "web", Kind: TCP, Target: "a:1"})
			if _, err := os.Stat(path + ".corrupt"); (err == nil) != tc.aside {
				t.Errorf("set aside = %v, want %v", err == nil, tc.aside)
			}
			if tc.check != nil {
				tc.check(t, r)
			} else if st := mustGet(t, r, "web"); st.State != Pending || len(st.Recent) != 0 {
				t.Errorf("after a bad file: %s with %d results, want a fresh monitor", st.State, len(st.Recent))
			}
		})
	}
}

func TestPersistUnwritable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	r, err := New(Config{StatePath: filepath.Join(dir, "monitors.json")})
	if err != nil {
		t.Fatal(err)
	}
	// A file where the state's directory should be: every write fails.
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Set still applies: monitors run without their state file.
	mustSet(t, r, Spec{Name: "job", Kind: Push})
	if _, ok := r.Get("job"); !ok {
		t.Fatal("Set did not apply")
	}
	if err := r.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "writing monitor state") {
		t.Errorf("Stop = %v, want the write error", err)
	}
}
