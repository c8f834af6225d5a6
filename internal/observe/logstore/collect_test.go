package logstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"noops/internal/runtime/logfile"
)

// collected returns the lines the store holds for app, oldest first.
func collected(t *testing.T, s *Store, app string) []string {
	t.Helper()
	var out []string
	for _, r := range all(t, s, Query{App: app}) {
		out = append(out, r.Line)
	}
	return out
}

// checkSeq checks that lines are "line 0" … "line n-1", each once.
func checkSeq(t *testing.T, lines []string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, l := range lines {
		seen[l]++
	}
	for i := range n {
		if c := seen[fmt.Sprint("line ", i)]; c != 1 {
			t.Errorf("line %d collected %d times", i, c)
		}
	}
	if len(lines) != n {
		t.Errorf("%d lines collected, want %d", len(lines), n)
	}
}

func TestCollectorRotationAndRestart(t *testing.T) {
	t.Parallel()
	logDir, state := t.TempDir(), filepath.Join(t.TempDir(), "state.json")
	st := mustOpen(t, t.TempDir(), Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	os.MkdirAll(filepath.Join(logDir, "shop"), 0o755)
	tick := 0
	now := func() time.Time { tick++; return t0.Add(time.Duration(tick) * time.Millisecond) }
	// Rotates about every 25 lines, keeping 3.
	lf, err := logfile.Open(filepath.Join(logDir, "shop", "sb-1.log"), logfile.Options{MaxSize: 2000, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := lf.Write([]string{"stdout", "stderr"}[i%2], fmt.Sprint("line ", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := NewCollector(logDir, st, state, nil)
	write(0, 10)
	if err := c.collect(); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, collected(t, st, "shop"), 10)
	// Two rotations between polls, one in the middle of what was read.
	write(10, 60)
	if err := c.collect(); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, collected(t, st, "shop"), 60)
	write(60, 70)
	if err := c.collect(); err != nil {
		t.Fatal(err)
	}
	// A new collector on the same state (a restart) goes on where the
	// last one stopped, across another rotation.
	write(70, 100)
	c = NewCollector(logDir, st, state, nil)
	if err := c.load(); err != nil {
		t.Fatal(err)
	}
	if err := c.collect(); err != nil {
		t.Fatal(err)
	}
	lines := collected(t, st, "shop")
	checkSeq(t, lines, 100)
	for i, r := range all(t, st, Query{App: "shop"}) {
		if r.Sandbox != "sb-1" || r.Stream != []string{"stdout", "stderr"}[i%2] {
			t.Fatalf("record %d = %+v", i, r)
		}
	}
	// Files rotated out of existence are forgotten.
	if n := len(c.files); n > 4 {
		t.Errorf("the collector remembers %d files, want at most 4", n)
	}
}

func TestCollectorEdges(t *testing.T) {
	t.Parallel()
	logDir, state := t.TempDir(), filepath.Join(t.TempDir(), "state.json")
	clk := &clock{t: t0.Add(time.Hour)}
	st := mustOpen(t, t.TempDir(), Options{Now: clk.Now})
	c := NewCollector(logDir, st, state, nil)
	c.Now = clk.Now
	c.MaxRead = 1000
	app := filepath.Join(logDir, "api")
	os.MkdirAll(app, 0o755)
	path := filepath.Join(app, "sb-2.log")
	appendRaw := func(s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	js := func(i int) string {
		return fmt.Sprintf(`{"time":"%s","stream":"stdout","line":"{\"msg\":\"hi %d\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}"}`,
			t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), i)
	}
	// A partial line waits for its end.
	full := js(1)
	appendRaw(full[:20])
	c.collect()
	if n := len(collected(t, st, "api")); n != 0 {
		t.Fatalf("a partial line was collected (%d lines)", n)
	}
	appendRaw(full[20:] + "\n")
	// A corrupt line is kept as text; an empty one is skipped.
	appendRaw("not json \x00\xff\n\n")
	c.collect()
	recs := all(t, st, Query{App: "api"})
	if len(recs) != 2 || recs[0].Line != `{"msg":"hi 1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}` ||
		recs[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || recs[1].Line != `not json \x00`+"\uFFFD" || !recs[1].Time.Equal(clk.Now()) {
		t.Fatalf("collected %v", recs)
	}
	// A line longer than MaxRead is cut into pieces.
	appendRaw(strings.Repeat("x", 2500) + "\n")
	c.collect()
	if got := collected(t, st, "api"); len(got) != 5 || got[2] != strings.Repeat("x", 1000) || got[4] != strings.Repeat("x", 500) {
		t.Errorf("a long line: %d lines", len(got))
	}
	// A truncated file is read again from the start.
	os.Truncate(path, 0)
	appendRaw(js(2) + "\n")
	c.collect()
	if got := collected(t, st, "api"); len(got) != 6 || !strings.Contains(got[1], "hi 2") {
		t.Errorf("after truncation: %d lines, want 6 with hi 2 second (by time)", len(got))
	}
	// A new app and sandbox are picked up; a removed file is forgotten.
	os.MkdirAll(filepath.Join(logDir, "blog"), 0o755)
	os.WriteFile(filepath.Join(logDir, "blog", "sb-3.log"), []byte(js(3)+"\n"), 0o600)
	os.Remove(path)
	c.collect()
	if got := collected(t, st, "blog"); len(got) != 1 {
		t.Errorf("new app: %q", got)
	}
	if len(c.files) != 1 {
		t.Errorf("remembered files: %d, want 1", len(c.files))
	}
	// A corrupt state file: a warning, and a fresh start.
	os.WriteFile(state, []byte("{"), 0o600)
	c2 := NewCollector(logDir, st, state, nil)
	if err := c2.load(); err != nil || len(c2.files) != 0 {
		t.Errorf("load of a corrupt state = %v with %d files", err, len(c2.files))
	}
}

func TestCollectorRun(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	st := mustOpen(t, t.TempDir(), Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	os.MkdirAll(filepath.Join(logDir, "a"), 0o755)
	lf, _ := logfile.Open(filepath.Join(logDir, "a", "s.log"), logfile.Options{Now: func() time.Time { return t0 }})
	defer lf.Close()
	c := NewCollector(logDir, st, filepath.Join(t.TempDir(), "state"), nil)
	c.Poll = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	lf.Write("stdout", "line 0")
	got := make(chan Record, 1)
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	go st.Follow(fctx, Query{App: "a"}, func(r Record) error { got <- r; return nil })
	select {
	case r := <-got:
		if r.Line != "line 0" || r.Sandbox != "s" {
			t.Errorf("collected %+v", r)
		}
	case <-fctx.Done():
		t.Fatal("Run did not collect a line")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
