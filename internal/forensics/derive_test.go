package forensics

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"noops/internal/forensics/pcap"
)

// This file derives captures from a recorded one, frame by frame: the
// server's packets only, segments reordered and duplicated, a segment
// dropped, the file cut short.

// frame is one recorded frame.
type frame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// capture is a recorded capture's frames.
type capture struct {
	link   layers.LinkType
	frames []frame
}

// readCapture reads a pcap (as tcpdump writes) or pcapng file with
// gopacket, independently of the reader under test.
func readCapture(t testing.TB, file string) capture {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c capture
	type source interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var src source
	if bytes.HasPrefix(raw, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		src, c.link = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		src, c.link = r, r.LinkType()
	}
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			return c
		}
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		c.frames = append(c.frames, frame{ci: ci, data: bytes.Clone(data)})
	}
}

// write writes the frames as pcapng with the project's writer.
func (c capture) write(t testing.TB, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcap.NewWriter(f, c.link, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fr := range c.frames {
		if err := w.WritePacket(fr.ci, fr.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// segment is the TCP view of a frame.
type segment struct {
	src, dst string // "127.0.0.1:21"
	dstPort  int
	seq      uint32
	syn, ack bool
	fin, rst bool
	payload  int
}

func (c capture) tcp(fr frame) (segment, bool) {
	p := gopacket.NewPacket(fr.data, c.link, gopacket.NoCopy)
	tl, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	nl := p.NetworkLayer()
	if tl == nil || nl == nil {
		return segment{}, false
	}
	src, dst := nl.NetworkFlow().Endpoints()
	return segment{
		src: fmt.Sprintf("%s:%d", src, tl.SrcPort), dst: fmt.Sprintf("%s:%d", dst, tl.DstPort),
		dstPort: int(tl.DstPort), seq: tl.Seq, syn: tl.SYN, ack: tl.ACK, fin: tl.FIN, rst: tl.RST, payload: len(tl.Payload),
	}, true
}

// serverOnly keeps the frames the server sent. A connection's server is
// decided by its SYN: the receiver of a SYN to the control port or to a
// passive port, the sender of a SYN to one of the client's active-mode
// ports (the server opens those, from port 20 or an ephemeral port).
func (c capture) serverOnly(t testing.TB, toServer func(dstPort int) bool) capture {
	t.Helper()
	fromServer := map[string]bool{} // "src>dst" of the server's direction
	for _, fr := range c.frames {
		s, ok := c.tcp(fr)
		if !ok || !s.syn || s.ack {
			continue
		}
		if toServer(s.dstPort) {
			fromServer[s.dst+">"+s.src] = true
		} else {
			fromServer[s.src+">"+s.dst] = true
		}
	}
	out := capture{link: c.link}
	for _, fr := range c.frames {
		if s, ok := c.tcp(fr); ok && fromServer[s.src+">"+s.dst] {
			out.frames = append(out.frames, fr)
		}
	}
	if len(out.frames) == 0 || len(out.frames) == len(c.frames) {
		t.Fatalf("server-only capture keeps %d of %d frames", len(out.frames), len(c.frames))
	}
	return out
}

// reordered shuffles the frames within windows of 8 and duplicates one
// in ten, the copy landing up to 8 frames later.
func (c capture) reordered(seed uint64) capture {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []frame
	for i := 0; i < len(c.frames); i += 8 {
		w := append([]frame(nil), c.frames[i:min(i+8, len(c.frames))]...)
		rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		out = append(out, w...)
	}
	n := len(out)
	for i := 0; i < n; i++ {
		if rng.IntN(10) != 0 {
			continue
		}
		at := min(i+1+rng.IntN(8), len(out))
		out = append(out[:at], append([]frame{out[i]}, out[at:]...)...)
	}
	return capture{link: c.link, frames: out}
}

// endsFirst moves every FIN and RST before the last data segment of its
// connection sent before it, whichever direction that went: a
// connection's end captured before some of its data.
func (c capture) endsFirst() capture {
	out := slices.Clone(c.frames)
	connOf := func(s segment) string {
		if s.src < s.dst {
			return s.src + " " + s.dst
		}
		return s.dst + " " + s.src
	}
	lastData := map[string]int{} // connection → index of its last data frame so far
	for i := 0; i < len(out); i++ {
		s, ok := c.tcp(out[i])
		if !ok {
			continue
		}
		k := connOf(s)
		j, seen := lastData[k]
		if (s.fin || s.rst) && seen {
			// Move frame i to j, shifting j..i-1 one later.
			f := out[i]
			copy(out[j+1:i+1], out[j:i])
			out[j] = f
			lastData[k] = j + 1
			continue
		}
		if s.payload > 0 {
			lastData[k] = i
		}
	}
	return capture{link: c.link, frames: out}
}

// without drops frame i.
func (c capture) without(i int) capture {
	out := capture{link: c.link, frames: append([]frame(nil), c.frames[:i]...)}
	out.frames = append(out.frames, c.frames[i+1:]...)
	return out
}

// pcapCut returns the first bytes of a pcap file (as tcpdump writes it)
// up to the middle of frame i (0-based), cutting that frame's record.
func pcapCut(t testing.TB, raw []byte, i int) []byte {
	t.Helper()
	var bo binary.ByteOrder = binary.LittleEndian
	if binary.BigEndian.Uint32(raw) == 0xa1b2c3d4 || binary.BigEndian.Uint32(raw) == 0xa1b23c4d {
		bo = binary.BigEndian
	}
	off := 24
	for k := 0; ; k++ {
		if off+16 > len(raw) {
			t.Fatalf("pcap file has fewer than %d frames", i+1)
		}
		caplen := int(bo.Uint32(raw[off+8:]))
		if k == i {
			return raw[:off+16+caplen/2]
		}
		off += 16 + caplen
	}
}
