package tracestore

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAdd is the store's ingest path: Add of 100-span batches with
// ten attributes each, blocks encoded, compressed and written as they
// fill.
func BenchmarkAdd(b *testing.B) {
	c := newClock()
	s, err := Open(b.TempDir(), Options{Now: c.Now, FlushEvery: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]Span, 100)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			n++
			sp := mkSpan(n/10+1, n, 0, c.Now().Add(time.Duration(n)*time.Microsecond), time.Millisecond)
			if n%10 != 0 {
				sp.ParentID = spanID(n - n%10)
			}
			for k := range 8 {
				sp.Attributes[fmt.Sprintf("attr.%d", k)] = fmt.Sprintf("value %d of span %d", k, n)
			}
			batch[i] = sp
		}
		if err := s.Add(batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	st := s.Stats()
	b.ReportMetric(float64(st.Bytes)/float64(st.Spans), "disk-B/span")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/span")
}
