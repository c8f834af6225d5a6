package pcap

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// pcapEnds returns the offset after each record of a pcap file.
func pcapEnds(recs []rec) []int {
	ends := []int{}
	off := 24
	for _, r := range recs {
		off += 16 + len(r.data)
		ends = append(ends, off)
	}
	return ends
}

// TestTruncatedEveryOffset cuts a small capture at every byte and checks
// that the packets before the cut come out intact, the cut one at most
// as a truncated prefix, and a warning says the file was cut.
func TestTruncatedEveryOffset(t *testing.T) {
	t.Parallel()
	s := newSample(t)
	var ng ngBuilder
	ng.section(binary.LittleEndian, 1)
	ng.iface(1, 0, 9, 0)
	for _, f := range s.frames {
		ng.epb(0, uint64(f.t.UnixNano()), f.data, 0)
	}
	files := []struct {
		name   string
		file   []byte
		header int   // shortest prefix Open accepts
		ends   []int // offset after each frame's record
	}{
		{"pcap", pcapBytes(binary.LittleEndian, true, 65535, 1, s.frames), 24, pcapEnds(s.frames)},
		{"pcapng", ng.buf.Bytes(), 28, ng.ends[2:]},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			full, _ := readAll(t, f.file)
			boundary := map[int]bool{f.header: true}
			if f.name == "pcapng" {
				boundary = map[int]bool{ng.ends[0]: true, ng.ends[1]: true}
			}
			for _, e := range f.ends {
				boundary[e] = true
			}
			for cut := 0; cut <= len(f.file); cut++ {
				r, err := Open(bytes.NewReader(f.file[:cut]))
				if err != nil {
					if cut >= f.header {
						t.Fatalf("cut at %d: Open: %v", cut, err)
					}
					continue
				}
				pkts := drain(t, r, cut)
				complete := 0 // packets whose frame ends before the cut
				for _, p := range full {
					if f.ends[p.Frame-1] <= cut {
						complete++
					}
				}
				if len(pkts) < complete || len(pkts) > complete+1 {
					t.Fatalf("cut at %d: %d packets, want %d or %d", cut, len(pkts), complete, complete+1)
				}
				for i, p := range pkts {
					w := full[i]
					if p == w {
						continue
					}
					if i < complete || p.Frame != w.Frame || !p.Truncated || !strings.HasPrefix(w.Payload, p.Payload) {
						t.Fatalf("cut at %d: packet %d = %v, want %v or a truncated prefix of it", cut, i, p, w)
					}
				}
				warned := strings.Contains(warningsText(r), "capture truncated")
				if warned == boundary[cut] {
					t.Fatalf("cut at %d (record boundary %v): warnings %q", cut, boundary[cut], warningsText(r))
				}
				if r.Progress() != int64(cut) {
					t.Fatalf("cut at %d: Progress = %d", cut, r.Progress())
				}
			}
		})
	}
}

func TestCorruptPcapRecord(t *testing.T) {
	t.Parallel()
	var recs []rec
	for i := range 8 {
		recs = append(recs, rec{t: base.Add(time.Duration(i) * time.Second), data: tcpFrame(t, 1000, 80, uint32(i*100), fmt.Sprintf("segment %d", i))})
	}
	file := pcapBytes(binary.LittleEndian, false, 65535, 1, recs)
	ends := pcapEnds(recs)
	at := ends[1] // frame 3's header
	corrupt := bytes.Clone(file)
	binary.LittleEndian.PutUint32(corrupt[at+8:], 0x7fffffff)
	pkts, r := readAll(t, corrupt)
	var payloads []string
	for _, p := range pkts {
		payloads = append(payloads, p.Payload)
	}
	want := "segment 0,segment 1,segment 3,segment 4,segment 5,segment 6,segment 7"
	if got := strings.Join(payloads, ","); got != want {
		t.Errorf("payloads %q, want %q", got, want)
	}
	wantWarn := fmt.Sprintf("corrupt record header at offset %d (a 2147483647-byte frame, more than the 262144 a record holds): skipped %d bytes", at, ends[2]-at)
	if !strings.Contains(warningsText(r), wantWarn) {
		t.Errorf("warnings %q lack %q", warningsText(r), wantWarn)
	}

	// Damage with nothing plausible after it loses the rest, and says so.
	tail := bytes.Clone(file[:ends[5]])
	binary.LittleEndian.PutUint32(tail[ends[4]+8:], 0x7fffffff)
	pkts, r = readAll(t, tail)
	t.Logf("warnings:\n%s", warningsText(r))
	if len(pkts) != 5 || !strings.Contains(warningsText(r), "no plausible record in the") {
		t.Errorf("packets %v, warnings %q; want 5 and the rest lost", pkts, warningsText(r))
	}
}

func TestCorruptPcapngBlocks(t *testing.T) {
	t.Parallel()
	build := func(damage func(b *ngBuilder, i int)) (*ngBuilder, []byte) {
		var b ngBuilder
		b.section(binary.LittleEndian, 1)
		b.iface(1, 0, 0, 0)
		for i := range 6 {
			b.epb(0, uint64(i), tcpFrame(t, 1000, 80, uint32(i), fmt.Sprintf("segment %d", i)), 0)
			if damage != nil {
				damage(&b, i)
			}
		}
		return &b, b.buf.Bytes()
	}
	_, clean := build(nil)
	blockAt := func(i int) int { // offset of packet block i
		var b ngBuilder
		b.section(binary.LittleEndian, 1)
		b.iface(1, 0, 0, 0)
		for range i {
			b.epb(0, 0, tcpFrame(t, 1000, 80, 0, "segment 0"), 0)
		}
		return b.buf.Len()
	}
	set32 := func(file []byte, off int, v uint32) []byte {
		out := bytes.Clone(file)
		binary.LittleEndian.PutUint32(out[off:], v)
		return out
	}
	blockLen := int(binary.LittleEndian.Uint32(clean[blockAt(2)+4:]))
	tests := []struct {
		name     string
		file     []byte
		want     string // payload numbers read
		warning  string
		frameNum int // the frame number of "segment 5"
	}{
		{"impossible length", set32(clean, blockAt(2)+4, 7), "0,1,3,4,5", fmt.Sprintf("corrupt pcapng block at offset %d (a block of type 0x00000006 with an impossible length of 7 bytes): skipped %d bytes", blockAt(2), blockLen), 5},
		{"huge length", set32(clean, blockAt(2)+4, 0xfffffff0), "0,1,3,4,5", "impossible length of 4294967280 bytes", 5},
		{"trailing length differs", set32(clean, blockAt(3)-4, 99), "0,1,3,4,5", "trailing length 99 differs from its leading length", 5},
		{"longer leading length", set32(clean, blockAt(2)+4, uint32(blockLen+8)), "0,1,3,4,5", "trailing length", 5},
		{"garbage between blocks", func() []byte {
			_, f := build(func(b *ngBuilder, i int) {
				if i == 2 {
					b.buf.WriteString("\x06\x00\x00\x00garbage that is not a block at all!!")
				}
			})
			return f
		}(), "0,1,2,3,4,5", "corrupt pcapng block", 6},
		{"unknown block", func() []byte {
			_, f := build(func(b *ngBuilder, i int) {
				if i == 1 {
					b.block(0x77, []byte("custom"))
				}
			})
			return f
		}(), "0,1,2,3,4,5", "1 pcapng blocks of unknown type 0x00000077 skipped", 6},
		{"packet claims more than its block", set32(clean, blockAt(1)+20, 5000), "0,2,3,4,5", "frame 2: the packet block claims 5000 captured bytes but holds", 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pkts, r := readAll(t, tc.file)
			var nums []string
			last := 0
			for _, p := range pkts {
				nums = append(nums, strings.TrimPrefix(p.Payload, "segment "))
				last = p.Frame
			}
			if got := strings.Join(nums, ","); got != tc.want || last != tc.frameNum {
				t.Errorf("segments %q (last frame %d), want %q (last frame %d)", got, last, tc.want, tc.frameNum)
			}
			t.Logf("warnings:\n%s", warningsText(r))
			if !strings.Contains(warningsText(r), tc.warning) {
				t.Errorf("warnings %q lack %q", warningsText(r), tc.warning)
			}
		})
	}
}

func TestPcapngSections(t *testing.T) {
	t.Parallel()
	seg := tcpBytes(t, 7, 8, 9, "x")
	v4 := ipv4Raw("192.0.2.1", "192.0.2.2", 6, 1, 0, false, seg)
	var b ngBuilder
	b.section(binary.LittleEndian, 1)
	b.iface(1, 0, 0, 0) // Ethernet
	b.epb(0, 1e6, cat(etherHdr(0x0800), v4), 0)
	b.section(binary.BigEndian, 2) // a version nobody knows: skipped
	b.iface(1, 0, 0, 0)
	b.epb(0, 2e6, cat(etherHdr(0x0800), v4), 0)
	b.section(binary.BigEndian, 1)
	b.iface(101, 0, 3, 0) // raw IP, milliseconds; interface 0 again
	b.epb(0, 3e3, v4, 0)
	pkts, r := readAll(t, b.buf.Bytes())
	if len(pkts) != 2 {
		t.Fatalf("packets %v, want 2", pkts)
	}
	if pkts[0].Time.Unix() != 1 || pkts[1].Time.Unix() != 3 || pkts[1].Frame != 2 {
		t.Errorf("packets %v, want frames at 1 s and 3 s, the second numbered 2", pkts)
	}
	if w := warningsText(r); !strings.Contains(w, "pcapng section 2 has version 2.0, which this reader does not know: its blocks are skipped") {
		t.Errorf("warnings %q", w)
	}
}

func TestWarningsBounded(t *testing.T) {
	t.Parallel()
	var b ngBuilder
	b.section(binary.LittleEndian, 1)
	b.iface(1, 0, 0, 0)
	for range 300 {
		body := make([]byte, 20)
		binary.LittleEndian.PutUint32(body[12:], 1000) // more than the block holds
		b.block(blockEPB, body)
	}
	_, r := readAll(t, b.buf.Bytes())
	w := r.Warnings()
	if len(w) != maxWarnings+1 || w[maxWarnings].Message != "200 more warnings not shown" {
		t.Errorf("%d warnings, last %v; want %d and a count of 200 more", len(w), w[len(w)-1], maxWarnings+1)
	}
}

// TestHostileLengths checks that lengths from the file cost memory only
// in proportion to the bytes actually there.
func TestHostileLengths(t *testing.T) {
	// Not parallel: it measures allocation.
	h := pcapBytes(binary.LittleEndian, false, 0xffffffff, 1, nil)
	rh := make([]byte, 16)
	binary.LittleEndian.PutUint32(rh[8:], 60<<20) // a 60 MiB record in a 100-byte file
	binary.LittleEndian.PutUint32(rh[12:], 60<<20)
	file := cat(h, rh, make([]byte, 60))
	var ng ngBuilder
	ng.section(binary.LittleEndian, 1)
	ngFile := cat(ng.buf.Bytes(), []byte{6, 0, 0, 0, 0, 0, 0, 3}, make([]byte, 60)) // a 48 MiB block
	for _, f := range [][]byte{file, ngFile} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, r := readAll(t, f)
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 4<<20 {
			t.Errorf("reading a %d-byte file allocated %d bytes", len(f), grown)
		}
		if !strings.Contains(warningsText(r), "capture truncated") {
			t.Errorf("warnings %q, want a truncation", warningsText(r))
		}
	}
}

func TestDamagedGzip(t *testing.T) {
	t.Parallel()
	var recs []rec
	for i := range 200 {
		recs = append(recs, rec{t: base, data: tcpFrame(t, 1, 2, uint32(i), strings.Repeat(fmt.Sprint(i%10), 1000))})
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(pcapBytes(binary.LittleEndian, false, 65535, 1, recs))
	zw.Close()
	cut := zb.Bytes()[:zb.Len()/2]
	pkts, r := readAll(t, cut)
	if len(pkts) == 0 || len(pkts) >= len(recs) || !strings.Contains(warningsText(r), "the gzip stream is damaged after") {
		t.Errorf("%d packets of %d, warnings %q; want some, and the damage reported", len(pkts), len(recs), warningsText(r))
	}
	for i, p := range pkts[:len(pkts)-1] {
		if p.Seq != uint32(i) || p.Truncated {
			t.Fatalf("packet %d = %v", i, p)
		}
	}
}

func TestReadError(t *testing.T) {
	t.Parallel()
	s := newSample(t)
	file := pcapBytes(binary.LittleEndian, false, 65535, 1, s.frames)
	boom := errors.New("disk on fire")
	r, err := Open(io.MultiReader(bytes.NewReader(file[:pcapEnds(s.frames)[1]]), iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		_, err = r.Next()
		if err != nil {
			break
		}
		n++
	}
	if n != 2 || !errors.Is(err, boom) {
		t.Errorf("read %d packets then %v; want 2 then %v", n, err, boom)
	}
}
