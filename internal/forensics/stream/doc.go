// Package stream reassembles TCP connections and passes UDP datagrams
// through, for noops pcap: an Assembler takes decoded packets in capture
// order and hands out flow.Conns (each direction a flow.Half: bytes,
// gaps, overlaps, frames) and flow.Datagrams.
//
// # Why not gopacket's reassembly
//
// github.com/gopacket/gopacket/reassembly is built for live sniffing: it
// delivers bytes as soon as they are contiguous and forgets them. For
// forensics that loses data. Without the SYN (a capture of one side,
// or one started late) AllowMissingInit makes the first packet the
// start of the stream, so a segment with a lower sequence number that
// arrives later, which is common in the captures this tool is for, is
// dropped as old data. Its overlap handling depends on timing (bytes
// already delivered keep the old copy, queued bytes take the new one),
// it counts overlapping bytes without saying where or whether they
// differed, it reports gaps only as a count of skipped bytes, and its
// memory limits flush (lose order) instead of moving data to disk. This
// package keeps every byte until the connection is handed out, which
// needs its own design; Wireshark, for comparison, does not reorder
// out-of-order segments by default (tcp.reassemble_out_of_order is off).
//
// # Design
//
// Each direction keeps its segments by position: a relative sequence
// number, an int64 read near the highest position seen, so streams may
// wrap past 2^32 and exceed 4 GiB, and offsets are fixed only when the
// connection is handed out. Offset 0 is the byte after the SYN when it
// was seen; otherwise the lowest position any evidence shows: a segment,
// the FIN, or an ACK from the other side. The end is the highest such
// evidence. So a capture holding only the client's packets still knows
// how far the server's stream went (the client's ACKs), and reports the
// bytes it never saw as a gap; a capture holding only the server's
// packets, shuffled, gives the server's bytes exactly.
//
// New bytes are appended once, in arrival order, to a store (memory
// chunks, or an unlinked temporary file shared by every direction that
// spills, with a write buffer), and an index of extents maps positions
// to the store. The index is a list of sorted blocks, so a segment that
// arrives out of order costs O(log n) to place, and an in-order stream
// is a single extent. A segment over bytes already held is compared with
// them: equal bytes are a retransmission (counted, dropped); different
// bytes are an overlap, recorded as the range that differs and resolved
// by Options.Overlap: FirstWins by default (the captured original
// stands, as in Windows, and as in the "bsd" policy Suricata and Snort
// apply by default except where the new segment starts earlier), or
// LastWins. A one-byte segment at the last position already held is a
// keep-alive probe (Windows sends one garbage byte) and is ignored. A
// handed-out Half reads through the same index (zeros in gaps), so
// reassembly copies each byte once.
//
// Gaps are the ranges between offset 0 and the end that no segment
// covered: a lost segment, the part of a segment cut by the capture's
// snaplen (from Packet.WireLen), or a start or end that SYN, FIN or ACK
// numbers prove was sent but not captured.
//
// # Connections
//
// A connection is keyed by its 4-tuple. The client is the sender of the
// SYN, or the receiver of the SYN-ACK, or without a handshake the side
// with the higher (ephemeral) port, or, ports equal, the sender of the
// first packet. A direction with no packets is a nil Half unless the
// other side's ACKs prove it sent bytes: then it is a Half of that size
// that is all gap. Sequence numbers cannot prove the end of a stream
// whose FIN was not captured; an ACK that advanced by exactly one, or
// that is one past the captured data, is taken to acknowledge a FIN
// rather than a byte.
//
// A connection is handed out as soon as it is complete (both directions
// ended by a FIN or the connection by a RST, each direction's start
// known from its SYN, no byte missing), when it saw no packet for
// IdleTimeout of capture time, or at Flush; connections handed out
// together go in the order of their first packet. After a complete
// connection its 4-tuple is remembered for IdleTimeout: ACKs and
// retransmissions of what it held are absorbed; a SYN or new data starts
// a new connection. A SYN on an open connection with a different initial
// sequence number (port reuse), or a segment more than 1 GiB from what a
// direction has shown (no TCP window is that large), also ends the
// connection and starts a new one, with a warning.
//
// # Bounded memory
//
// Bytes kept per direction are capped by Options.MaxConnBytes (the rest
// becomes gaps, with a warning). Memory is kept under Options.MemoryBytes,
// counting the bytes and bookkeeping of open connections and the bytes
// of handed-out Halves not closed yet (a caller may hold an FTP session's
// data connections until its control connection ends): past it the
// directions holding the most bytes move to the spill file, handed-out
// ones included (their reads take a lock, so this is safe while they
// are read), and if the open connections' bookkeeping alone is still
// over (a hostile capture of millions of connections, or of millions of
// disjoint one-byte segments), the least recently active connections
// are handed out early. Sparse sequence numbers cost nothing, since only
// bytes received are stored. Warnings are kept word for word up to a
// limit, then counted.
//
// A handed-out Conn owns its bytes (memory or a share of the spill
// file); the caller must Close it. The extent index of a handed-out Half
// stays in memory (about 24 bytes per out-of-order run).
package stream
