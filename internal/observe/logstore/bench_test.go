package logstore_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"noops/internal/observe/logstore"
	"noops/internal/observe/logstore/synth"
)

// BenchmarkAppend ingests realistic access records (synth) through Append
// to a closed, sealed store, and reports the bytes on disk per record.
// Run it with -cpu 1 for the per-core figure.
func BenchmarkAppend(b *testing.B) {
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	const ring = 100_000
	g := synth.New(1, start)
	recs := make([]logstore.Record, ring)
	for i := range recs {
		recs[i] = g.Next()
	}
	span := recs[ring-1].Time.Sub(start) + time.Millisecond
	dir := b.TempDir()
	st, err := logstore.Open(dir, logstore.Options{Now: func() time.Time { return start.Add(span * time.Duration(b.N/ring+1)) },
		MaxAge: -1, MaxBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i%ring]
		r.Time = r.Time.Add(span * time.Duration(i/ring))
		if err := st.Append(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(dirSize(b, dir))/float64(b.N), "disk-B/line")
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
