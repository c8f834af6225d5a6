package stream

import (
	"time"

	"noops/internal/forensics/flow"
)

// Protocol numbers of Packet.Proto.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// Packet is one decoded TCP or UDP packet, as the capture reader
// (internal/forensics/pcap) produces it; the fields are the same as
// pcap.Packet's so that one converts to the other.
type Packet struct {
	Frame    int // 1-based frame number in the capture
	Time     time.Time
	Src, Dst flow.Endpoint
	Proto    uint8 // ProtoTCP or ProtoUDP; others are counted and ignored
	Seq, Ack uint32
	SYN, ACK bool
	FIN, RST bool
	PSH      bool
	// Payload is the transport payload. The Assembler copies what it
	// keeps, so the caller may reuse the buffer after Add returns.
	Payload []byte
	// Truncated says the frame was captured shorter than it was on the
	// wire (snaplen): Payload is a prefix of the real payload, whose
	// length is WireLen when known (0 when not).
	Truncated bool
	WireLen   int
}
