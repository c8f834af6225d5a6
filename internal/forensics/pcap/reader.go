package pcap

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"

	"noops/internal/forensics/flow"
)

// Packet is one decoded frame's transport-layer content.
type Packet struct {
	Frame    int           // 1-based frame number, as Wireshark counts
	Time     time.Time     // capture time, UTC
	Src, Dst flow.Endpoint // IP addresses (IPv4 as 4-byte netip.Addr, IPv6 16-byte as in the header) and ports
	Proto    uint8         // 6 TCP, 17 UDP (others are skipped, counted)
	// TCP only:
	Seq, Ack                uint32
	SYN, ACK, FIN, RST, PSH bool
	// Payload is the TCP or UDP payload. It is valid until the next call
	// to Next: copy it to keep it. The Packet itself is the caller's.
	Payload []byte
	// Truncated says the frame was captured shorter than it was on the
	// wire (snap length) and Payload is the first part of WireLen bytes.
	Truncated bool
	// WireLen is the payload's length on the wire, from the IP and TCP
	// or UDP lengths; len(Payload) when those are unknown (an IPv4 total
	// length of 0, as segmentation offload captures show).
	WireLen int
	// Reassembled says the payload was rebuilt from IP fragments; Frame
	// is then the frame of the fragment that completed it.
	Reassembled bool
}

// Reader reads the packets of a pcap or pcapng capture.
type Reader struct {
	src   *source
	raw   *countingReader // what was read from the caller's reader
	gz    *gzipGuard      // nil unless the capture is gzip-compressed
	ng    bool            // pcapng, else pcap
	pc    pcapState
	ngs   ngState
	frame int
	stats Stats
	done  bool
	err   error // returned by Next once done: io.EOF or a read error

	warn          warnings
	badLinks      tally[linkKey]
	badIfaces     tally[linkKey]
	unknownBlocks tally[uint32]
	defrag        defragmenter
}

// frame is one packet record, before decoding.
type frame struct {
	data    []byte // captured bytes, valid until the next read
	capLen  int    // captured length the record states (data is shorter when the file is cut)
	wireLen int    // length on the wire
	time    time.Time
	link    uint32
	key     linkKey // names the interface in warnings
}

const (
	magicPcapMicro    = 0xa1b2c3d4
	magicPcapNano     = 0xa1b23c4d
	magicPcapModified = 0xa1b2cd34 // Alexey Kuznetzov's patched libpcap: 8 more bytes per record
	magicPcapng       = 0x0a0d0d0a
)

// Open reads the capture's file header and returns a Reader of its
// packets. It recognises pcap (either byte order, micro- or nanosecond
// timestamps, and the "modified" variant) and pcapng by their magic
// number, also inside gzip; anything else is an error that says what the
// file starts with.
func Open(r io.Reader) (*Reader, error) {
	rd := &Reader{raw: &countingReader{r: r}}
	rd.stats.Skipped = make(map[string]int)
	rd.stats.LinkTypes = make(map[layers.LinkType]int)
	rd.src = newSource(rd.raw)
	head, _ := rd.src.peek(4)
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(rd.src)
		if err != nil {
			return nil, fmt.Errorf("opening capture: reading its gzip header: %w", err)
		}
		rd.gz = &gzipGuard{r: zr}
		rd.src = newSource(rd.gz)
		head, _ = rd.src.peek(4)
	}
	if len(head) < 4 {
		if e := rd.src.ioError(); e != nil {
			return nil, fmt.Errorf("opening capture: %w", e)
		}
		if len(head) == 0 {
			return nil, errors.New("opening capture: the file is empty")
		}
		return nil, fmt.Errorf("opening capture: the file is only %d bytes long", len(head))
	}
	var err error
	magicLE, magicBE := binary.LittleEndian.Uint32(head), binary.BigEndian.Uint32(head)
	switch {
	case magicLE == magicPcapng:
		rd.ng = true
		err = rd.openPcapng()
	case isPcapMagic(magicLE) || isPcapMagic(magicBE):
		err = rd.openPcap(isPcapMagic(magicBE))
	default:
		return nil, fmt.Errorf("opening capture: not a pcap or pcapng file: it starts with %s", describeStart(rd.src))
	}
	if err != nil {
		return nil, fmt.Errorf("opening capture: %w", err)
	}
	if rd.gz != nil {
		rd.stats.Format += " (gzip)"
	}
	return rd, nil
}

func isPcapMagic(m uint32) bool {
	return m == magicPcapMicro || m == magicPcapNano || m == magicPcapModified
}

// describeStart shows the first bytes of a file that is not a capture.
func describeStart(s *source) string {
	b, _ := s.peek(16)
	printable := true
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c >= 0x7f {
			printable = false
		}
	}
	if printable {
		return fmt.Sprintf("%q", b)
	}
	return hex.EncodeToString(b)
}

// Next returns the next TCP or UDP packet, or io.EOF at the end of the
// capture. Frames it cannot use (other protocols, unsupported links,
// fragments awaiting the rest, corrupt records) are counted in Stats and,
// where something was lost, described by Warnings. It returns another
// error only when reading the input fails; the packets before it stand.
func (r *Reader) Next() (*Packet, error) {
	for !r.done {
		var fr frame
		var ok bool
		if r.ng {
			fr, ok = r.nextPcapng()
		} else {
			fr, ok = r.nextPcap()
		}
		if !ok {
			r.finish()
			break
		}
		r.stats.Frames++
		r.stats.Bytes += int64(len(fr.data))
		if fr.link <= 0xffff {
			r.stats.LinkTypes[layers.LinkType(fr.link)]++
		}
		if p := r.decode(&fr); p != nil {
			r.stats.Decoded++
			if p.Truncated {
				r.stats.Truncated++
			}
			return p, nil
		}
	}
	return nil, r.err
}

// finish ends the reading: it reports what the input's end cut off.
func (r *Reader) finish() {
	r.done = true
	r.err = io.EOF
	if r.gz != nil && r.gz.err != nil {
		r.warn.add(0, "the gzip stream is damaged after %d compressed bytes (%v): the rest of the capture is lost", r.raw.n, r.gz.err)
	}
	if e := r.src.ioError(); e != nil {
		r.err = fmt.Errorf("reading capture at offset %d: %w", r.src.off, e)
	}
	r.defrag.flush(r)
}

// skip counts a frame that Next does not return.
func (r *Reader) skip(reason string) { r.stats.Skipped[reason]++ }

// moveSkips recounts n frames from one reason to another.
func (r *Reader) moveSkips(from, to string, n int) {
	if n <= 0 {
		return
	}
	r.stats.Skipped[to] += n
	if r.stats.Skipped[from] -= n; r.stats.Skipped[from] <= 0 {
		delete(r.stats.Skipped, from)
	}
}

// Warnings returns what was lost or doubted so far: the first 100
// warnings word for word, then sums (frames of unsupported link types,
// blocks of unknown types, how many warnings were not shown).
func (r *Reader) Warnings() []flow.Warning {
	out := make([]flow.Warning, 0, len(r.warn.kept)+4)
	out = append(out, r.warn.kept...)
	return append(out, r.summary()...)
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return copyStats(r.stats) }

// Progress returns the bytes consumed of the caller's reader, for a
// progress bar against the file's size.
func (r *Reader) Progress() int64 {
	if r.gz != nil {
		return r.raw.n
	}
	return r.src.off
}

// Read lets a gzip reader draw from the window.
func (s *source) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b, err := s.peek(1); len(b) == 0 {
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	n := copy(p, s.buf[s.start:s.end])
	s.discard(n)
	return n, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// gzipGuard turns a damaged gzip stream into an early end, remembering
// why, so that what was decompressed before the damage is still read.
type gzipGuard struct {
	r   io.Reader
	err error
}

func (g *gzipGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, io.EOF
	}
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		g.err = err
		if n > 0 {
			return n, nil
		}
		return 0, io.EOF
	}
	return n, err
}
