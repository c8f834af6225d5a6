package pcap

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// sample is a small exchange: frames and the packets they should give.
type sample struct {
	frames []rec
	want   []got // in order; frames that are skipped have none
}

// newSample builds an exchange of TCP, UDP and ARP frames at times that
// every resolution used below represents exactly (multiples of 1/512 s).
func newSample(t testing.TB) sample {
	var s sample
	at := func(i int) time.Time { return base.Add(time.Duration(i) * 1953125) }
	add := func(data []byte, w *got) {
		i := len(s.frames)
		s.frames = append(s.frames, rec{t: at(i), data: data})
		if w != nil {
			w.Frame, w.Time = i+1, at(i)
			if w.WireLen == 0 {
				w.WireLen = len(w.Payload)
			}
			s.want = append(s.want, *w)
		}
	}
	synIP := ipv4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP)
	synTCP := &layers.TCP{SrcPort: 40000, DstPort: 21, Seq: 99, SYN: true, Window: 512}
	_ = synTCP.SetNetworkLayerForChecksum(synIP)
	add(serialize(t, ether(layers.EthernetTypeIPv4, synIP, synTCP)...), &got{Src: "10.0.0.1:40000", Dst: "10.0.0.2:21", Proto: 6, Seq: 99, Flags: "S"})
	add(serialize(t, ether(layers.EthernetTypeIPv4, tcpSeg(ipv4("10.0.0.2", "10.0.0.1", layers.IPProtocolTCP), 21, 40000, 5000, "220 hello\r\n")...)...),
		&got{Src: "10.0.0.2:21", Dst: "10.0.0.1:40000", Proto: 6, Seq: 5000, Flags: "AP", Payload: "220 hello\r\n"})
	add(serialize(t, ether(layers.EthernetTypeIPv4, udpDgram(ipv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), 5000, 69, "\x00\x01file\x00octet\x00")...)...),
		&got{Src: "10.0.0.1:5000", Dst: "10.0.0.2:69", Proto: 17, Payload: "\x00\x01file\x00octet\x00"})
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
		SourceHwAddress: macA, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}}
	add(serialize(t, ether(layers.EthernetTypeARP, arp)...), nil)
	add(serialize(t, ether(layers.EthernetTypeIPv6, tcpSeg(ipv6("fd00::1", "fd00::2", layers.IPProtocolTCP), 40001, 8080, 1, "bye")...)...),
		&got{Src: "[fd00::1]:40001", Dst: "[fd00::2]:8080", Proto: 6, Seq: 1, Flags: "AP", Payload: "bye"})
	return s
}

// withTimes returns want with times cut to a resolution.
func withTimes(want []got, f func(time.Time) time.Time) []got {
	out := slices.Clone(want)
	for i := range out {
		out[i].Time = f(out[i].Time)
	}
	return out
}

func TestReadFormats(t *testing.T) {
	t.Parallel()
	s := newSample(t)
	pcapgoFile := func(nano bool) []byte {
		var b bytes.Buffer
		w := pcapgo.NewWriter(&b)
		if nano {
			w = pcapgo.NewWriterNanos(&b)
		}
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for _, f := range s.frames {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: f.t, CaptureLength: len(f.data), Length: len(f.data)}, f.data); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	ownWriter := func() []byte {
		var b bytes.Buffer
		w, err := NewWriter(&b, layers.LinkTypeEthernet, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range s.frames {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: f.t, Length: len(f.data)}, f.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	// Two interfaces: Ethernet frames on one, the same frames as raw IP
	// (the Ethernet header cut off) on the other.
	pcapgoTwoIfaces := func() []byte {
		var b bytes.Buffer
		w, err := pcapgo.NewNgWriter(&b, layers.LinkTypeEthernet)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := w.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkTypeRaw, TimestampResolution: 9})
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range s.frames {
			data, ci := f.data, gopacket.CaptureInfo{Timestamp: f.t}
			if i%2 == 1 {
				data, ci.InterfaceIndex = data[14:], raw
				if i == 3 { // the ARP frame: raw IP cannot carry it
					data = data[:0]
				}
			}
			ci.CaptureLength, ci.Length = len(data), len(data)
			if err := w.WritePacket(ci, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	// Big-endian pcapng, two interfaces with nanosecond and 2^-20 s
	// resolutions, the second with a 10 s offset; OPB for frame 2.
	handNg := func() []byte {
		var b ngBuilder
		b.section(binary.BigEndian, 1)
		b.iface(1, 0, 9, 0)
		b.iface(1, 0, 0x80|20, 10)
		for i, f := range s.frames {
			switch i {
			case 1:
				b.opb(0, uint64(f.t.UnixNano()), f.data)
			case 2, 4:
				units := uint64(f.t.Add(-10*time.Second).UnixNano()) / 1953125 * 2048
				b.epb(1, units, f.data, 0)
			default:
				b.epb(0, uint64(f.t.UnixNano()), f.data, 0)
			}
		}
		return b.buf.Bytes()
	}
	simpleNg := func() []byte {
		var b ngBuilder
		b.section(binary.LittleEndian, 1)
		b.iface(1, 0, 0, 0)
		for _, f := range s.frames {
			b.spb(f.data, 0)
		}
		return b.buf.Bytes()
	}
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	micro := func(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
	same := func(t time.Time) time.Time { return t }
	noTime := func(time.Time) time.Time { return time.Time{} }

	tests := []struct {
		name   string
		file   []byte
		format string
		times  func(time.Time) time.Time
	}{
		{"pcapgo microseconds", pcapgoFile(false), "pcap", micro},
		{"pcapgo nanoseconds", pcapgoFile(true), "pcap (nanosecond)", same},
		{"big-endian microseconds", pcapBytes(binary.BigEndian, false, 65535, 1, s.frames), "pcap", micro},
		{"big-endian nanoseconds", pcapBytes(binary.BigEndian, true, 65535, 1, s.frames), "pcap (nanosecond)", same},
		{"modified pcap", modifiedPcap(s.frames), "pcap (modified)", micro},
		{"own pcapng writer", ownWriter(), "pcapng", same},
		{"pcapgo pcapng two interfaces", pcapgoTwoIfaces(), "pcapng", same},
		{"big-endian pcapng resolutions", handNg(), "pcapng", same},
		{"pcapng simple packets", simpleNg(), "pcapng", noTime},
		{"gzip pcap", gz(pcapgoFile(false)), "pcap (gzip)", micro},
		{"gzip pcapng", gz(ownWriter()), "pcapng (gzip)", same},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pkts, r := readAll(t, tc.file)
			want := withTimes(s.want, tc.times)
			if !slices.Equal(pkts, want) {
				t.Errorf("packets:\n%v\nwant:\n%v", pkts, want)
			}
			st := r.Stats()
			if st.Format != tc.format || st.Frames != len(s.frames) || st.Decoded != len(s.want) {
				t.Errorf("Stats = %+v, want format %q, %d frames, %d decoded", st, tc.format, len(s.frames), len(s.want))
			}
			if w := r.Warnings(); len(w) != 0 {
				t.Errorf("Warnings = %v, want none", w)
			}
			if got := r.Progress(); got != int64(len(tc.file)) {
				t.Errorf("Progress = %d, want %d", got, len(tc.file))
			}
		})
	}
}

// modifiedPcap writes the "modified" pcap format: 24-byte record headers.
func modifiedPcap(recs []rec) []byte {
	plain := pcapBytes(binary.LittleEndian, false, 65535, 1, recs)
	var b bytes.Buffer
	b.Write(plain[:24])
	binary.LittleEndian.PutUint32(b.Bytes()[0:], magicPcapModified)
	off := 24
	for _, r := range recs {
		b.Write(plain[off : off+16])
		b.Write([]byte{1, 0, 0, 0, 0x08, 0, 0, 0}) // ifindex, protocol, pkt_type, pad
		b.Write(r.data)
		off += 16 + len(r.data)
	}
	return b.Bytes()
}

// TestShortReads reads through readers that return a few bytes at a time
// or data together with io.EOF.
func TestShortReads(t *testing.T) {
	t.Parallel()
	s := newSample(t)
	var ng ngBuilder
	ng.section(binary.LittleEndian, 1)
	ng.iface(1, 0, 9, 0)
	for _, f := range s.frames {
		ng.epb(0, uint64(f.t.UnixNano()), f.data, 0)
	}
	files := map[string][]byte{
		"pcap":   pcapBytes(binary.LittleEndian, true, 65535, 1, s.frames),
		"pcapng": ng.buf.Bytes(),
	}
	readers := map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for fname, file := range files {
		for rname, wrap := range readers {
			t.Run(fname+" "+rname, func(t *testing.T) {
				t.Parallel()
				r, err := Open(wrap(bytes.NewReader(file)))
				if err != nil {
					t.Fatal(err)
				}
				if pkts := drain(t, r, len(file)); !slices.Equal(pkts, s.want) {
					t.Errorf("packets:\n%v\nwant:\n%v", pkts, s.want)
				}
			})
		}
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{"empty", "", "empty"},
		{"short", "\xd4\xc3", "only 2 bytes"},
		{"html", "<!DOCTYPE html><html>", `not a pcap or pcapng file: it starts with "<!DOCTYPE html><"`},
		{"binary", "\x00\x01\x02\x03\x04", "it starts with 0001020304"},
		{"pcap header cut", "\xd4\xc3\xb2\xa1\x02\x00\x04\x00", "pcap file header is truncated (8 of 24 bytes)"},
		{"pcapng byte order", "\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x01\x02\x03\x04" + strings.Repeat("\x00", 16), "byte-order magic"},
		{"gzip garbage", "\x1f\x8b\x00\x00", "gzip header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Open(strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q) error = %v, want one containing %q", tc.file, err, tc.want)
			}
		})
	}
}

func TestWriterSnaplenReadByPcapgo(t *testing.T) {
	t.Parallel()
	frame := tcpFrame(t, 1, 2, 3, strings.Repeat("x", 500))
	var b bytes.Buffer
	w, err := NewWriter(&b, layers.LinkTypeEthernet, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: base}, frame); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteStats(base, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// An independent reader: pcapgo's.
	ng, err := pcapgo.NewNgReader(bytes.NewReader(b.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("pcapgo cannot read our pcapng: %v", err)
	}
	data, ci, err := ng.ReadPacketData()
	if err != nil {
		t.Fatalf("pcapgo ReadPacketData: %v", err)
	}
	if !bytes.Equal(data, frame[:100]) || ci.Length != len(frame) || !ci.Timestamp.Equal(base) {
		t.Errorf("pcapgo read %d bytes (len %d) at %v, want the first 100 of %d at %v", len(data), ci.Length, ci.Timestamp, len(frame), base)
	}
	pkts, _ := readAll(t, b.Bytes())
	if len(pkts) != 1 || !pkts[0].Truncated || pkts[0].WireLen != 500 || pkts[0].Payload != strings.Repeat("x", 100-54) {
		t.Errorf("read back %v, want one truncated packet with 46 of 500 bytes", pkts)
	}
}
