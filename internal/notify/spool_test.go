package notify

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func spoolPath(dir string, s Sink) string { return filepath.Join(dir, spoolID(s)+".jsonl") }

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// TestSpoolSurvivesRestart stops a Notifier while one sink is down and
// checks that a new one on the same spool sends just what was undelivered.
func TestSpoolSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := newReceiver(t, nil)
	// flaky accepts a and b, then is down until told otherwise.
	var mu sync.Mutex
	down := true
	flaky := newReceiver(t, func(_ int, body []byte) int {
		mu.Lock()
		defer mu.Unlock()
		if k := bodyKey(t, body); k == "a" || k == "b" || !down {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	cfg := Config{
		Sinks:   []Sink{Webhook(good.URL, nil), Webhook(flaky.URL+"/hook", nil)},
		Spool:   dir,
		Backoff: 5 * time.Millisecond,
	}
	n1 := start(t, cfg)
	for _, k := range []string{"a", "b", "c", "d"} {
		n1.Notify(ev(k))
	}
	waitFor(t, "good to get all and flaky to fail", func() bool {
		st := n1.Stats().Sinks
		return st[0].Delivered == 4 && st[1].Delivered == 2 && st[1].Retries > 0
	})
	if err := n1.Stop(context.Background()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if got := len(fileLines(t, spoolPath(dir, cfg.Sinks[1]))); got != 2 {
		t.Errorf("flaky sink's spool has %d lines after Stop, want 2 (c and d)", got)
	}

	mu.Lock()
	down = false
	mu.Unlock()
	n2 := newStopped(t, cfg)
	if st := n2.Stats().Sinks; st[0].Pending != 0 || st[1].Pending != 2 {
		t.Errorf("after New, pending %d and %d, want 0 and 2", st[0].Pending, st[1].Pending)
	}
	if err := n2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resend", func() bool { return sinkStats(n2, 1).Delivered == 2 })
	time.Sleep(20 * time.Millisecond) // a wrong resend would show by now
	if got := flaky.delivered(t); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("flaky sink got %q, want each event once, in order", got)
	}
	if got := good.delivered(t); len(got) != 4 {
		t.Errorf("good sink got %q, want the 4 events once (nothing resent)", got)
	}
	waitFor(t, "the spool to empty", func() bool { return len(fileLines(t, spoolPath(dir, cfg.Sinks[1]))) == 0 })
}

// TestSpoolWithoutStop reads the spool as a crash would leave it: appended
// to, never rewritten by Stop.
func TestSpoolWithoutStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := newReceiver(t, func(_ int, body []byte) int {
		if bodyKey(t, body) == "1" {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	sink := Webhook(r.URL, nil)
	n := start(t, Config{Sinks: []Sink{sink}, Spool: dir, Backoff: time.Hour})
	for _, k := range []string{"1", "2", "3"} {
		n.Notify(ev(k))
	}
	path := spoolPath(dir, sink)
	waitFor(t, "2 and 3 on disk, 1 acked", func() bool {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		items, err := parseSpool(f, func(int, error) {})
		return err == nil && len(items) == 2 && items[0].ev.Key == "2" && items[1].ev.Key == "3" && sinkStats(n, 0).Retries > 0
	})
	crashed := t.TempDir()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spoolPath(crashed, sink), b, 0o600); err != nil {
		t.Fatal(err)
	}

	r.setStatus(nil)
	n2 := start(t, Config{Sinks: []Sink{Webhook(r.URL, nil)}, Spool: crashed})
	waitFor(t, "the resend", func() bool { return sinkStats(n2, 0).Delivered == 2 })
	if got := r.delivered(t); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("delivered %q, want each of [1 2 3] once", got)
	}
}

func TestCorruptSpoolTolerated(t *testing.T) {
	t.Parallel()
	line := func(seq int, key string) string {
		return fmt.Sprintf(`{"seq":%d,"event":{"kind":"ban","key":%q,"time":"2025-01-01T00:00:00Z","title":"t","severity":"info","app":"","fields":{}}}`, seq, key)
	}
	tests := []struct {
		name    string
		content string
		want    []string
		warns   bool
	}{
		{"cut last line", line(1, "a") + "\n" + line(2, "b") + "\n" + `{"seq":3,"event":{"kind":"ba`, []string{"a", "b"}, true},
		{"cut before newline", line(1, "a") + "\n" + line(2, "b"), []string{"a", "b"}, false},
		{"garbage inside", line(1, "a") + "\n\x00\x00\xff\n" + `{"ack":1}` + "\n" + line(2, "b") + "\n", []string{"b"}, true},
		{"not records", `{"seq":1}` + "\n" + `{"ack":0}` + "\n[]\n" + line(2, "b") + "\n", []string{"b"}, true},
		{"overlong line", line(1, "a") + "\n" + strings.Repeat("x", maxSpoolLine+10) + "\n" + line(2, "b") + "\n", []string{"a", "b"}, true},
		{"empty", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, nil)
			sink := Webhook(r.URL, nil)
			dir := t.TempDir()
			if err := os.WriteFile(spoolPath(dir, sink), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				return logs.Write(p)
			}), nil))
			n := newStopped(t, Config{Sinks: []Sink{sink}, Spool: dir, Logger: log})
			mu.Lock()
			if warned := strings.Contains(logs.String(), "corrupt"); warned != tc.warns {
				t.Errorf("warned %v, want %v; logs:\n%s", warned, tc.warns, logs.String())
			}
			mu.Unlock()
			if got := len(fileLines(t, spoolPath(dir, sink))); got != len(tc.want) {
				t.Errorf("spool has %d lines after New, want %d (rewritten without the bad ones)", got, len(tc.want))
			}
			n.Notify(ev("new"))
			n.Start(context.Background())
			want := append(slices.Clone(tc.want), "new")
			waitFor(t, "deliveries", func() bool { return sinkStats(n, 0).Delivered == uint64(len(want)) })
			if got := r.delivered(t); !slices.Equal(got, want) {
				t.Errorf("delivered %q, want %q", got, want)
			}
		})
	}
}

// TestSpoolStaysSmall keeps a sink down while many events overflow its
// queue: the file is rewritten rather than growing with every line.
func TestSpoolStaysSmall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	down := newReceiver(t, func(int, []byte) int { return http.StatusServiceUnavailable })
	sink := Webhook(down.URL, nil)
	n := start(t, Config{Sinks: []Sink{sink}, Spool: dir, Backoff: time.Hour, MaxQueue: 2, Dedup: -1})
	const events = 5000 // 5000 event lines and ~5000 acks unless compacted
	for i := range events {
		n.Notify(ev(fmt.Sprint(i)))
	}
	path := spoolPath(dir, sink)
	compactAt := 2*2 + 1024
	waitFor(t, "the last event on disk", func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte(fmt.Sprintf(`"key":"%d"`, events-1)))
	})
	if got := len(fileLines(t, path)); got > 2*compactAt {
		t.Errorf("spool has %d lines for a queue of 2, want at most %d", got, 2*compactAt)
	}
	waitFor(t, "a send in flight", func() bool { return sinkStats(n, 0).Retries > 0 })
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// One in flight and the queue of two behind it, unless the sender
	// took its first event only after the last push (then one is queued).
	if got := fileLines(t, path); len(got) < 2 || len(got) > 3 || !strings.Contains(got[len(got)-1], fmt.Sprintf(`"key":"%d"`, events-1)) {
		t.Errorf("after Stop the spool is %d lines, want the 2 or 3 pending (one in flight, the queue behind it) ending with the last event", len(got))
	}
}

// FuzzParseSpool checks that any spool content parses without error into
// distinct, ordered, unacked events that survive a rewrite unchanged.
func FuzzParseSpool(f *testing.F) {
	f.Add([]byte(`{"seq":1,"event":{"kind":"ban","key":"a","time":"2025-01-01T00:00:00Z","title":"t","severity":"info","app":"","fields":{"x":"y"}}}` + "\n" + `{"ack":1}` + "\n"))
	f.Add([]byte(`{"seq":2,"event":{"kind":"ban"}}` + "\n" + `{"seq":3,"event":{"kind":"unban","fields":null}}` + "\n" + `{"seq":4,"ev`))
	f.Add([]byte("\n\n{}\n[1]\n{\"ack\":18446744073709551615}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := parseSpool(bytes.NewReader(data), func(int, error) {})
		if err != nil {
			t.Fatalf("parseSpool = %v, want only skipped lines", err)
		}
		var buf bytes.Buffer
		for i, it := range items {
			if it.ev.Kind == "" || i > 0 && items[i-1].seq >= it.seq {
				t.Fatalf("item %d: seq %d kind %q, after seq %d", i, it.seq, it.ev.Kind, items[max(i-1, 0)].seq)
			}
			b, err := encodeRecord(record{item: it})
			if err != nil {
				t.Fatalf("encodeRecord: %v", err)
			}
			buf.Write(b)
		}
		again, err := parseSpool(&buf, func(line int, err error) { t.Fatalf("re-parse: line %d: %v", line, err) })
		if err != nil || len(again) != len(items) {
			t.Fatalf("re-parse = %d items, %v; want %d", len(again), err, len(items))
		}
		for i := range items {
			a, b := items[i], again[i]
			if a.seq != b.seq || a.ev.Kind != b.ev.Kind || a.ev.Key != b.ev.Key || a.ev.Title != b.ev.Title || !a.ev.Time.Equal(b.ev.Time) || len(a.ev.Fields) != len(b.ev.Fields) {
				t.Fatalf("item %d changed through a rewrite: %+v became %+v", i, a, b)
			}
		}
	})
}
