package main

// Frames: Ethernet/IPv4/TCP and UDP built with gopacket's layers (lengths
// and checksums computed), TCP connections with real sequence numbers,
// handshakes, delayed ACKs and FINs, and a capture file to write them to.

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	capture "noops/internal/forensics/pcap"
)

// mss is the TCP payload per full segment (1514-byte Ethernet frames).
const mss = 1460

// host is one machine on the capture's link.
type host struct {
	mac net.HardwareAddr
	ip  netip.Addr
}

func newHost(ip string) host {
	a := netip.MustParseAddr(ip).As4()
	return host{mac: net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}, ip: netip.AddrFrom4(a)}
}

// framer builds frames into a reused buffer. A frame is valid until the
// next one is built.
type framer struct {
	buf  gopacket.SerializeBuffer
	opts gopacket.SerializeOptions
	ipID uint16
}

func newFramer() *framer {
	return &framer{buf: gopacket.NewSerializeBuffer(), opts: gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}}
}

func (f *framer) ipv4(src, dst host, proto layers.IPProtocol) (*layers.Ethernet, *layers.IPv4) {
	f.ipID++
	eth := &layers.Ethernet{SrcMAC: src.mac, DstMAC: dst.mac, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: f.ipID, Flags: layers.IPv4DontFragment, Protocol: proto,
		SrcIP: src.ip.AsSlice(), DstIP: dst.ip.AsSlice()}
	return eth, ip
}

// tcp returns an Ethernet/IPv4/TCP frame.
func (f *framer) tcp(src, dst host, sport, dport uint16, seq, ack uint32, fl tcpFlags, payload []byte) []byte {
	eth, ip := f.ipv4(src, dst, layers.IPProtocolTCP)
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: ack,
		SYN: fl&syn != 0, ACK: fl&ackFlag != 0, FIN: fl&fin != 0, RST: fl&rst != 0, PSH: len(payload) > 0, Window: 64240}
	if fl&syn != 0 {
		t.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{mss >> 8, mss & 0xff}}}
	}
	_ = t.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(f.buf, f.opts, eth, ip, t, gopacket.Payload(payload)); err != nil {
		panic(fmt.Sprintf("serializing a TCP frame: %v", err)) // only on a bug here: every field is set above
	}
	return f.buf.Bytes()
}

// udp returns an Ethernet/IPv4/UDP frame.
func (f *framer) udp(src, dst host, sport, dport uint16, payload []byte) []byte {
	eth, ip := f.ipv4(src, dst, layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = u.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(f.buf, f.opts, eth, ip, u, gopacket.Payload(payload)); err != nil {
		panic(fmt.Sprintf("serializing a UDP frame: %v", err))
	}
	return f.buf.Bytes()
}

type tcpFlags uint8

const (
	syn tcpFlags = 1 << iota
	ackFlag
	fin
	rst
)

// sink receives frames in capture order. It reports false once the
// consumer has stopped; producers then return.
type sink func(frame []byte) bool

// seg is one TCP data segment of a direction: its sequence number and
// bytes.
type seg struct {
	seq  uint32
	data []byte
}

// conn is a TCP connection between a client (direction 0 sends) and a
// server (direction 1 sends).
type conn struct {
	f        *framer
	out      sink
	ok       bool
	ends     [2]host
	ports    [2]uint16
	next     [2]uint32 // next sequence number each side sends
	rcvd     [2]uint32 // highest byte each side has acknowledged (as the ACK field it sends)
	pending  [2]int    // segments received since the last ACK
	omit     [2]bool   // leave a side's packets out of the capture (one-sided captures)
	finished bool
}

// newConn returns a connection with random initial sequence numbers; no
// packet is sent until open.
func newConn(f *framer, out sink, rng *rand.Rand, client, server host, cport, sport uint16) *conn {
	c := &conn{f: f, out: out, ok: true, ends: [2]host{client, server}, ports: [2]uint16{cport, sport}}
	c.next = [2]uint32{rng.Uint32(), rng.Uint32()}
	return c
}

// packet sends one frame from side d.
func (c *conn) packet(d int, seq uint32, fl tcpFlags, payload []byte) {
	if !c.ok || c.omit[d] {
		return
	}
	o := 1 - d
	ack := c.rcvd[d]
	if fl&syn != 0 && d == 0 {
		ack, fl = 0, fl&^ackFlag
	}
	c.ok = c.out(c.f.tcp(c.ends[d], c.ends[o], c.ports[d], c.ports[o], seq, ack, fl, payload))
}

// open sends the three-way handshake.
func (c *conn) open() {
	c.packet(0, c.next[0], syn, nil)
	c.next[0]++
	c.rcvd[1] = c.next[0]
	c.packet(1, c.next[1], syn|ackFlag, nil)
	c.next[1]++
	c.rcvd[0] = c.next[1]
	c.packet(0, c.next[0], ackFlag, nil)
}

// segments cuts data into MSS-sized segments of side d and reserves their
// sequence numbers; nothing is sent.
func (c *conn) segments(d int, data []byte) []seg {
	var out []seg
	for len(data) > 0 {
		n := min(len(data), mss)
		out = append(out, seg{seq: c.next[d], data: data[:n]})
		c.next[d] += uint32(n)
		data = data[n:]
	}
	return out
}

// send sends data from side d, the other side acknowledging every second
// segment and the last.
func (c *conn) send(d int, data []byte) {
	ss := c.segments(d, data)
	for i, s := range ss {
		c.deliver(d, s)
		if c.pending[1-d] >= 2 || i == len(ss)-1 {
			c.ack(1 - d)
		}
	}
}

// deliver sends one segment of side d and, when it extends what the
// other side holds, advances the other side's acknowledgement.
func (c *conn) deliver(d int, s seg) {
	c.packet(d, s.seq, ackFlag, s.data)
	end := s.seq + uint32(len(s.data))
	if int32(end-c.rcvd[1-d]) > 0 && int32(s.seq-c.rcvd[1-d]) <= 0 {
		c.rcvd[1-d] = end
	}
	c.pending[1-d]++
}

// ack sends a pure ACK from side d.
func (c *conn) ack(d int) {
	c.packet(d, c.next[d], ackFlag, nil)
	c.pending[d] = 0
}

// close ends the connection from side d: FIN, FIN+ACK, ACK.
func (c *conn) close(d int) {
	if c.finished {
		return
	}
	c.finished = true
	o := 1 - d
	c.packet(d, c.next[d], fin|ackFlag, nil)
	c.next[d]++
	c.rcvd[o] = c.next[d]
	c.packet(o, c.next[o], fin|ackFlag, nil)
	c.next[o]++
	c.rcvd[d] = c.next[o]
	c.packet(d, c.next[d], ackFlag, nil)
}

// capFile writes a pcapng capture with a clock that advances a little
// with every frame.
type capFile struct {
	f     *os.File
	cnt   *countingWriter
	bw    *bufio.Writer
	w     *capture.Writer
	now   time.Time
	rng   *rand.Rand
	n     int // frames written
	err   error
	maxGp time.Duration
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// createCapture creates path; the clock starts at start.
func createCapture(path string, start time.Time, rng *rand.Rand) (*capFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the capture: %w", err)
	}
	cnt := &countingWriter{w: f}
	bw := bufio.NewWriterSize(cnt, 1<<20)
	w, err := capture.NewWriter(bw, layers.LinkTypeEthernet, 0)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &capFile{f: f, cnt: cnt, bw: bw, w: w, now: start, rng: rng, maxGp: 200 * time.Microsecond}, nil
}

// write writes one frame (a sink); false after an error.
func (c *capFile) write(frame []byte) bool {
	if c.err != nil {
		return false
	}
	c.now = c.now.Add(time.Duration(1 + c.rng.Int64N(int64(c.maxGp))))
	c.err = c.w.WritePacket(gopacket.CaptureInfo{Timestamp: c.now, Length: len(frame)}, frame)
	c.n++
	return c.err == nil
}

// offset flushes and returns the file's size so far.
func (c *capFile) offset() (int64, error) {
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	if err := c.bw.Flush(); err != nil {
		return 0, fmt.Errorf("writing the capture: %w", err)
	}
	return c.cnt.n, nil
}

// close flushes and closes the file and returns its size.
func (c *capFile) close() (int64, error) {
	n, err := c.offset()
	if c.err != nil {
		err = c.err
	}
	if cerr := c.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the capture: %w", cerr)
	}
	return n, err
}
