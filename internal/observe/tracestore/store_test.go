package tracestore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestTraceAcrossPartitionsAndReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	s := openStore(t, dir, c, Options{})
	ctx := context.Background()
	t0 := c.Now()

	// The root arrives first; its children minutes later, one in the next
	// partition, one still buffered; another trace in between.
	if err := s.Add(mkSpan(1, 1, 0, t0, 90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Add(50 * time.Minute)
	if err := s.Add(mkSpan(2, 9, 0, c.Now(), time.Second), mkSpan(1, 2, 1, c.Now(), time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Add(30 * time.Minute)
	if err := s.Add(mkSpan(1, 3, 2, c.Now(), time.Second)); err != nil {
		t.Fatal(err)
	}

	check := func(s *Store, when string) {
		t.Helper()
		got, err := s.Trace(ctx, strings.ToUpper(traceID(1)))
		if err != nil {
			t.Fatalf("%s: Trace = %v", when, err)
		}
		if ids := spanIDs(got); !reflect.DeepEqual(ids, []string{spanID(1), spanID(2), spanID(3)}) {
			t.Fatalf("%s: Trace spans = %v", when, ids)
		}
		if got[2].ParentID != spanID(2) || got[0].Attributes["http.method"] != "GET" || !got[0].Start.Equal(t0) {
			t.Errorf("%s: spans decoded wrong: %+v", when, got)
		}
	}
	check(s, "buffered")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Segments != 2 || st.Spans != 4 || st.Buffered != 0 {
		t.Errorf("after Close: %+v, want 2 segments (2 partitions), 4 spans", st)
	}
	if err := s.Add(mkSpan(3, 1, 0, c.Now(), time.Second)); !errkind.Is(err, errkind.Unavailable) {
		t.Errorf("Add after Close = %v, want unavailable", err)
	}

	s2 := openStore(t, dir, c, Options{})
	check(s2, "reopened")
	if _, err := s2.Trace(ctx, traceID(77)); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Trace(unknown) = %v, want not found", err)
	}
	if _, err := s2.Trace(ctx, "xyz"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Trace(xyz) = %v, want invalid", err)
	}
}

func TestAddRefusesInvalidSpans(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{})
	good := mkSpan(1, 1, 0, c.Now(), time.Second)
	cases := map[string]func(*Span){
		"short trace ID":  func(s *Span) { s.TraceID = "abc" },
		"zero trace ID":   func(s *Span) { s.TraceID = strings.Repeat("0", 32) },
		"upper span ID":   func(s *Span) { s.SpanID = "ABCDEF0123456789" },
		"zero span ID":    func(s *Span) { s.SpanID = strings.Repeat("0", 16) },
		"bad parent":      func(s *Span) { s.ParentID = "123" },
		"no start":        func(s *Span) { s.Start = time.Time{} },
		"non-hex trace":   func(s *Span) { s.TraceID = strings.Repeat("g", 32) },
		"span ID too big": func(s *Span) { s.SpanID = strings.Repeat("1", 17) },
	}
	for name, mut := range cases {
		bad := good
		mut(&bad)
		if err := s.Add(good, bad); !errkind.Is(err, errkind.Invalid) {
			t.Errorf("%s: Add = %v, want invalid", name, err)
		}
	}
	if st := s.Stats(); st.Added != 0 || st.Buffered != 0 {
		t.Errorf("invalid batches stored spans: %+v", st)
	}
	// Too old: dropped and counted, not an error.
	old := mkSpan(2, 1, 0, c.Now().Add(-8*24*time.Hour), time.Second)
	if err := s.Add(old); err != nil || s.Stats().Expired != 1 {
		t.Errorf("Add(too old) = %v, stats %+v", err, s.Stats())
	}
}

func TestBusyWhenBufferFull(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{MaxBuffer: 8 << 10, BlockSpans: 1 << 20})
	var err error
	n := 0
	for ; n < 1000; n++ {
		if err = s.Add(mkSpan(1, n+1, 0, c.Now(), time.Millisecond)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrBusy) || !errkind.Is(err, errkind.Unavailable) {
		t.Fatalf("after %d spans Add = %v, want ErrBusy classified unavailable", n, err)
	}
	if n == 0 || s.Stats().Refused != 1 {
		t.Fatalf("accepted %d spans, stats %+v", n, s.Stats())
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(mkSpan(1, 5000, 0, c.Now(), time.Millisecond)); err != nil {
		t.Errorf("Add after Flush = %v", err)
	}
}

func TestWriteFailureKeepsSpans(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	s := openStore(t, dir, c, Options{})
	sp := mkSpan(1, 1, 0, c.Now(), time.Second)
	// A folder where the segment file would go makes the write fail.
	blocker := filepath.Join(dir, segName(s.partition(sp.Start.UnixNano(), c.Now().UnixNano()), 1))
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(sp); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err == nil {
		t.Fatal("Flush into a folder succeeded")
	}
	if got, err := s.Trace(context.Background(), traceID(1)); err != nil || len(got) != 1 {
		t.Fatalf("Trace after a failed write = %v, %v", spanIDs(got), err)
	}
	if st := s.Stats(); st.WriteErrors != 1 || st.Buffered != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush after the fix = %v", err)
	}
	if st := s.Stats(); st.Spans != 1 || st.Buffered != 0 {
		t.Errorf("stats after retry %+v", st)
	}
}

func TestCorruptTailIsCut(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mut  func(t *testing.T, path string, lastBlock int64)
	}{
		{"torn last block", func(t *testing.T, path string, last int64) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()-7); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage appended", func(t *testing.T, path string, last int64) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.Write(bytes.Repeat([]byte{0xde, 0xad}, 100))
			f.Close()
		}},
		{"bit flip in last payload", func(t *testing.T, path string, last int64) {
			b, _ := os.ReadFile(path)
			b[len(b)-4] ^= 0x40
			_ = os.WriteFile(path, b, 0o600)
		}},
		{"bit flip in last header", func(t *testing.T, path string, last int64) {
			b, _ := os.ReadFile(path)
			b[last+10] ^= 0x01
			_ = os.WriteFile(path, b, 0o600)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := newClock()
			s := openStore(t, dir, c, Options{})
			for i := 1; i <= 3; i++ {
				if err := s.Add(mkSpan(i, i, 0, c.Now(), time.Second)); err != nil {
					t.Fatal(err)
				}
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			last := s.segs[0].blocks[2].off
			path := s.segs[0].path
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.mut(t, path, last)

			var logs bytes.Buffer
			s2 := openStore(t, dir, c, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			st := s2.Stats()
			wantSpans := int64(2)
			if tc.name == "garbage appended" {
				wantSpans = 3
			}
			if st.Spans != wantSpans || st.CorruptBytes == 0 || !strings.Contains(logs.String(), "cut a corrupt or truncated tail") {
				t.Fatalf("after reopening: %+v; log %q", st, logs.String())
			}
			if fi, _ := os.Stat(path); fi.Size() != st.Bytes {
				t.Errorf("file is %d bytes, the store %d", fi.Size(), st.Bytes)
			}
			for i := 1; i <= int(wantSpans); i++ {
				if _, err := s2.Trace(context.Background(), traceID(i)); err != nil {
					t.Errorf("Trace(%d) = %v", i, err)
				}
			}
			// The store goes on appending after the cut.
			if err := s2.Add(mkSpan(9, 9, 0, c.Now(), time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			s3 := openStore(t, dir, c, Options{})
			if st := s3.Stats(); st.Spans != wantSpans+1 || st.CorruptBytes != 0 {
				t.Errorf("third open: %+v", st)
			}
		})
	}
}

func TestCorruptBlockInTheMiddleIsSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	s := openStore(t, dir, c, Options{})
	for i := 1; i <= 2; i++ {
		if err := s.Add(mkSpan(1, i, 0, c.Now(), time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	b0 := s.segs[0].blocks[0]
	path := s.segs[0].path
	raw, _ := os.ReadFile(path)
	raw[b0.h.size()-3] ^= 0xff // the first block's payload
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Trace(context.Background(), traceID(1))
	if err != nil || len(got) != 1 || got[0].SpanID != spanID(2) {
		t.Fatalf("Trace = %v, %v; want the intact block's span", spanIDs(got), err)
	}
	if s.Stats().CorruptBlocks != 1 {
		t.Errorf("stats %+v", s.Stats())
	}
}

func TestRetentionByAge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	s := openStore(t, dir, c, Options{MaxAge: 24 * time.Hour})
	if err := s.Add(mkSpan(1, 1, 0, c.Now(), time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Add(23 * time.Hour)
	if err := s.Add(mkSpan(2, 1, 0, c.Now(), time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Segments != 2 {
		t.Fatalf("before expiry: %+v", st)
	}
	c.Add(2 * time.Hour)
	if err := s.Add(mkSpan(3, 1, 0, c.Now(), time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Trace(ctx, traceID(1)); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("expired trace: %v", err)
	}
	for _, tr := range []int{2, 3} {
		if _, err := s.Trace(ctx, traceID(tr)); err != nil {
			t.Errorf("Trace(%d) = %v", tr, err)
		}
	}
	st := s.Stats()
	if st.Segments != 2 || st.Removed != 1 {
		t.Errorf("after expiry: %+v", st)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(files) != 2 {
		t.Errorf("segment files %v", files)
	}
	// Open applies retention too.
	s.Close()
	c.Add(24 * time.Hour)
	s2 := openStore(t, dir, c, Options{MaxAge: 24 * time.Hour})
	if st := s2.Stats(); st.Segments != 1 || st.Spans != 1 {
		t.Errorf("reopened a day later: %+v", st)
	}
}

func TestRetentionBySize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newClock()
	const maxBytes = 2 << 20
	s := openStore(t, dir, c, Options{MaxBytes: maxBytes, Partition: time.Minute})
	// Incompressible attributes, one partition a minute, ~5 MiB in all.
	rnd := uint64(1)
	text := func() string {
		var b strings.Builder
		for range 1500 {
			rnd = rnd*6364136223846793005 + 1442695040888963407
			b.WriteByte(byte('a' + rnd>>59))
		}
		return b.String()
	}
	for m := range 30 {
		var batch []Span
		for i := range 100 {
			sp := mkSpan(m+1, i+1, 0, c.Now(), time.Millisecond)
			sp.Attributes["db.statement"] = text()
			batch = append(batch, sp)
		}
		if err := s.Add(batch...); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
	}
	st := s.Stats()
	if st.Bytes > maxBytes || st.Removed == 0 {
		t.Fatalf("stats %+v: over %d bytes or nothing removed", st, maxBytes)
	}
	ctx := context.Background()
	if _, err := s.Trace(ctx, traceID(1)); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("oldest trace still there: %v", err)
	}
	if got, err := s.Trace(ctx, traceID(30)); err != nil || len(got) != 100 {
		t.Errorf("newest trace: %d spans, %v", len(got), err)
	}
}

func TestConcurrentAddAndQuery(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{BlockSpans: 64})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if err := s.Add(mkSpan(w+1, i+1, 0, c.Now().Add(time.Duration(i)*time.Millisecond), time.Millisecond)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := s.Search(ctx, Query{}); err != nil {
				t.Error(err)
			}
			_, _ = s.Trace(ctx, traceID(1))
		}
	})
	wg.Wait()
	for w := range 4 {
		got, err := s.Trace(ctx, traceID(w+1))
		if err != nil || len(got) != 200 {
			t.Errorf("trace %d: %d spans, %v", w+1, len(got), err)
		}
	}
}

func TestAddWritesFullBlocks(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{BlockSpans: 10})
	for i := range 25 {
		if err := s.Add(mkSpan(1, i+1, 0, c.Now(), time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Spans != 20 || st.Blocks != 2 || st.Buffered != 5 {
		t.Errorf("after 25 spans with blocks of 10: %+v", st)
	}
}

func TestBackgroundWriterFlushesOldBuffer(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{FlushEvery: 10 * time.Millisecond})
	if err := s.Add(mkSpan(1, 1, 0, c.Now(), time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute) // the buffer is now older than FlushEvery
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Spans != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the background writer did not write the buffer: %+v", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
