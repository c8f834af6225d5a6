package pcap

// Builders of frames and capture files for the tests. Frames are made
// with gopacket's layers; pcap files in little-endian byte order with
// pcapgo's writers, others by hand here, byte by byte as the formats say.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serializing frame: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

// ipv4 returns an IPv4 header for proto between two addresses.
func ipv4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 7, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ipv6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

// tcpSeg returns a TCP header and payload over network layer ip.
func tcpSeg(ip gopacket.NetworkLayer, sport, dport uint16, seq uint32, payload string) []gopacket.SerializableLayer {
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: 1000, ACK: true, PSH: payload != "", Window: 512}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	return []gopacket.SerializableLayer{ip.(gopacket.SerializableLayer), tcp, gopacket.Payload(payload)}
}

func udpDgram(ip gopacket.NetworkLayer, sport, dport uint16, payload string) []gopacket.SerializableLayer {
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return []gopacket.SerializableLayer{ip.(gopacket.SerializableLayer), udp, gopacket.Payload(payload)}
}

// ether puts an Ethernet header of type et in front of ls.
func ether(et layers.EthernetType, ls ...gopacket.SerializableLayer) []gopacket.SerializableLayer {
	return append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}}, ls...)
}

// tcpFrame is an Ethernet/IPv4/TCP frame.
func tcpFrame(t testing.TB, sport, dport uint16, seq uint32, payload string) []byte {
	return serialize(t, ether(layers.EthernetTypeIPv4, tcpSeg(ipv4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), sport, dport, seq, payload)...)...)
}

// rec is one frame of a capture to build.
type rec struct {
	t    time.Time
	data []byte
	wire int // length on the wire; 0: len(data)
}

func (r rec) wireLen() int { return max(r.wire, len(r.data)) }

// pcapBytes writes a classic pcap file by hand in the given byte order.
func pcapBytes(order binary.ByteOrder, nano bool, snaplen, link uint32, recs []rec) []byte {
	var b bytes.Buffer
	magic := uint32(magicPcapMicro)
	if nano {
		magic = magicPcapNano
	}
	h := make([]byte, 24)
	order.PutUint32(h[0:], magic)
	order.PutUint16(h[4:], 2)
	order.PutUint16(h[6:], 4)
	order.PutUint32(h[16:], snaplen)
	order.PutUint32(h[20:], link)
	b.Write(h)
	for _, r := range recs {
		rh := make([]byte, 16)
		frac := uint32(r.t.Nanosecond())
		if !nano {
			frac /= 1000
		}
		order.PutUint32(rh[0:], uint32(r.t.Unix()))
		order.PutUint32(rh[4:], frac)
		order.PutUint32(rh[8:], uint32(len(r.data)))
		order.PutUint32(rh[12:], uint32(r.wireLen()))
		b.Write(rh)
		b.Write(r.data)
	}
	return b.Bytes()
}

// ngBuilder writes pcapng by hand: any byte order per section, any
// timestamp resolution, every packet block type, damage on demand.
type ngBuilder struct {
	order binary.ByteOrder
	buf   bytes.Buffer
	ends  []int // offset after each block
}

func (b *ngBuilder) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	h := make([]byte, 8)
	b.order.PutUint32(h[0:], typ)
	b.order.PutUint32(h[4:], n)
	b.buf.Write(h)
	b.buf.Write(body)
	b.buf.Write(h[4:8])
	b.ends = append(b.ends, b.buf.Len())
}

func (b *ngBuilder) section(order binary.ByteOrder, major uint16) {
	b.order = order
	body := make([]byte, 16)
	order.PutUint32(body[0:], byteOrderMagic)
	order.PutUint16(body[4:], major)
	order.PutUint64(body[8:], ^uint64(0)) // section length unknown
	b.block(blockSHB, body)
}

// iface adds an interface; tsresol 0 leaves the option out (microseconds).
func (b *ngBuilder) iface(link uint16, snaplen uint32, tsresol byte, tsoffset int64) {
	body := make([]byte, 8)
	b.order.PutUint16(body[0:], link)
	b.order.PutUint32(body[4:], snaplen)
	body = b.option(body, 2, []byte("test0")) // if_name
	if tsresol != 0 {
		body = b.option(body, 9, []byte{tsresol})
	}
	if tsoffset != 0 {
		v := make([]byte, 8)
		b.order.PutUint64(v, uint64(tsoffset))
		body = b.option(body, 14, v)
	}
	body = b.option(body, 0, nil)
	b.block(blockIDB, body)
}

func (b *ngBuilder) option(body []byte, code uint16, v []byte) []byte {
	h := make([]byte, 4)
	b.order.PutUint16(h[0:], code)
	b.order.PutUint16(h[2:], uint16(len(v)))
	body = append(body, h...)
	body = append(body, v...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	return body
}

func (b *ngBuilder) epb(ifid uint32, ts uint64, data []byte, wire int) {
	body := make([]byte, 20)
	b.order.PutUint32(body[0:], ifid)
	b.order.PutUint32(body[4:], uint32(ts>>32))
	b.order.PutUint32(body[8:], uint32(ts))
	b.order.PutUint32(body[12:], uint32(len(data)))
	b.order.PutUint32(body[16:], uint32(max(wire, len(data))))
	b.block(blockEPB, append(body, data...))
}

func (b *ngBuilder) opb(ifid uint16, ts uint64, data []byte) {
	body := make([]byte, 20)
	b.order.PutUint16(body[0:], ifid)
	b.order.PutUint32(body[4:], uint32(ts>>32))
	b.order.PutUint32(body[8:], uint32(ts))
	b.order.PutUint32(body[12:], uint32(len(data)))
	b.order.PutUint32(body[16:], uint32(len(data)))
	b.block(blockOPB, append(body, data...))
}

func (b *ngBuilder) spb(data []byte, wire int) {
	body := make([]byte, 4)
	b.order.PutUint32(body, uint32(max(wire, len(data))))
	b.block(blockSPB, append(body, data...))
}

// got is what a test keeps of a Packet.
type got struct {
	Frame     int
	Time      time.Time
	Src, Dst  string
	Proto     uint8
	Seq       uint32
	Flags     string
	Payload   string
	Truncated bool
	WireLen   int
}

func keep(p *Packet) got {
	var f strings.Builder
	for _, x := range []struct {
		on bool
		c  byte
	}{{p.SYN, 'S'}, {p.ACK, 'A'}, {p.FIN, 'F'}, {p.RST, 'R'}, {p.PSH, 'P'}} {
		if x.on {
			f.WriteByte(x.c)
		}
	}
	return got{Frame: p.Frame, Time: p.Time, Src: p.Src.String(), Dst: p.Dst.String(), Proto: p.Proto, Seq: p.Seq, Flags: f.String(), Payload: string(p.Payload), Truncated: p.Truncated, WireLen: p.WireLen}
}

func (g got) String() string {
	return fmt.Sprintf("#%d %s %s→%s p%d seq=%d %s %q trunc=%v wire=%d", g.Frame, g.Time.Format(time.RFC3339Nano), g.Src, g.Dst, g.Proto, g.Seq, g.Flags, g.Payload, g.Truncated, g.WireLen)
}

// readAll opens data and reads every packet, failing the test on an error
// other than io.EOF and on a reader that does not end.
func readAll(t testing.TB, data []byte) ([]got, *Reader) {
	t.Helper()
	r, err := Open(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return drain(t, r, len(data)), r
}

func drain(t testing.TB, r *Reader, size int) []got {
	t.Helper()
	var out []got
	for i := 0; ; i++ {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if i > size+10 {
			t.Fatalf("Next returned more packets (%d) than the input has bytes (%d)", i, size)
		}
		out = append(out, keep(p))
	}
	if p, err := r.Next(); p != nil || !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the end = %v, %v; want nil, io.EOF", p, err)
	}
	checkBalance(t, r)
	return out
}

// checkBalance asserts that every frame was returned or skipped once.
func checkBalance(t testing.TB, r *Reader) {
	t.Helper()
	st := r.Stats()
	// A reassembled datagram is returned in its last fragment's frame,
	// counted as decoded; its other fragments are counted as skipped.
	n := st.Decoded
	for _, c := range st.Skipped {
		n += c
	}
	if n != st.Frames {
		t.Errorf("Stats = %+v: decoded %d + skipped %v != frames %d", st, st.Decoded, st.Skipped, st.Frames)
	}
	if c := st.Skipped[SkipFragment]; c != 0 {
		t.Errorf("Stats.Skipped[%q] = %d after the end, want 0", SkipFragment, c)
	}
}

func warningsText(r *Reader) string {
	var b strings.Builder
	for _, w := range r.Warnings() {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.String()
}
