// Package flow holds the types that connect the parts of noops pcap: the
// reassembler (internal/forensics/stream) turns packets into Conns and
// Datagrams, and the protocol extractors (internal/forensics/proto/...)
// read them. It has no logic beyond small helpers.
package flow

import (
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Endpoint is one side of a flow.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

func (e Endpoint) String() string { return netip.AddrPortFrom(e.Addr, e.Port).String() }

// Frames locates data in the capture: the first and last frame numbers
// (1-based, as Wireshark counts) and their times.
type Frames struct {
	First, Last         int
	FirstTime, LastTime time.Time
}

// Range is a byte range [Start, End) of one direction of a connection,
// counted from the direction's first byte (the byte after the SYN, or
// the lowest sequence number seen when the SYN is missing).
type Range struct{ Start, End int64 }

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.Start, r.End) }

// Half is one direction of a TCP connection, reassembled.
type Half struct {
	Src, Dst Endpoint
	// Data is the reassembled byte stream, Size bytes; the bytes of a gap
	// read as zeros. It may be backed by a temporary file: call Close.
	Data io.ReaderAt
	Size int64
	// Gaps are the ranges no segment covered (lost in the capture);
	// Overlaps the ranges sent twice with different bytes (resolved by
	// the reassembler's stated rule).
	Gaps     []Range
	Overlaps []Range
	Frames   Frames
	// SYN, FIN and RST say what was seen. With the SYN, offsets are exact;
	// without it they count from the lowest sequence number captured.
	SYN, FIN, RST bool
	Segments      int // data segments kept (retransmissions not counted)
	Retransmitted int // segments that repeated data already held
	close         func() error
}

// NewHalf returns a Half over data held in memory or in a file; closeFn,
// if not nil, releases it.
func NewHalf(src, dst Endpoint, data io.ReaderAt, size int64, closeFn func() error) *Half {
	return &Half{Src: src, Dst: dst, Data: data, Size: size, close: closeFn}
}

// Close releases the data's storage.
func (h *Half) Close() error {
	if h == nil || h.close == nil {
		return nil
	}
	c := h.close
	h.close = nil
	return c()
}

// Bytes reads [start, end) of the stream (clipped to Size).
func (h *Half) Bytes(start, end int64) ([]byte, error) {
	end = min(end, h.Size)
	if start >= end {
		return nil, nil
	}
	b := make([]byte, end-start)
	n, err := h.Data.ReadAt(b, start)
	if err == io.EOF && int64(n) == end-start {
		err = nil
	}
	return b[:n], err
}

// GapsIn returns the gaps that overlap [start, end).
func (h *Half) GapsIn(start, end int64) []Range {
	var out []Range
	for _, g := range h.Gaps {
		if g.End > start && g.Start < end {
			out = append(out, Range{max(g.Start, start), min(g.End, end)})
		}
	}
	return out
}

// Conn is a TCP connection. Client is the side that sent the SYN, or,
// without one, the side with the higher (ephemeral) port; either Half may
// be nil when the capture holds only the other direction.
type Conn struct {
	ID             int // order of the first packet, from 1
	Client, Server Endpoint
	ToServer       *Half // client → server
	ToClient       *Half // server → client
	Frames         Frames
}

// Close releases both halves.
func (c *Conn) Close() error {
	err1 := c.ToServer.Close()
	err2 := c.ToClient.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// Datagram is one UDP datagram (TFTP).
type Datagram struct {
	Src, Dst Endpoint
	Frame    int
	Time     time.Time
	Payload  []byte
}

// Warning is something the reader or reassembler lost or doubted: a
// truncated capture, a corrupt block, an unknown link type, a gap.
type Warning struct {
	Frame   int    // 0 when not about one frame
	Message string // what was lost, in words
}

func (w Warning) String() string {
	if w.Frame > 0 {
		return fmt.Sprintf("frame %d: %s", w.Frame, w.Message)
	}
	return w.Message
}

// Object is a file a protocol extractor found: a download over FTP, an
// HTTP body, a mail attachment, a TFTP transfer.
type Object struct {
	Protocol string // "ftp", "http", "smtp", "tftp"
	// Name is the file's name as the protocol gave it (RETR argument, the
	// 150 reply, Content-Disposition, the URL's last segment, the
	// attachment's filename): untrusted, the caller sanitizes it.
	Name string
	// NameFrom says where Name came from ("RETR", "150 reply", "STOR",
	// "URL", "Content-Disposition", …); "" when the extractor made one up.
	NameFrom string
	Data     io.ReaderAt
	Size     int64
	// Flow is the connection (or datagram flow) that carried the bytes;
	// Control the FTP control connection that announced it, if any.
	Flow, Control FlowRef
	Frames        Frames
	Ranges        []Range // the byte ranges of Flow's data direction that make the object
	Gaps          []Range // ranges of the object (its own offsets) that were not captured
	ExpectedSize  int64   // the size the protocol announced (150/213 reply, Content-Length), -1 when unknown
	Complete      bool    // the protocol said the transfer finished (226, a final chunk, the last TFTP block)
	Notes         []string
	Decoded       []string // transformations already applied: "chunked", "gzip", "base64" (mail), "REST 1024 stitched"
	ContentType   string
	close         func() error
}

// FlowRef names a flow in the evidence: its endpoints and, for TCP, the
// connection's ID.
type FlowRef struct {
	Proto    string // "tcp" or "udp"
	Src, Dst Endpoint
	Conn     int
}

// SetClose sets what Close releases.
func (o *Object) SetClose(f func() error) { o.close = f }

// Close releases the object's storage.
func (o *Object) Close() error {
	if o.close == nil {
		return nil
	}
	c := o.close
	o.close = nil
	return c()
}
