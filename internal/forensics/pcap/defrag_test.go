package pcap

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// frag is one IPv4 fragment of a transport segment.
type frag struct {
	off, end int
	more     bool
}

// fragments4 cuts seg into IPv4 fragments (link type 228), in the order
// given, with datagram identification id.
func fragments4(seg []byte, id uint16, parts []frag) [][]byte {
	var out [][]byte
	for _, p := range parts {
		out = append(out, ipv4Raw("192.0.2.1", "192.0.2.2", 17, id, p.off, p.more, seg[p.off:p.end]))
	}
	return out
}

func recsAt(frames [][]byte) []rec {
	var out []rec
	for i, f := range frames {
		out = append(out, rec{t: base.Add(time.Duration(i) * time.Millisecond), data: f})
	}
	return out
}

func TestIPv4Fragments(t *testing.T) {
	t.Parallel()
	payload := strings.Repeat("abcdefgh", 375) // 3000 bytes
	seg := udpBytes(t, 3000, 69, payload)      // 3008 with the UDP header
	n := len(seg)
	other := ipv4Raw("192.0.2.9", "192.0.2.2", 17, 1, 0, false, udpBytes(t, 1, 2, "unfragmented"))
	tests := []struct {
		name      string
		frames    [][]byte
		want      []string // payloads, in order
		wantFrame int      // the reassembled packet's frame, if any
		warning   string
		skipped   map[string]int
	}{
		{
			name:      "in order",
			frames:    fragments4(seg, 5, []frag{{0, 1480, true}, {1480, 2960, true}, {2960, n, false}}),
			want:      []string{payload},
			wantFrame: 3,
			skipped:   map[string]int{SkipFragmentUsed: 2},
		},
		{
			name:      "out of order, interleaved",
			frames:    append(fragments4(seg, 5, []frag{{2960, n, false}, {0, 1480, true}}), append([][]byte{other}, fragments4(seg, 5, []frag{{1480, 2960, true}})...)...),
			want:      []string{"unfragmented", payload},
			wantFrame: 4,
			skipped:   map[string]int{SkipFragmentUsed: 2},
		},
		{
			name:      "duplicate fragment",
			frames:    fragments4(seg, 5, []frag{{0, 1480, true}, {0, 1480, true}, {1480, n, false}}),
			want:      []string{payload},
			wantFrame: 3,
			skipped:   map[string]int{SkipFragmentUsed: 2},
		},
		{
			name: "overlap with different bytes: first kept",
			frames: func() [][]byte {
				f := fragments4(seg, 5, []frag{{0, 1480, true}, {1472, n, false}})
				f[1][20] ^= 0xff // byte 1472 disagrees with the first fragment's
				return f
			}(),
			want:      []string{payload},
			wantFrame: 2,
			warning:   "overlap with different bytes: the bytes received first were kept",
			skipped:   map[string]int{SkipFragmentUsed: 1},
		},
		{
			name:    "missing middle",
			frames:  fragments4(seg, 5, []frag{{0, 1480, true}, {2960, n, false}}),
			warning: "frame 1: IP datagram 192.0.2.1 → 192.0.2.2 (id 5): fragments in frames 1–2 held 1528 of 3008 bytes, still incomplete at the end of the capture: dropped",
			skipped: map[string]int{SkipFragmentLost: 2},
		},
		{
			name: "fragment cut by the snap length",
			frames: func() [][]byte {
				f := fragments4(seg, 5, []frag{{0, 1480, true}, {1480, n, false}})
				f[0] = f[0][:100]
				return f
			}(),
			warning: "frame 1: IP datagram 192.0.2.1 → 192.0.2.2 (id 5) cannot be rebuilt: the fragment in this frame was cut by the snap length; its 1 fragments are dropped",
			skipped: map[string]int{SkipFragmentLost: 2},
		},
		{
			name:    "past 65535 bytes",
			frames:  [][]byte{ipv4Raw("192.0.2.1", "192.0.2.2", 17, 5, 65528, false, make([]byte, 16))},
			warning: "past the largest datagram",
			skipped: map[string]int{SkipFragmentLost: 1},
		},
		{
			name:    "two different ends",
			frames:  fragments4(seg, 5, []frag{{1480, n, false}, {1480, 2960, false}}),
			warning: "two last fragments end at bytes 3008 and 2960",
			skipped: map[string]int{SkipFragmentLost: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			frames := tc.frames
			var file []byte
			file = pcapBytes(binary.LittleEndian, false, 1500, 228, recsAt(frames))
			if tc.name == "fragment cut by the snap length" {
				recs := recsAt(frames)
				recs[0].wire = 1500
				file = pcapBytes(binary.LittleEndian, false, 100, 228, recs)
			}
			pkts, r := readAll(t, file)
			var payloads []string
			for _, p := range pkts {
				payloads = append(payloads, p.Payload)
				if p.Payload == payload && p.Frame != tc.wantFrame {
					t.Errorf("reassembled in frame %d, want %d", p.Frame, tc.wantFrame)
				}
			}
			if strings.Join(payloads, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %d packets %.60q, want %.60q", len(pkts), payloads, tc.want)
			}
			if tc.warning != "" && !strings.Contains(warningsText(r), tc.warning) {
				t.Errorf("warnings %q lack %q", warningsText(r), tc.warning)
			}
			st := r.Stats()
			for k, v := range tc.skipped {
				if st.Skipped[k] != v {
					t.Errorf("Stats.Skipped = %v, want %q: %d", st.Skipped, k, v)
				}
			}
		})
	}
}

func TestIPv6Fragments(t *testing.T) {
	t.Parallel()
	payload := strings.Repeat("0123456789abcdef", 200) // 3200 bytes
	seg := tcpBytes(t, 40000, 21, 12345, payload)
	// The fragmentable part starts with a destination options header.
	part := cat(extHeader(6), seg)
	fragHdr := func(off int, more bool) []byte {
		h := []byte{60, 0, 0, 0, 0, 0, 0x12, 0x34}
		fo := uint16(off/8) << 3
		if more {
			fo |= 1
		}
		binary.BigEndian.PutUint16(h[2:], fo)
		return h
	}
	mk := func(off, end int, more bool) []byte {
		return ipv6Raw("2001:db8::1", "2001:db8::2", 0, cat(extHeader(44), fragHdr(off, more), part[off:end]))
	}
	frames := [][]byte{mk(1448, len(part), false), mk(0, 1448, true)}
	pkts, r := readAll(t, pcapBytes(binary.LittleEndian, false, 65535, 229, recsAt(frames)))
	if len(pkts) != 1 || pkts[0].Payload != payload || pkts[0].Seq != 12345 || pkts[0].Src != "[2001:db8::1]:40000" || pkts[0].Frame != 2 {
		t.Fatalf("packets %.200v, want one with the %d-byte payload in frame 2", pkts, len(payload))
	}
	if st := r.Stats(); st.Reassembled != 1 || st.Skipped[SkipFragmentUsed] != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestFragmentBudget checks that many incomplete datagrams are dropped
// as the budget requires, each reported, and memory stays bounded.
func TestFragmentBudget(t *testing.T) {
	t.Parallel()
	var frames [][]byte
	chunk := bytes.Repeat([]byte{1}, 1480)
	for id := range maxPendingDatagrams + 10 {
		frames = append(frames, ipv4Raw("192.0.2.1", "192.0.2.2", 17, uint16(id), 0, true, chunk))
	}
	pkts, r := readAll(t, pcapBytes(binary.LittleEndian, false, 65535, 228, recsAt(frames)))
	st := r.Stats()
	if len(pkts) != 0 || st.Skipped[SkipFragmentLost] != len(frames) {
		t.Errorf("packets %d, Stats.Skipped %v; want none, %d lost", len(pkts), st.Skipped, len(frames))
	}
	if w := warningsText(r); !strings.Contains(w, "dropped to stay within the reassembly budget") || !strings.Contains(w, "more warnings not shown") {
		t.Errorf("warnings %.300q", w)
	}
}

// TestFragmentTimeout checks that a datagram left incomplete for longer
// than the timeout is not completed by a later fragment with the same id.
func TestFragmentTimeout(t *testing.T) {
	t.Parallel()
	seg := udpBytes(t, 1, 2, strings.Repeat("z", 2000))
	parts := fragments4(seg, 9, []frag{{0, 1480, true}, {1480, len(seg), false}})
	recs := []rec{{t: base, data: parts[0]}}
	for i := range sweepEvery {
		recs = append(recs, rec{t: base.Add(time.Minute + time.Duration(i)), data: ipv4Raw("192.0.2.7", "192.0.2.8", 17, 1, 0, false, udpBytes(t, 5, 6, "x"))})
	}
	recs = append(recs, rec{t: base.Add(2 * time.Minute), data: parts[1]})
	pkts, r := readAll(t, pcapBytes(binary.LittleEndian, false, 65535, 228, recs))
	if len(pkts) != sweepEvery {
		t.Errorf("%d packets, want %d (the stale datagram not completed)", len(pkts), sweepEvery)
	}
	if w := warningsText(r); !strings.Contains(w, "not completed in time") {
		t.Errorf("warnings %q", w)
	}
}
