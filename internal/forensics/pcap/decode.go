package pcap

import (
	"encoding/binary"
	"net/netip"

	"noops/internal/forensics/flow"
)

// Link types the reader decodes (LINKTYPE_ values).
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw12    = 12 // DLT_RAW on some systems, as some tools write it
	linkRaw14    = 14 // DLT_RAW on others
	linkRaw      = 101
	linkLoop     = 108
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

// network says what the link layer carries.
type network uint8

const (
	netUnknown network = iota // not IP: skipped
	netIPv4
	netIPv6
	netByVersion // IP of the version in the first nibble
)

// be is short for the network byte order.
var be = binary.BigEndian

// decode turns a frame into a Packet, or counts why it cannot.
func (r *Reader) decode(fr *frame) *Packet {
	cut := len(fr.data) < fr.wireLen // the snap length shortened the frame
	b, nw, reason := linkPayload(fr.link, fr.data)
	if reason != "" {
		if reason == SkipLinkType {
			r.badLinks.add(fr.key)
		}
		r.skipCut(reason, cut)
		return nil
	}
	if nw == netByVersion {
		nw = netUnknown
		if len(b) > 0 {
			switch b[0] >> 4 {
			case 4:
				nw = netIPv4
			case 6:
				nw = netIPv6
			}
		}
		if nw == netUnknown {
			r.skip(SkipNotIP)
			return nil
		}
	}
	var ip ipLayer
	if nw == netIPv4 {
		reason = ip.parseIPv4(b)
	} else {
		reason = ip.parseIPv6(b)
	}
	if reason != "" {
		r.skipCut(reason, cut)
		return nil
	}
	p := &Packet{Frame: r.stats.Frames, Time: fr.time}
	if ip.fragment {
		data, ok := r.defrag.add(r, &ip, len(ip.payload) < ip.wireLen, fr.time)
		if !ok {
			return nil
		}
		ip.payload, ip.wireLen = data, len(data)
		p.Reassembled = true
		r.stats.Reassembled++
		ip.fragment = false
		if !ip.v4 {
			// The fragmentable part may begin with more extension headers.
			if reason = ip.walkIPv6(ip.proto, data, len(data)); reason != "" {
				r.skipCut(reason, false)
				return nil
			}
		}
	}
	if reason = ip.transport(p); reason != "" {
		r.skipCut(reason, cut)
		return nil
	}
	return p
}

// skipCut counts a skipped frame, as cut by the snap length rather than
// malformed when the frame was captured short.
func (r *Reader) skipCut(reason string, cut bool) {
	if reason == SkipMalformed && cut {
		reason = SkipCut
	}
	r.skip(reason)
}

// linkPayload strips the link-layer header.
func linkPayload(link uint32, b []byte) ([]byte, network, string) {
	switch link {
	case linkEthernet:
		if len(b) < 14 {
			return nil, 0, SkipMalformed
		}
		return etherPayload(be.Uint16(b[12:14]), b[14:])
	case linkSLL:
		if len(b) < 16 {
			return nil, 0, SkipMalformed
		}
		return etherPayload(be.Uint16(b[14:16]), b[16:])
	case linkSLL2:
		if len(b) < 20 {
			return nil, 0, SkipMalformed
		}
		return etherPayload(be.Uint16(b[0:2]), b[20:])
	case linkNull, linkLoop:
		if len(b) < 4 {
			return nil, 0, SkipMalformed
		}
		// The family is in the writer's byte order for Null and in
		// network order for Loop; a family fits in the low 16 bits either way.
		fam := binary.LittleEndian.Uint32(b)
		if link == linkLoop || fam > 0xffff {
			fam = be.Uint32(b)
		}
		switch fam {
		case 2: // AF_INET
			return b[4:], netIPv4, ""
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			return b[4:], netIPv6, ""
		}
		return nil, 0, SkipNotIP
	case linkRaw, linkRaw12, linkRaw14:
		return b, netByVersion, ""
	case linkIPv4:
		return b, netIPv4, ""
	case linkIPv6:
		return b, netIPv6, ""
	}
	return nil, 0, SkipLinkType
}

// etherPayload follows EtherTypes through VLAN tags (802.1Q, QinQ),
// PPPoE sessions, MPLS labels and 802.2 SNAP headers to IP.
func etherPayload(etype uint16, b []byte) ([]byte, network, string) {
	for range 16 { // bounds a stack of tags
		switch {
		case etype == 0x0800:
			return b, netIPv4, ""
		case etype == 0x86dd:
			return b, netIPv6, ""
		case etype == 0x8100 || etype == 0x88a8 || etype == 0x9100 || etype == 0x9200:
			if len(b) < 4 {
				return nil, 0, SkipMalformed
			}
			etype, b = be.Uint16(b[2:4]), b[4:]
		case etype == 0x8864: // PPPoE session
			if len(b) < 8 {
				return nil, 0, SkipMalformed
			}
			switch be.Uint16(b[6:8]) {
			case 0x0021:
				return b[8:], netIPv4, ""
			case 0x0057:
				return b[8:], netIPv6, ""
			}
			return nil, 0, SkipNotIP
		case etype == 0x8847 || etype == 0x8848: // MPLS
			for range 16 {
				if len(b) < 4 {
					return nil, 0, SkipMalformed
				}
				bottom := b[2]&1 == 1
				b = b[4:]
				if bottom {
					return b, netByVersion, ""
				}
			}
			return nil, 0, SkipMalformed
		case etype <= 1500: // 802.3 length: 802.2 LLC, IP only with SNAP
			if len(b) < 8 || b[0] != 0xaa || b[1] != 0xaa || b[2] != 3 {
				return nil, 0, SkipNotIP
			}
			etype, b = be.Uint16(b[6:8]), b[8:]
		default:
			return nil, 0, SkipNotIP
		}
	}
	return nil, 0, SkipMalformed
}

// ipLayer is a parsed IPv4 or IPv6 header.
type ipLayer struct {
	v4       bool
	src, dst netip.Addr
	proto    uint8
	payload  []byte // captured bytes after the IP headers
	wireLen  int    // their length on the wire (len(payload) when unknown)
	fragment bool   // payload is one fragment
	fragOff  int    // its offset in the datagram
	fragMore bool   // more fragments follow
	fragID   uint32
}

func (ip *ipLayer) parseIPv4(b []byte) string {
	if len(b) < 20 {
		return SkipMalformed
	}
	ihl := int(b[0]&0x0f) * 4
	if b[0]>>4 != 4 || ihl < 20 {
		return SkipMalformed
	}
	if len(b) < ihl {
		return SkipMalformed
	}
	total := int(be.Uint16(b[2:4]))
	if total == 0 {
		total = len(b) // segmentation offload: the length is unknown
	}
	if total < ihl {
		return SkipMalformed
	}
	if len(b) > total {
		b = b[:total] // Ethernet padding or a trailer
	}
	ip.v4 = true
	ip.src = netip.AddrFrom4([4]byte(b[12:16]))
	ip.dst = netip.AddrFrom4([4]byte(b[16:20]))
	ip.proto = b[9]
	ip.payload = b[ihl:]
	ip.wireLen = total - ihl
	flags := be.Uint16(b[6:8])
	ip.fragMore = flags&0x2000 != 0
	ip.fragOff = int(flags&0x1fff) * 8
	ip.fragment = ip.fragMore || ip.fragOff != 0
	ip.fragID = uint32(be.Uint16(b[4:6]))
	return ""
}

func (ip *ipLayer) parseIPv6(b []byte) string {
	if len(b) < 40 || b[0]>>4 != 6 {
		return SkipMalformed
	}
	plen := int(be.Uint16(b[4:6]))
	rest := b[40:]
	wire := plen
	if plen == 0 {
		wire = len(rest) // a jumbogram or segmentation offload: unknown
	} else if len(rest) > plen {
		rest = rest[:plen]
	}
	ip.src = netip.AddrFrom16([16]byte(b[8:24]))
	ip.dst = netip.AddrFrom16([16]byte(b[24:40]))
	return ip.walkIPv6(b[6], rest, wire)
}

// walkIPv6 follows the extension headers from next to the transport
// header; wire is the length of b on the wire.
func (ip *ipLayer) walkIPv6(next uint8, b []byte, wire int) string {
	for range 32 { // bounds a chain of headers
		var n int
		switch next {
		case 0, 43, 60, 135, 139, 140, 253, 254: // hop-by-hop, routing, destination, mobility, HIP, shim6, experimental
			if len(b) < 2 {
				return SkipMalformed
			}
			n = (int(b[1]) + 1) * 8
		case 51: // AH
			if len(b) < 2 {
				return SkipMalformed
			}
			n = (int(b[1]) + 2) * 4
		case 44: // fragment
			if len(b) < 8 {
				return SkipMalformed
			}
			if ip.fragment { // a second fragment header
				return SkipMalformed
			}
			fo := be.Uint16(b[2:4])
			ip.fragOff = int(fo>>3) * 8
			ip.fragMore = fo&1 != 0
			ip.fragID = be.Uint32(b[4:8])
			ip.fragment = ip.fragOff != 0 || ip.fragMore
			n = 8
		default:
			ip.proto = next
			ip.payload = b
			ip.wireLen = max(wire, len(b))
			return ""
		}
		if len(b) < n || wire < n {
			return SkipMalformed
		}
		next = b[0]
		b = b[n:]
		wire -= n
		if ip.fragment {
			// The rest is one fragment of the upper layers.
			ip.proto = next
			ip.payload = b
			ip.wireLen = max(wire, len(b))
			return ""
		}
	}
	return SkipMalformed
}

// transport parses the TCP or UDP header into p.
func (ip *ipLayer) transport(p *Packet) string {
	b := ip.payload
	p.Proto = ip.proto
	switch ip.proto {
	case 6:
		if len(b) < 20 {
			return SkipMalformed
		}
		off := int(b[12]>>4) * 4
		if off < 20 || len(b) < off || ip.wireLen < off {
			return SkipMalformed
		}
		p.Src = endpoint(ip.src, b[0:2])
		p.Dst = endpoint(ip.dst, b[2:4])
		p.Seq, p.Ack = be.Uint32(b[4:8]), be.Uint32(b[8:12])
		f := b[13]
		p.FIN, p.SYN, p.RST, p.PSH, p.ACK = f&0x01 != 0, f&0x02 != 0, f&0x04 != 0, f&0x08 != 0, f&0x10 != 0
		p.Payload = b[off:]
		p.WireLen = ip.wireLen - off
	case 17:
		if len(b) < 8 || ip.wireLen < 8 {
			return SkipMalformed
		}
		p.Src = endpoint(ip.src, b[0:2])
		p.Dst = endpoint(ip.dst, b[2:4])
		p.Payload = b[8:]
		p.WireLen = ip.wireLen - 8
		if ulen := int(be.Uint16(b[4:6])); ulen >= 8 && ulen-8 < p.WireLen {
			// The UDP length is shorter than the IP payload: trust it.
			p.WireLen = ulen - 8
			p.Payload = p.Payload[:min(len(p.Payload), p.WireLen)]
		}
	default:
		return protocolReason(ip.proto)
	}
	p.WireLen = max(p.WireLen, len(p.Payload))
	p.Truncated = len(p.Payload) < p.WireLen
	return ""
}

func endpoint(a netip.Addr, port []byte) flow.Endpoint {
	return flow.Endpoint{Addr: a, Port: be.Uint16(port)}
}
