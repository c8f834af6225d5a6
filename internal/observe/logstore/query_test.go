package logstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestQuery checks each filter on 600 records over 10 minutes in
// partitions of 1 minute, in blocks of 50 and in the head, against a
// predicate written out independently of the store's matching.
func TestQuery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := &clock{t: t0.Add(time.Hour)}
	s, _ := open(t, dir, Options{Now: clk.Now, Partition: time.Minute, BlockRecords: 50})
	defer s.Close()
	apps := []string{"shop", "api", "blog"}
	const n = 600
	rec := func(i int) Record {
		app := apps[i%3]
		switch i % 5 {
		case 0, 1:
			r := access(i, app)
			r.Time = t0.Add(time.Duration(i) * time.Second)
			return r
		case 2:
			return Record{Time: t0.Add(time.Duration(i) * time.Second), App: app, Stream: StreamStdout,
				Line: fmt.Sprintf(`{"level":"%s","user_id":%d,"ok":true}`, []string{"info", "error"}[i%2], i%7)}
		case 3:
			return Record{Time: t0.Add(time.Duration(i) * time.Second), App: app, Stream: StreamStderr, Line: fmt.Sprintf("panic %d here", i)}
		}
		return Record{Time: t0.Add(time.Duration(i) * time.Second), Stream: StreamPlatform, Severity: "INFO", Line: fmt.Sprintf("event %d", i)}
	}
	// Appended out of order, in two halves: the first sealed, the second
	// partly in the head.
	order := make([]int, 0, n)
	for i := n - 1; i >= 0; i -= 2 {
		order = append(order, i)
	}
	for i := 0; i < n; i += 2 {
		order = append(order, i)
	}
	for k, i := range order[:n-20] {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		if k%97 == 0 {
			s.Flush()
		}
	}
	if err := s.sealForTest(); err != nil {
		t.Fatal(err)
	}
	var last []Record
	for _, i := range order[n-20:] {
		last = append(last, rec(i))
	}
	s.Append(last...) // fewer than a block: they stay in the head
	s.Flush()
	if st := s.Stats(); st.Head == 0 || st.Partitions != 10 {
		t.Fatalf("want records both in blocks and in the head over 10 partitions: %+v", st)
	}
	cases := []struct {
		name  string
		q     Query
		match func(i int) bool
	}{
		{"all", Query{}, func(int) bool { return true }},
		{"app", Query{App: "api"}, func(i int) bool { return i%5 != 4 && i%3 == 1 }},
		{"streams", Query{Streams: []string{StreamStderr, StreamPlatform}}, func(i int) bool { return i%5 >= 3 }},
		{"time range", Query{From: t0.Add(125 * time.Second), To: t0.Add(250 * time.Second)}, func(i int) bool { return i >= 125 && i < 250 }},
		{"grep line", Query{Grep: "panic 33"}, func(i int) bool { return i%5 == 3 && strings.HasPrefix(fmt.Sprint(i), "33") }},
		{"grep access", Query{Grep: `"GET /items/10?page=1 HTTP/2.0" 400`}, func(i int) bool { return i == 10 }},
		{"regexp", Query{Regexp: regexp.MustCompile(`^INFO event 1\d$`)}, func(i int) bool { return i%5 == 4 && i >= 10 && i < 20 }},
		{"json fields", Query{Fields: map[string]string{"level": "error", "user_id": "3", "ok": "true"}},
			func(i int) bool { return i%5 == 2 && i%2 == 1 && i%7 == 3 }},
		{"access fields", Query{Fields: map[string]string{"status": "300", "user": "alice", "method": "GET"}},
			func(i int) bool { return i%5 <= 1 && i%4 == 1 && i%2 == 1 }},
		{"absent field", Query{Fields: map[string]string{"nope": ""}}, func(int) bool { return false }},
		{"trace id", Query{TraceID: fmt.Sprintf("%032x", 421)}, func(i int) bool { return i == 420 }},
		{"trace field", Query{Fields: map[string]string{"trace_id": fmt.Sprintf("%032x", 422)}}, func(i int) bool { return i == 421 }},
		{"app and time", Query{App: "shop", From: t0.Add(590 * time.Second)}, func(i int) bool { return i >= 590 && i%5 != 4 && i%3 == 0 }},
		{"limit", Query{Limit: 7}, func(i int) bool { return i < 7 }},
		{"tail", Query{Limit: 7, Tail: true}, func(i int) bool { return i >= n-7 }},
		{"tail of app", Query{App: "blog", Streams: []string{StreamStderr}, Limit: 3, Tail: true},
			func(i int) bool { return i%3 == 2 && i%5 == 3 && i >= 560 }},
		{"tail larger than matches", Query{Grep: "panic 1", Limit: 1000, Tail: true},
			func(i int) bool { return i%5 == 3 && strings.HasPrefix(fmt.Sprint(i), "1") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []Record
			for i := range n {
				if tc.match(i) {
					want = append(want, rec(i))
				}
			}
			got := all(t, s, tc.q)
			if len(got) != len(want) {
				t.Fatalf("Query(%+v): %d records, want %d", tc.q, len(got), len(want))
			}
			for i := range got {
				if got[i].String() != want[i].String() {
					t.Fatalf("Query(%+v)[%d] = %s, want %s", tc.q, i, got[i], want[i])
				}
			}
		})
	}
}

func TestQueryStopsOnEmitError(t *testing.T) {
	t.Parallel()
	s, _ := open(t, t.TempDir(), Options{Now: func() time.Time { return t0 }})
	defer s.Close()
	for i := range 10 {
		s.Append(access(i, "a"))
	}
	s.Flush()
	stop := errors.New("stop")
	n := 0
	err := s.Query(context.Background(), Query{}, func(Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Query with a failing emit = %v after %d records, want stop after 1", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Query(ctx, Query{}, func(Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Query on a cancelled context = %v", err)
	}
}
