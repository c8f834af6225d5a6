package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// logBuf collects a store's log for checks.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func open(t *testing.T, dir string, opt Options) (*Store, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	opt.Logger = slog.New(slog.NewTextHandler(lb, nil))
	if opt.FlushEvery == 0 {
		opt.FlushEvery = time.Hour // tests flush explicitly
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	return s, lb
}

func all(t *testing.T, s *Store, q Query) []Record {
	t.Helper()
	var out []Record
	if err := s.Query(context.Background(), q, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("Query(%+v) = %v", q, err)
	}
	return out
}

func access(i int, app string) Record {
	return Record{Time: t0.Add(time.Duration(i) * time.Second), App: app, Stream: StreamAccess,
		TraceID: fmt.Sprintf("%032x", i+1),
		Access: &Access{Method: "GET", Host: app + ".example.com", Path: fmt.Sprintf("/items/%d?page=%d", i, i%3), Proto: "HTTP/2.0",
			Status: 200 + 100*(i%4), Duration: time.Duration(i) * time.Millisecond, BytesOut: int64(i * 10), Client: "203.0.113.9",
			User: []string{"", "alice"}[i%2], UserAgent: "curl/8.5.0"}}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := &clock{t: t0.Add(time.Hour)}
	s, _ := open(t, dir, Options{Now: clk.Now})
	in := []Record{
		access(1, "shop"),
		{Time: t0.Add(2*time.Second + 1234567), App: "shop", Stream: StreamStdout, Sandbox: "sb-1", Line: `{"level":"info","msg":"hi","n":3}`},
		{Time: t0.Add(3 * time.Second), Stream: StreamPlatform, Severity: "WARN", Line: "deploy started", TraceID: "not-hex", SpanID: "00f067aa0ba902b7"},
		{Time: t0.Add(4 * time.Second), App: "api", Stream: StreamOTLP, Severity: "ERROR", Line: "boom\tx", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "zz"},
		{Time: t0.Add(5 * time.Second), App: "api", Stream: StreamStderr, Line: ""},
		{Time: t0.Add(6 * time.Second), App: "api", Stream: "custom", Line: "/products/007/x/123abc/45"},
	}
	if err := s.Append(in...); err != nil {
		t.Fatal(err)
	}
	want := make([]Record, len(in))
	for i, r := range in {
		want[i] = cloneRecord(r)
		want[i].Time = time.UnixMicro(r.Time.UnixMicro()).UTC()
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := all(t, s, Query{}); !reflect.DeepEqual(got, want) {
		t.Fatalf("from the head:\n got %v\nwant %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, walName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write-ahead log still there after Close: %v", err)
	}
	s, _ = open(t, dir, Options{Now: clk.Now})
	defer s.Close()
	if got := all(t, s, Query{}); !reflect.DeepEqual(got, want) {
		t.Fatalf("from the blocks:\n got %v\nwant %v", got, want)
	}
	st := s.Stats()
	if st.Records != int64(len(in)) || st.Partitions != 1 || st.Head != 0 || !st.Oldest.Equal(want[0].Time) || !st.Newest.Equal(want[len(want)-1].Time) {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestPathTemplates(t *testing.T) {
	t.Parallel()
	paths := []string{"/", "", "/products/1234/reviews?page=2", "/a/007/b", "/x/123abc", "/1/2/3?x=45&y=0", "/v1/x",
		"/n/12345678901234567890", "/static/app.3f9a1c2e.js", "0", "/é/42/ü", "/%20/99%2F", "/9", "/\x01/5"}
	var recs []Record
	for i, p := range paths {
		r := access(i, "a")
		r.Access.Path = p
		r.sanitize(DefaultMaxLine)
		recs = append(recs, r)
	}
	body, _ := newEncoder(nil).encode(recs)
	got, err := decoder{}.decode(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if got[i].Access.Path != recs[i].Access.Path {
			t.Errorf("path %q came back as %q", recs[i].Access.Path, got[i].Access.Path)
		}
	}
}

func TestRetentionByAge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := &clock{t: t0.Add(10 * time.Hour)}
	opt := Options{Now: clk.Now, MaxAge: 3 * time.Hour}
	s, _ := open(t, dir, opt)
	for h := range 10 {
		s.Append(Record{Time: t0.Add(time.Duration(h)*time.Hour + time.Minute), App: "a", Stream: StreamStdout, Line: fmt.Sprint(h)})
	}
	s.Close()
	// Records before 7:00, the cutoff, were refused: only 7, 8 and 9 were kept.
	s, _ = open(t, dir, opt)
	if got := len(all(t, s, Query{})); got != 3 {
		t.Errorf("after writing 10 hours with MaxAge 3h: %d records, want 3", got)
	}
	s.Close()
	// Time passes: reopening removes partitions that expired since.
	clk.Set(t0.Add(12*time.Hour + time.Minute))
	s = mustOpen(t, dir, opt)
	got := all(t, s, Query{})
	st := s.Stats()
	if len(got) != 1 || got[0].Line != "9" || st.Partitions != 1 || st.Removed != 2 {
		t.Errorf("two hours later: %v, %+v; want only hour 9", got, st)
	}
	// A record older than the retention is refused and counted.
	s.Append(Record{Time: t0, App: "a", Stream: StreamStdout, Line: "old"})
	s.Flush()
	if st := s.Stats(); st.Dropped != 1 || st.Records != 1 {
		t.Errorf("after appending an expired record: %+v", st)
	}
	s.Close()
}

func mustOpen(t *testing.T, dir string, opt Options) *Store {
	s, _ := open(t, dir, opt)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRetentionBySize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := &clock{t: t0.Add(6 * time.Hour)}
	s, _ := open(t, dir, Options{Now: clk.Now, MaxAge: -1})
	for h := range 6 {
		for i := range 500 {
			r := access(i, "a")
			r.Time = t0.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Second)
			s.Append(r)
		}
		s.Flush()
		if err := s.sealForTest(); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	s.Close()
	if st.Partitions != 6 {
		t.Fatalf("Stats() = %+v, want 6 partitions", st)
	}
	per := st.Bytes / 6
	// Room for 2.75 partitions: the 4 oldest go.
	s, _ = open(t, dir, Options{Now: clk.Now, MaxAge: -1, MaxBytes: per*5/2 + per/4})
	defer s.Close()
	st = s.Stats()
	got := all(t, s, Query{})
	if st.Partitions != 2 || st.Removed != 4 || st.Bytes > per*3 || len(got) != 1000 || got[0].Time.Before(t0.Add(4*time.Hour)) {
		t.Errorf("with MaxBytes for 2.75 partitions: %+v, %d records from %v", st, len(got), got[0].Time)
	}
	// A late record for a removed partition is refused.
	s.Append(Record{Time: t0.Add(time.Minute), App: "a", Stream: StreamStdout, Line: "late"})
	s.Flush()
	if st := s.Stats(); st.Dropped != 1 {
		t.Errorf("a late record for a removed partition: Dropped = %d, want 1", st.Dropped)
	}
	// The newest partition stays even when it alone is over the limit.
	s2dir := t.TempDir()
	s2, _ := open(t, s2dir, Options{Now: clk.Now, MaxAge: -1, MaxBytes: 10})
	s2.Append(access(1, "a"))
	s2.Close()
	s2 = mustOpen(t, s2dir, Options{Now: clk.Now, MaxAge: -1, MaxBytes: 10})
	if n := len(all(t, s2, Query{})); n != 1 {
		t.Errorf("the only partition was removed for size: %d records left", n)
	}
}

// sealForTest seals the head from the test's goroutine: the writer
// goroutine is idle between flushes (FlushEvery is an hour in tests).
func (s *Store) sealForTest() error {
	done := make(chan error, 1)
	s.flushReq <- done
	if err := <-done; err != nil {
		return err
	}
	return s.seal()
}

func TestFollow(t *testing.T) {
	t.Parallel()
	s, _ := open(t, t.TempDir(), Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	s.Append(access(1, "a"), access(2, "b"))
	s.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Record, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, Query{App: "a"}, func(r Record) error { got <- r; return nil })
	}()
	if r := <-got; r.Access.Path != "/items/1?page=1" {
		t.Fatalf("first record = %v", r)
	}
	s.Append(access(3, "b"), access(4, "a"))
	s.Flush()
	if r := <-got; r.Access.Path != "/items/4?page=1" {
		t.Fatalf("followed record = %v", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow after cancel = %v", err)
	}
	// Closing the store ends a follower.
	go func() {
		done <- s.Follow(context.Background(), Query{App: "none"}, func(Record) error { return nil })
	}()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Follow after Close = %v, want ErrClosed", err)
	}
	if err := s.Append(access(5, "a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
}

func TestFlushEvery(t *testing.T) {
	t.Parallel()
	s, _ := open(t, t.TempDir(), Options{FlushEvery: 20 * time.Millisecond})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Record, 1)
	go s.Follow(ctx, Query{}, func(r Record) error { got <- r; return nil })
	s.Append(Record{App: "a", Stream: StreamStdout, Line: "tick"})
	select {
	case r := <-got:
		if r.Line != "tick" || r.Time.IsZero() {
			t.Errorf("followed %v", r)
		}
	case <-ctx.Done():
		t.Fatal("an appended record was not seen without Flush")
	}
}

func TestHugeAndBinaryLines(t *testing.T) {
	t.Parallel()
	s, _ := open(t, t.TempDir(), Options{Now: func() time.Time { return t0 }, MaxLine: 1000})
	defer s.Close()
	huge := strings.Repeat("é", 1<<20) // 2 MiB
	bin := "a\x00b\x1b[31mred\x7f\r\n\xff\xfe\tend"
	s.Append(
		Record{Time: t0, App: "a", Stream: StreamStdout, Line: huge},
		Record{Time: t0, App: "a", Stream: StreamStdout, Line: bin},
		Record{Time: t0, App: "a\nb", Stream: StreamAccess, Access: &Access{Path: "/" + strings.Repeat("x", 1<<20), UserAgent: "\x00"}},
	)
	s.Flush()
	got := all(t, s, Query{})
	if len(got) != 3 {
		t.Fatalf("%d records", len(got))
	}
	if l := got[0].Line; !got[0].Truncated || len(l) > 1000 || len(l) < 990 || strings.Trim(l, "é") != "" {
		t.Errorf("huge line: truncated=%v, %d bytes", got[0].Truncated, len(l))
	}
	if want := `a\x00b\x1b[31mred\x7f\r\n` + "\uFFFD\uFFFD\tend"; got[1].Line != want || got[1].Truncated {
		t.Errorf("binary line = %q, want %q", got[1].Line, want)
	}
	if a := got[2].Access; got[2].App != `a\nb` || len(a.Path) != maxField || a.UserAgent != `\x00` || !got[2].Truncated {
		t.Errorf("access record: app %q, path %d bytes, agent %q, truncated %v", got[2].App, len(a.Path), a.UserAgent, got[2].Truncated)
	}
	if st := s.Stats(); st.Truncated != 2 {
		t.Errorf("Stats().Truncated = %d, want 2", st.Truncated)
	}
	for _, r := range got {
		if strings.ContainsFunc(r.String(), func(c rune) bool { return c < 0x20 && c != '\t' }) {
			t.Errorf("String() holds a control character: %q", r.String())
		}
	}
}

func TestOpenTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil {
		t.Error("a second Open of the same directory succeeded")
	}
	s.Close()
	mustOpen(t, dir, Options{})
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	s, _ := open(t, t.TempDir(), Options{Now: func() time.Time { return t0.Add(time.Hour) }, BlockRecords: 300, FlushEvery: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var followed sync.WaitGroup
	var nFollowed atomic.Int64
	followed.Add(1)
	go func() {
		defer followed.Done()
		s.Follow(ctx, Query{Streams: []string{StreamAccess}}, func(Record) error { nFollowed.Add(1); return nil })
	}()
	var wg sync.WaitGroup
	const writers, each = 4, 2000
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Append(access(w*each+i, fmt.Sprint("app", w))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				var prev time.Time
				s.Query(context.Background(), Query{App: "app1", Limit: 100, Tail: true}, func(r Record) error {
					if r.Time.Before(prev) {
						t.Errorf("out of order: %v after %v", r.Time, prev)
					}
					prev = r.Time
					return nil
				})
				s.Stats()
			}
		}()
	}
	wg.Wait()
	s.Flush()
	if n := len(all(t, s, Query{})); n != writers*each {
		t.Errorf("%d records, want %d", n, writers*each)
	}
	for deadline := time.Now().Add(10 * time.Second); nFollowed.Load() < writers*each && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // for any record too many
	cancel()
	followed.Wait()
	if n := nFollowed.Load(); n != writers*each {
		t.Errorf("the follower saw %d records, want %d", n, writers*each)
	}
	s.Close()
}
