package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchCapture builds a pcap of about size bytes: TCP segments of
// segSize bytes and, every tenth frame, a small UDP datagram.
func benchCapture(b *testing.B, size, segSize int) ([]byte, int) {
	var recs []rec
	payload := bytes.Repeat([]byte("0123456789abcdef"), segSize/16+1)[:segSize]
	full := tcpFrame(b, 40000, 80, 1, string(payload))
	small := serialize(b, ether(0x0800, udpDgram(ipv4("10.0.0.1", "10.0.0.2", 17), 5353, 53, "query")...)...)
	n := 0
	for i := 0; n < size; i++ {
		f := full
		if i%10 == 9 {
			f = small
		}
		recs = append(recs, rec{t: base.Add(time.Duration(i) * time.Microsecond), data: f})
		n += 16 + len(f)
	}
	return pcapBytes(binary.LittleEndian, false, 65535, 1, recs), len(recs)
}

// BenchmarkRead reports read throughput (MB/s) on a ~100 MB capture of
// full-sized segments, from memory and from a file (in the page cache),
// and on one of small segments (64 bytes of payload) for the cost per
// packet.
func BenchmarkRead(b *testing.B) {
	file, frames := benchCapture(b, 100<<20, 1448)
	small, smallFrames := benchCapture(b, 100<<20, 64)
	path := filepath.Join(b.TempDir(), "bench.pcap")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B, in io.Reader, frames int) {
		r, err := Open(in)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != frames {
			b.Fatalf("read %d packets, want %d", n, frames)
		}
	}
	b.Run("memory", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		b.ReportAllocs()
		for b.Loop() {
			read(b, bytes.NewReader(file), frames)
		}
	})
	b.Run("small packets", func(b *testing.B) {
		b.SetBytes(int64(len(small)))
		b.ReportAllocs()
		for b.Loop() {
			read(b, bytes.NewReader(small), smallFrames)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*smallFrames), "ns/packet")
	})
	b.Run("file", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			read(b, f, frames)
			f.Close()
		}
	})
}
