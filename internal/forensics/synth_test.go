package forensics

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"noops/internal/forensics/pcap"
)

// synth writes captures of made-up TCP connections, for the tests that
// need no root: nested captures, hostile names, the fuzzer's seeds.
type synth struct {
	t   testing.TB
	buf bytes.Buffer
	w   *pcap.Writer
	now time.Time
	isn uint32
}

func newSynth(t testing.TB) *synth {
	s := &synth{t: t, now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), isn: 1000}
	w, err := pcap.NewWriter(&s.buf, layers.LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.w = w
	return s
}

// udp writes one UDP datagram from src to dst.
func (s *synth) udp(src, dst netip.AddrPort, payload []byte) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	u.SetNetworkLayerForChecksum(ip)
	s.serialize(eth, ip, u, gopacket.Payload(payload))
}

func (s *synth) serialize(ls ...gopacket.SerializableLayer) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		s.t.Fatal(err)
	}
	s.now = s.now.Add(time.Millisecond)
	data := buf.Bytes()
	if err := s.w.WritePacket(gopacket.CaptureInfo{Timestamp: s.now, CaptureLength: len(data), Length: len(data)}, data); err != nil {
		s.t.Fatal(err)
	}
}

// packet writes one TCP segment from src to dst.
func (s *synth) packet(src, dst netip.AddrPort, seq, ack uint32, flags string, payload []byte) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ack, Window: 65535}
	for _, f := range flags {
		switch f {
		case 'S':
			tcp.SYN = true
		case 'A':
			tcp.ACK = true
		case 'F':
			tcp.FIN = true
		case 'P':
			tcp.PSH = true
		case 'R':
			tcp.RST = true
		}
	}
	tcp.SetNetworkLayerForChecksum(ip)
	s.serialize(eth, ip, tcp, gopacket.Payload(payload))
}

// conn writes a whole connection: handshake, the client's req, the
// server's resp in segments of mss bytes, and both FINs.
func (s *synth) conn(cli, srv netip.AddrPort, req, resp []byte) {
	s.connAround(cli, srv, req, resp, nil)
}

// connAround is conn with meanwhile called before the FINs: what happens
// while the connection is open (an FTP data connection).
func (s *synth) connAround(cli, srv netip.AddrPort, req, resp []byte, meanwhile func()) {
	const mss = 1460
	c, v := s.isn, s.isn+0x10000000
	s.isn += 0x01000000
	s.packet(cli, srv, c, 0, "S", nil)
	s.packet(srv, cli, v, c+1, "SA", nil)
	s.packet(cli, srv, c+1, v+1, "A", nil)
	for off := 0; off < len(req); off += mss {
		s.packet(cli, srv, c+1+uint32(off), v+1, "PA", req[off:min(off+mss, len(req))])
	}
	cEnd := c + 1 + uint32(len(req))
	for off := 0; off < len(resp); off += mss {
		s.packet(srv, cli, v+1+uint32(off), cEnd, "PA", resp[off:min(off+mss, len(resp))])
	}
	vEnd := v + 1 + uint32(len(resp))
	if meanwhile != nil {
		meanwhile()
	}
	s.packet(srv, cli, vEnd, cEnd, "FA", nil)
	s.packet(cli, srv, cEnd, vEnd+1, "FA", nil)
	s.packet(srv, cli, vEnd+1, cEnd+1, "A", nil)
}

// http writes a GET of path from a client port and its response with
// body; extra header lines go into the response.
func (s *synth) http(port uint16, path string, body []byte, extra string) {
	cli := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), port)
	srv := netip.MustParseAddrPort("10.0.0.1:80")
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: files.example.org\r\nConnection: close\r\n\r\n", path)
	resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n%sConnection: close\r\n\r\n", len(body), extra)
	s.conn(cli, srv, []byte(req), append([]byte(resp), body...))
}

func (s *synth) bytes() []byte {
	if err := s.w.Flush(); err != nil {
		s.t.Fatal(err)
	}
	return s.buf.Bytes()
}

// file writes the capture to dir/name and returns its path.
func (s *synth) file(dir, name string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, s.bytes(), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}
