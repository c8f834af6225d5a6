package pcap

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// transportBytes serializes a TCP or UDP header and payload alone (no
// checksum: the reader does not check them).
func transportBytes(t testing.TB, l gopacket.SerializableLayer, payload string) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, l, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

func tcpBytes(t testing.TB, sport, dport uint16, seq uint32, payload string) []byte {
	return transportBytes(t, &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, ACK: true, Window: 9}, payload)
}

func udpBytes(t testing.TB, sport, dport uint16, payload string) []byte {
	return transportBytes(t, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload)
}

// ipv4Raw builds an IPv4 header by hand; fragOff in bytes.
func ipv4Raw(src, dst string, proto byte, id uint16, fragOff int, more bool, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], id)
	fo := uint16(fragOff / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], fo)
	h[8], h[9] = 64, proto
	copy(h[12:], net.ParseIP(src).To4())
	copy(h[16:], net.ParseIP(dst).To4())
	return append(h, payload...)
}

// ipv6Raw builds an IPv6 header by hand in front of payload, which may
// start with extension headers.
func ipv6Raw(src, dst string, next byte, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 64
	copy(h[8:], net.ParseIP(src).To16())
	copy(h[24:], net.ParseIP(dst).To16())
	return append(h, payload...)
}

// extHeader is an 8-byte IPv6 extension header (PadN inside) naming next.
func extHeader(next byte) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func etherHdr(et uint16) []byte {
	h := cat(macB, macA, []byte{0, 0})
	binary.BigEndian.PutUint16(h[12:], et)
	return h
}

func TestLinkTypes(t *testing.T) {
	t.Parallel()
	seg := tcpBytes(t, 1234, 80, 77, "GET / HTTP/1.1\r\n")
	v4 := ipv4Raw("192.0.2.1", "192.0.2.2", 6, 1, 0, false, seg)
	v6 := ipv6Raw("2001:db8::1", "2001:db8::2", 6, seg)
	want4 := got{Src: "192.0.2.1:1234", Dst: "192.0.2.2:80", Proto: 6, Seq: 77, Flags: "A", Payload: "GET / HTTP/1.1\r\n", WireLen: 16}
	want6 := want4
	want6.Src, want6.Dst = "[2001:db8::1]:1234", "[2001:db8::2]:80"
	sll := func(proto uint16) []byte {
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(h[4:], 6)
		copy(h[6:], macA)
		binary.BigEndian.PutUint16(h[14:], proto)
		return h
	}
	sll2 := func(proto uint16) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], proto)
		binary.BigEndian.PutUint32(h[4:], 3)
		binary.BigEndian.PutUint16(h[8:], 1)
		h[11] = 6
		copy(h[12:], macA)
		return h
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	vlan := func(tci, next uint16) []byte {
		return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tci), next)
	}
	pppoe := func(proto uint16) []byte {
		return binary.BigEndian.AppendUint16([]byte{0x11, 0, 0, 1, 0, 0}, proto)
	}
	mpls := func(label uint32, bottom bool) []byte {
		v := label<<12 | 64
		if bottom {
			v |= 1 << 8
		}
		return be32(v)
	}
	snap := []byte{0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x00}
	tests := []struct {
		name string
		link uint32
		data []byte
		want got
	}{
		{"ethernet", 1, cat(etherHdr(0x0800), v4), want4},
		{"ethernet ipv6", 1, cat(etherHdr(0x86dd), v6), want6},
		{"802.1Q", 1, cat(etherHdr(0x8100), vlan(5, 0x0800), v4), want4},
		{"QinQ", 1, cat(etherHdr(0x88a8), vlan(100, 0x8100), vlan(5, 0x86dd), v6), want6},
		{"PPPoE", 1, cat(etherHdr(0x8864), pppoe(0x0021), v4), want4},
		{"MPLS two labels", 1, cat(etherHdr(0x8847), mpls(16, false), mpls(17, true), v6), want6},
		{"802.3 SNAP", 1, cat(etherHdr(uint16(len(snap)+len(v4))), snap, v4), want4},
		{"Ethernet padding", 1, cat(etherHdr(0x0800), v4, make([]byte, 20)), want4},
		{"Linux cooked", 113, cat(sll(0x0800), v4), want4},
		{"Linux cooked VLAN", 113, cat(sll(0x8100), vlan(5, 0x86dd), v6), want6},
		{"Linux cooked v2", 276, cat(sll2(0x86dd), v6), want6},
		{"BSD null little-endian", 0, cat(le32(2), v4), want4},
		{"BSD null big-endian", 0, cat(be32(2), v4), want4},
		{"BSD null IPv6 Darwin", 0, cat(le32(30), v6), want6},
		{"BSD null IPv6 FreeBSD", 0, cat(le32(28), v6), want6},
		{"OpenBSD loop", 108, cat(be32(24), v6), want6},
		{"raw 101 v4", 101, v4, want4},
		{"raw 101 v6", 101, v6, want6},
		{"raw 12", 12, v4, want4},
		{"raw 14", 14, v6, want6},
		{"IPv4 228", 228, v4, want4},
		{"IPv6 229", 229, v6, want6},
		{"IPv6 extension headers", 229, ipv6Raw("2001:db8::1", "2001:db8::2", 0,
			cat(extHeader(43), extHeader(60), extHeader(51), extHeader(6), seg)), want6},
		{"IPv6 atomic fragment", 229, ipv6Raw("2001:db8::1", "2001:db8::2", 60,
			cat(extHeader(44), []byte{6, 0, 0, 0, 0, 0, 0, 9}, seg)), want6},
		{"IPv4 options", 228, ipv4WithOptions(v4), want4},
		{"IPv4 total length 0 (offload)", 228, zeroTotal(v4), want4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pkts, r := readAll(t, pcapBytes(binary.LittleEndian, false, 65535, tc.link, []rec{{t: base, data: tc.data}}))
			tc.want.Frame, tc.want.Time = 1, base
			if len(pkts) != 1 || pkts[0] != tc.want {
				t.Errorf("link %d %x:\n got %v\nwant %v\nstats %+v", tc.link, tc.data, pkts, tc.want, r.Stats())
			}
		})
	}
}

// ipv4WithOptions adds 8 bytes of options (NOPs, end) to an IPv4 packet.
func ipv4WithOptions(p []byte) []byte {
	out := cat(p[:20], []byte{1, 1, 1, 1, 1, 1, 1, 0}, p[20:])
	out[0] = 0x47
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	return out
}

func zeroTotal(p []byte) []byte {
	out := bytes.Clone(p)
	out[2], out[3] = 0, 0
	return out
}

func TestSkipReasons(t *testing.T) {
	t.Parallel()
	seg := tcpBytes(t, 1, 2, 3, "x")
	icmp := ipv4Raw("192.0.2.1", "192.0.2.2", 1, 1, 0, false, []byte{8, 0, 0, 0, 0, 0, 0, 0})
	tests := []struct {
		name   string
		link   uint32
		data   []byte
		reason string
	}{
		{"ARP", 1, cat(etherHdr(0x0806), make([]byte, 28)), SkipNotIP},
		{"LLDP", 1, cat(etherHdr(0x88cc), make([]byte, 20)), SkipNotIP},
		{"ICMP", 228, icmp, "ICMP"},
		{"ICMPv6", 229, ipv6Raw("::1", "::1", 58, []byte{128, 0, 0, 0}), "ICMPv6"},
		{"ESP", 229, ipv6Raw("::1", "::1", 50, make([]byte, 16)), "ESP"},
		{"GRE", 228, ipv4Raw("192.0.2.1", "192.0.2.2", 47, 1, 0, false, make([]byte, 8)), "GRE"},
		{"protocol 200", 228, ipv4Raw("192.0.2.1", "192.0.2.2", 200, 1, 0, false, make([]byte, 8)), SkipOtherProtocol},
		{"no next header", 229, ipv6Raw("::1", "::1", 59, nil), SkipOtherProtocol},
		{"runt Ethernet", 1, []byte{1, 2, 3}, SkipMalformed},
		{"IHL below 5", 228, func() []byte { p := ipv4Raw("192.0.2.1", "192.0.2.2", 6, 1, 0, false, seg); p[0] = 0x44; return p }(), SkipMalformed},
		{"TCP offset below 5", 228, func() []byte {
			p := ipv4Raw("192.0.2.1", "192.0.2.2", 6, 1, 0, false, seg)
			p[20+12] = 0x40
			return p
		}(), SkipMalformed},
		{"IPv6 header chain past the end", 229, ipv6Raw("::1", "::1", 0, []byte{6, 200, 0, 0, 0, 0, 0, 0}), SkipMalformed},
		{"raw IP version 5", 101, []byte{0x50, 0, 0, 0}, SkipNotIP},
		{"null family 7", 0, []byte{7, 0, 0, 0, 0x45}, SkipNotIP},
		{"VLAN tag cut", 1, cat(etherHdr(0x8100), []byte{0}), SkipMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pkts, r := readAll(t, pcapBytes(binary.LittleEndian, false, 65535, tc.link, []rec{{t: base, data: tc.data}}))
			if st := r.Stats(); len(pkts) != 0 || st.Skipped[tc.reason] != 1 {
				t.Errorf("packets %v, skipped %v; want none, one %q", pkts, st.Skipped, tc.reason)
			}
		})
	}
}

func TestUnsupportedLinkTypes(t *testing.T) {
	t.Parallel()
	frame := tcpFrame(t, 1, 2, 3, "data")
	t.Run("pcap", func(t *testing.T) {
		t.Parallel()
		recs := []rec{{t: base, data: frame}, {t: base, data: frame}}
		pkts, r := readAll(t, pcapBytes(binary.LittleEndian, false, 65535, 147, recs))
		want := "link type 147 is not supported: its 2 frames are skipped"
		if len(pkts) != 0 || !strings.Contains(warningsText(r), want) || r.Stats().Skipped[SkipLinkType] != 2 {
			t.Errorf("packets %v, warnings %q; want none and %q", pkts, warningsText(r), want)
		}
	})
	t.Run("pcapng interface", func(t *testing.T) {
		t.Parallel()
		var b ngBuilder
		b.section(binary.LittleEndian, 1)
		b.iface(1, 0, 0, 0)
		b.iface(147, 0, 0, 0)
		for range 3 {
			b.epb(1, 0, frame, 0)
		}
		b.epb(0, 0, frame, 0)
		b.epb(5, 0, frame, 0) // no such interface
		b.block(0x1234, []byte("unknown"))
		pkts, r := readAll(t, b.buf.Bytes())
		w := warningsText(r)
		for _, want := range []string{
			"link type 147 of interface 1 is not supported: its 3 frames are skipped",
			"1 frames name interface 5, which section 1 does not describe: skipped",
			"1 pcapng blocks of unknown type 0x00001234 skipped",
		} {
			if !strings.Contains(w, want) {
				t.Errorf("warnings %q lack %q", w, want)
			}
		}
		if len(pkts) != 1 || pkts[0].Frame != 4 || pkts[0].Payload != "data" {
			t.Errorf("packets %v, want frame 4's", pkts)
		}
	})
}

func TestSnaplenTruncated(t *testing.T) {
	t.Parallel()
	payload := strings.Repeat("0123456789", 100)
	tcp := tcpFrame(t, 1, 2, 3, payload)
	udp := serialize(t, ether(layers.EthernetTypeIPv4, udpDgram(ipv4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), 5, 6, payload)...)...)
	tests := []struct {
		name    string
		frame   []byte
		snaplen int
		want    string // payload, "" when the frame is skipped
		reason  string
	}{
		{"TCP payload cut", tcp, 100, payload[:100-54], ""},
		{"UDP payload cut", udp, 100, payload[:100-42], ""},
		{"TCP header cut", tcp, 40, "", SkipCut},
		{"IP header cut", tcp, 20, "", SkipCut},
		{"whole", tcp, 65535, payload, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cut := tc.frame[:min(tc.snaplen, len(tc.frame))]
			pkts, r := readAll(t, pcapBytes(binary.LittleEndian, false, uint32(tc.snaplen), 1, []rec{{t: base, data: cut, wire: len(tc.frame)}}))
			if tc.reason != "" {
				if len(pkts) != 0 || r.Stats().Skipped[tc.reason] != 1 {
					t.Errorf("packets %v, skipped %v; want one %q", pkts, r.Stats().Skipped, tc.reason)
				}
				return
			}
			cutShort := len(tc.want) < len(payload)
			if len(pkts) != 1 || pkts[0].Payload != tc.want || pkts[0].Truncated != cutShort || pkts[0].WireLen != len(payload) {
				t.Errorf("packets %v, want payload of %d bytes, truncated %v, wire length %d", pkts, len(tc.want), cutShort, len(payload))
			}
			if st := r.Stats(); cutShort && st.Truncated != 1 {
				t.Errorf("Stats.Truncated = %d, want 1", st.Truncated)
			}
		})
	}
}
