package export

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func openTestQueue(t *testing.T, dir string, maxBytes int64) *queue {
	t.Helper()
	q, _, err := openQueue(dir, "test", maxBytes, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func appendPayload(t *testing.T, q *queue, p []byte) {
	t.Helper()
	rec := make([]byte, recordHeader+len(p))
	copy(rec[recordHeader:], p)
	if _, err := q.append(rec, payloadCRC(p)); err != nil {
		t.Fatal(err)
	}
}

// drain reads and acks everything, returning the payloads read per batch.
func drain(t *testing.T, q *queue, maxBytes int) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		b, corrupt, err := q.read(maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if corrupt > 0 {
			t.Fatalf("%d records corrupt", corrupt)
		}
		if b == nil {
			return out
		}
		out = append(out, b.payload)
		q.ack(b)
	}
}

// TestQueueSegments: records cross many segments, come back in order,
// merged up to the limit, and delivered segments are deleted.
func TestQueueSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir, 64<<10) // 4 KiB segments
	var want bytes.Buffer
	for i := range 500 {
		p := fmt.Appendf(nil, "payload %04d;", i)
		want.Write(p)
		appendPayload(t, q, p)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	batches := drain(t, q, 100)
	got := bytes.Join(batches, nil)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read back %d bytes differing from the %d appended", len(got), want.Len())
	}
	for i, b := range batches {
		if len(b) > 100 {
			t.Errorf("batch %d is %d bytes, over the 100 asked", i, len(b))
		}
	}
	if n, by := q.pending(); n != 0 || by != 0 {
		t.Errorf("pending = %d, %d after draining", n, by)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) != 1 {
		t.Errorf("%d segments left after draining, want the one being written", len(segs))
	}
	must(q.close())
}

// TestQueueReopenMidSegment: the ack is honoured inside a segment, and new
// records continue the sequence.
func TestQueueReopenMidSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir, 1<<20)
	for i := range 10 {
		appendPayload(t, q, []byte{byte(i)})
	}
	b, _, _ := q.read(3)
	q.ack(b) // 0, 1, 2
	must(q.close())

	q = openTestQueue(t, dir, 1<<20)
	if n, by := q.pending(); n != 7 || by != 7*(recordHeader+1) {
		t.Fatalf("pending after reopen = %d, %d; want 7, %d", n, by, 7*(recordHeader+1))
	}
	appendPayload(t, q, []byte{10})
	got := bytes.Join(drain(t, q, 1<<20), nil)
	if want := []byte{3, 4, 5, 6, 7, 8, 9, 10}; !bytes.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	must(q.close())
	q = openTestQueue(t, dir, 1<<20)
	if n, _ := q.pending(); n != 0 {
		t.Errorf("%d pending after everything was acked", n)
	}
	must(q.close())
}

// TestQueueCorruptAtRuntime: a record damaged on disk after it was
// written is dropped when read, with the rest of its segment, and
// appending goes on in a new segment.
func TestQueueCorruptAtRuntime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir, 1<<20)
	for i := range 4 {
		appendPayload(t, q, []byte{byte(i), byte(i)})
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	flip(t, segs[0], magicLen+int64(recordHeader+2)+recordHeader) // record 1's payload
	b, corrupt, _ := q.read(2)
	if b == nil || !bytes.Equal(b.payload, []byte{0, 0}) || corrupt != 0 {
		t.Fatalf("first read = %v, %d", b, corrupt)
	}
	q.ack(b)
	b, corrupt, _ = q.read(2)
	if b != nil || corrupt != 3 {
		t.Fatalf("second read = %v, corrupt %d; want nothing, 3", b, corrupt)
	}
	appendPayload(t, q, []byte{9})
	if got := bytes.Join(drain(t, q, 100), nil); !bytes.Equal(got, []byte{9}) {
		t.Errorf("after the damage read %v, want [9]", got)
	}
	must(q.close())
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	payloads := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{0xff}, 70000)}
	for i, p := range payloads {
		buf.Write(encodeRecord(uint64(100+i), p))
	}
	r := bufio.NewReader(&buf)
	for i, p := range payloads {
		seq, got, err := readRecord(r, nil)
		if err != nil || seq != uint64(100+i) || !bytes.Equal(got, p) {
			t.Fatalf("record %d = %d, %d bytes, %v", i, seq, len(got), err)
		}
	}
	if _, _, err := readRecord(r, nil); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}
	huge := encodeRecord(1, nil)
	huge[3] = 0xff // length far over the limit
	if _, _, err := readRecord(bufio.NewReader(bytes.NewReader(huge)), nil); !errors.Is(err, errCorrupt) {
		t.Errorf("huge length: %v, want errCorrupt", err)
	}
}

// FuzzReadRecord: any bytes decode to records, EOF, errTorn or errCorrupt,
// without panicking or allocating past the limit; a record that decodes
// re-encodes to the same bytes.
func FuzzReadRecord(f *testing.F) {
	f.Add(encodeRecord(7, []byte("hello")))
	f.Add(append(encodeRecord(1, nil), encodeRecord(2, []byte{1, 2, 3})...))
	f.Add(encodeRecord(3, mustMarshal(traceReq("x")))[:20])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		off := 0
		for {
			seq, p, err := readRecord(r, nil)
			if err == io.EOF {
				if off != len(data) {
					t.Fatalf("EOF at %d of %d", off, len(data))
				}
				return
			}
			if err != nil {
				if !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			rec := encodeRecord(seq, p)
			if !bytes.Equal(rec, data[off:off+len(rec)]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
			}
			off += len(rec)
		}
	})
}

// FuzzOpenQueue: a segment file of any content opens without error or
// panic, and what it yields can be read back.
func FuzzOpenQueue(f *testing.F) {
	good := append([]byte(segmentMagic), encodeRecord(0, []byte("a"))...)
	good = append(good, encodeRecord(1, []byte("bc"))...)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte(segmentMagic))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		must(os.WriteFile(filepath.Join(dir, segmentName(0)), data, 0o600))
		q, _, err := openQueue(dir, "fuzz", 1<<20, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := q.pending()
		var got int64
		for {
			b, corrupt, err := q.read(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			if corrupt > 0 {
				t.Fatalf("a record that passed the scan is corrupt on read")
			}
			if b == nil {
				break
			}
			got += int64(b.n)
			q.ack(b)
		}
		if got != n {
			t.Fatalf("read %d records of %d pending", got, n)
		}
		// Not q.close: its fsyncs would make the fuzzer crawl.
		if q.active != nil {
			q.active.Close()
		}
		q.ackFile.Close()
	})
}

// TestQueueSegmentVanished: a segment deleted behind the queue's back
// counts as corrupt; the segments after it are still read.
func TestQueueSegmentVanished(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir, 64<<10) // 4 KiB segments
	p := bytes.Repeat([]byte{7}, 1000)
	for range 8 {
		appendPayload(t, q, p)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	must(os.Remove(segs[0]))
	var got, corrupt uint64
	for {
		b, c, err := q.read(1 << 20)
		must(err)
		corrupt += c
		if b == nil {
			break
		}
		got += b.n
		q.ack(b)
	}
	if corrupt == 0 || got+corrupt != 8 {
		t.Errorf("read %d, dropped %d, want some dropped and 8 in all", got, corrupt)
	}
	must(q.close())
}

// TestQueueWriteFailure: a failed append returns an error and leaves the
// queue usable; nothing half-written is read back.
func TestQueueWriteFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir, 1<<20)
	appendPayload(t, q, []byte("a"))
	q.active.Close() // the next write fails, and so does the truncate
	rec := make([]byte, recordHeader+1)
	rec[recordHeader] = 'x'
	if _, err := q.append(rec, payloadCRC([]byte("x"))); err == nil {
		t.Fatal("append on a closed file succeeded")
	}
	appendPayload(t, q, []byte("b"))
	if got := bytes.Join(drain(t, q, 100), nil); string(got) != "ab" {
		t.Errorf("read %q, want \"ab\"", got)
	}
	must(q.close())
	q = openTestQueue(t, dir, 1<<20)
	if n, _ := q.pending(); n != 0 {
		t.Errorf("%d pending after reopening a drained queue", n)
	}
	must(q.close())
}
