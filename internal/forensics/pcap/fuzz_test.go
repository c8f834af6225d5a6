package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzReader reads arbitrary bytes as a capture: it must never panic or
// loop, must end with io.EOF, account for every frame, and keep its
// warnings and progress within bounds.
func FuzzReader(f *testing.F) {
	s := newSample(f)
	f.Add(pcapBytes(binary.LittleEndian, false, 65535, 1, s.frames))
	f.Add(pcapBytes(binary.BigEndian, true, 96, 1, s.frames))
	f.Add(modifiedPcap(s.frames[:2]))
	var ng ngBuilder
	ng.section(binary.LittleEndian, 1)
	ng.iface(1, 0, 9, 0)
	ng.iface(101, 64, 0x80|20, 5)
	ng.epb(0, 1, s.frames[0].data, 0)
	ng.epb(1, 2, s.frames[1].data[14:], 0)
	ng.spb(s.frames[2].data, 0)
	ng.opb(0, 3, s.frames[4].data)
	ng.block(0x77, []byte{1, 2, 3})
	ng.section(binary.BigEndian, 1)
	ng.iface(113, 0, 3, 0)
	ng.epb(0, 4, cat(make([]byte, 14), []byte{0x08, 0}, s.frames[1].data[14:]), 0)
	f.Add(ng.buf.Bytes())
	seg := udpBytes(f, 1, 2, "fragmented datagram payload....")
	f.Add(pcapBytes(binary.LittleEndian, false, 65535, 228, recsAt(fragments4(seg, 3, []frag{{0, 16, true}, {16, len(seg), false}}))))

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Open(bytes.NewReader(data))
		if err != nil {
			return
		}
		var last int64
		for i := 0; ; i++ {
			p, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v (the input cannot fail to read)", err)
			}
			if i > len(data) {
				t.Fatalf("more packets than input bytes: looping")
			}
			if p.Proto != 6 && p.Proto != 17 || p.Frame < 1 || p.Frame > r.Stats().Frames {
				t.Fatalf("bad packet %+v", p)
			}
			if p.WireLen < len(p.Payload) || p.Truncated != (len(p.Payload) < p.WireLen) {
				t.Fatalf("packet lengths: payload %d, wire %d, truncated %v", len(p.Payload), p.WireLen, p.Truncated)
			}
			if !p.Src.Addr.IsValid() || !p.Dst.Addr.IsValid() || p.Src.Addr.BitLen() != p.Dst.Addr.BitLen() {
				t.Fatalf("addresses %v → %v", p.Src.Addr, p.Dst.Addr)
			}
			if pr := r.Progress(); pr < last || pr > int64(len(data)) && r.gz == nil {
				t.Fatalf("Progress %d after %d, input %d bytes", pr, last, len(data))
			} else {
				last = pr
			}
		}
		checkBalance(t, r)
		if w := r.Warnings(); len(w) > maxWarnings+3*maxTallyKeys+8 {
			t.Fatalf("%d warnings", len(w))
		}
	})
}

// FuzzDecodeEthernet compares the hand decoder with gopacket's layers on
// Ethernet frames that gopacket decodes without error to IPv4 or IPv6 and
// TCP or UDP: both must agree on addresses, ports, sequence numbers,
// flags and payload. (gopacket does not check the IP version field;
// frames with a wrong one are left out.)
func FuzzDecodeEthernet(f *testing.F) {
	s := newSample(f)
	for _, fr := range s.frames {
		f.Add(fr.data)
	}
	f.Add(tcpFrame(f, 1, 2, 3, "hello"))
	f.Add(ipv4WithOptions(tcpFrame(f, 1, 2, 3, "opts")[14:]))
	f.Add(cat(etherHdr(0x86dd), ipv6Raw("2001:db8::1", "2001:db8::2", 17, udpBytes(f, 53, 5353, "dns?"))))
	f.Add(cat(etherHdr(0x0800), zeroTotal(ipv4Raw("192.0.2.1", "192.0.2.2", 6, 1, 0, false, tcpBytes(f, 1, 2, 3, "tso")))))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Reader{}
		r.stats.Skipped = make(map[string]int)
		p := r.decode(&frame{data: data, capLen: len(data), wireLen: len(data), link: linkEthernet})

		pk := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
		if pk.ErrorLayer() != nil || len(data) < 14 {
			return
		}
		var src, dst netip.Addr
		switch ip := pk.NetworkLayer().(type) {
		case *layers.IPv4:
			if be.Uint16(data[12:14]) != 0x0800 || ip.Version != 4 || ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 || ip.Length == 0 {
				return
			}
			src, dst = netip.AddrFrom4([4]byte(ip.SrcIP.To4())), netip.AddrFrom4([4]byte(ip.DstIP.To4()))
		case *layers.IPv6:
			if be.Uint16(data[12:14]) != 0x86dd || ip.Version != 6 || ip.Length == 0 || (ip.NextHeader != layers.IPProtocolTCP && ip.NextHeader != layers.IPProtocolUDP) {
				return
			}
			src, dst = netip.AddrFrom16([16]byte(ip.SrcIP.To16())), netip.AddrFrom16([16]byte(ip.DstIP.To16()))
		default:
			return
		}
		var sport, dport uint16
		var payload []byte
		switch tl := pk.TransportLayer().(type) {
		case *layers.TCP:
			sport, dport, payload = uint16(tl.SrcPort), uint16(tl.DstPort), tl.Payload
			if p != nil && (p.Seq != tl.Seq || p.Ack != tl.Ack || p.SYN != tl.SYN || p.ACK != tl.ACK || p.FIN != tl.FIN || p.RST != tl.RST || p.PSH != tl.PSH) {
				t.Fatalf("TCP header: ours %+v, gopacket %+v", p, tl)
			}
		case *layers.UDP:
			sport, dport, payload = uint16(tl.SrcPort), uint16(tl.DstPort), tl.Payload
		default:
			return
		}
		if p == nil {
			t.Fatalf("gopacket decodes %v, we skip it (%v)", pk, r.stats.Skipped)
		}
		if p.Src.Addr != src || p.Dst.Addr != dst || p.Src.Port != sport || p.Dst.Port != dport || !bytes.Equal(p.Payload, payload) {
			t.Fatalf("ours %v→%v %q, gopacket %v:%d→%v:%d %q", p.Src, p.Dst, p.Payload, src, sport, dst, dport, payload)
		}
	})
}
