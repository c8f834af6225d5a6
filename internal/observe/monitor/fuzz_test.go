package monitor

import (
	"reflect"
	"testing"
	"time"

	"noops/internal/errkind"
)

// FuzzValidate feeds arbitrary fields to Validate: it never panics, fails
// only with an Invalid error, and a spec it accepts normalizes to itself.
func FuzzValidate(f *testing.F) {
	f.Add("web", "", "http", "https://example.com/health", "", "2xx", `up`, int64(30e9), int64(0), 0)
	f.Add("app:hello", "hello", "http", "https://127.0.0.1:443/", "hello.example.com", "200-399", "", int64(0), int64(0), 2)
	f.Add("db", "", "tcp", "[::1]:5432", "", "", "", int64(1e9), int64(1e9), 1)
	f.Add("cert", "", "tls", "example.com:443", "example.com", "", "", int64(0), int64(0), 0)
	f.Add("job", "", "push", "", "", "", "", int64(86400e9), int64(0), 0)
	f.Add("x", "", "http", "http://[::1", "a b", "6xx", "(", int64(-1), int64(5), -3)
	f.Fuzz(func(t *testing.T, name, app, kind, target, host, status, bodyRe string, interval, timeout int64, failAfter int) {
		s := Spec{
			Name: name, App: app, Kind: Kind(kind), Target: target, Host: host,
			Interval: time.Duration(interval), Timeout: time.Duration(timeout), FailAfter: failAfter,
		}
		if kind == "http" {
			s.Status, s.BodyRegexp = []string{status}, bodyRe
		}
		n, c, err := s.normalize()
		if err != nil {
			if !errkind.Is(err, errkind.Invalid) {
				t.Fatalf("Validate(%+v) = %v, not classified invalid", s, err)
			}
			return
		}
		if n.Interval < MinInterval || n.Kind != Push && (n.Timeout <= 0 || n.Timeout > n.Interval || n.RetryInterval < MinInterval || n.RetryInterval > n.Interval) {
			t.Fatalf("normalize(%+v) = %+v: out of bounds", s, n)
		}
		if n.Kind == HTTP && len(c.statuses) != len(n.Status) {
			t.Fatalf("normalize(%+v): %d statuses parsed of %d", s, len(c.statuses), len(n.Status))
		}
		again, _, err := n.normalize()
		if err != nil || !reflect.DeepEqual(again, n) {
			t.Fatalf("normalize is not idempotent: %+v -> %+v, %v", n, again, err)
		}
	})
}

// FuzzDecodeState feeds arbitrary bytes to the state file decoder: it
// never panics, and what it keeps stays within the history's bounds and
// can be recorded into.
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"version":1,"monitors":[{"name":"web","kind":"http","target":"http://a/","state":"up","base":"up","since":"2026-03-01T12:00:00Z","recent":[{"time":"2026-03-01T12:00:00Z","ok":true}],"minutes":[[1772366400,1,1]],"hours":[[1772366400,1,1]]}]}`))
	f.Add([]byte(`{"version":1,"monitors":[{"name":"p","kind":"push","state":"flapping","base":"down","window":["up","down","up"],"token":"abc","last_push":"2026-03-01T12:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"monitors":[null,{"name":"x","minutes":[[60,2,1],[0,0,0]]}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`nonsense`))
	fc := flapConfig{Window: defaultFlapWin, Changes: defaultFlapMin}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := decodeState(b)
		if err != nil {
			return
		}
		for name, sv := range out {
			tr := sv.tracker(fc)
			switch {
			case len(tr.recent) > RecentSize, len(tr.window) > fc.Window, len(tr.minutes) > 24*60+1, len(tr.hours) > 7*24+1:
				t.Fatalf("%s: history over its bounds", name)
			case tr.state != Pending && tr.state != Up && tr.state != Down && tr.state != Flapping:
				t.Fatalf("%s: state %q", name, tr.state)
			case tr.fails < 0 || tr.oks < 0:
				t.Fatalf("%s: negative counts", name)
			}
			for i := 1; i < len(tr.minutes); i++ {
				if tr.minutes[i].Start <= tr.minutes[i-1].Start {
					t.Fatalf("%s: minute buckets out of order", name)
				}
			}
			for _, b := range append(tr.minutes, tr.hours...) {
				if b.OK > b.Total {
					t.Fatalf("%s: bucket %+v", name, b)
				}
			}
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			tr.record(Result{Time: now, OK: true}, 2, 1, fc)
			if st := tr.status(now); st.Uptime["24h"] < 0 || st.Uptime["24h"] > 1 {
				t.Fatalf("%s: uptime %v", name, st.Uptime)
			}
		}
	})
}
