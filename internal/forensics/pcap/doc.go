// Package pcap reads network captures into TCP and UDP packets for noops
// pcap, and records a sandbox's traffic for noops capture. It is pure Go:
// no libpcap, no cgo.
//
// # Reading
//
// Open recognises the file by its magic number: pcap in either byte order
// with micro- or nanosecond timestamps (and the "modified" variant with
// longer record headers), pcapng, and either of them gzip-compressed.
// Next returns one Packet per TCP or UDP frame; everything else is
// counted in Stats by reason, and whatever was lost is described in
// Warnings.
//
// The record and block framing is read here rather than with gopacket's
// pcapgo readers, because those stop for good at the first damaged
// record: they return an error mid-block with no way to continue, accept
// a pcapng block whose trailing length contradicts its leading one, and
// cannot say at which offset or frame the damage is. This reader reads
// through a byte window (source) that it can scan forward in, so:
//
//   - a file cut short yields every frame before the cut, the cut frame
//     decoded as far as it goes (marked Truncated), and a warning giving
//     the frame and how many bytes of it were read;
//   - a corrupt record header (pcap) or block (pcapng: an impossible
//     length, or leading and trailing lengths that differ) is answered by
//     scanning at most 64 MiB forward for the next plausible record: for
//     pcap, a sane header followed by another sane header or the end of
//     the file; for pcapng, a known block type whose trailing length
//     matches. The warning says how many bytes were skipped. Frame numbers
//     after a resync may differ from Wireshark's, which stops there;
//   - no length from the file is allocated before its bytes have been
//     read, and no record or block over 64 MiB is taken, so a hostile
//     file costs memory in proportion to its size at most;
//   - pcapng sections may differ in byte order; interfaces may differ in
//     link type and timestamp resolution (if_tsresol, if_tsoffset);
//     Enhanced, Simple and obsolete Packet Blocks are read; a section of
//     an unknown major version is skipped with a warning; blocks of
//     unknown types are skipped and tallied.
//
// # Decoding
//
// Headers are decoded by hand, without allocation beyond the Packet, so
// that every length is checked against both the captured bytes and the
// lengths the headers state: a frame the snap length cut yields a Packet
// with the captured part of its payload, Truncated set and WireLen the
// length on the wire. The tests compare this decoder with gopacket's
// layers on generated and fuzzed frames. Links: Ethernet (VLAN 802.1Q and
// QinQ tags, PPPoE, MPLS, 802.2 SNAP), Linux cooked SLL and SLL2, BSD
// Null and OpenBSD Loop, raw IP (101, and 12 and 14 as some tools write
// it), IPv4 (228) and IPv6 (229). IPv6 extension headers are followed to
// TCP or UDP. IPv4 and IPv6 fragments are reassembled (defrag.go states
// the rules and budgets); a datagram that cannot be completed is
// reported with the frames and bytes it held.
//
// # Writing and capturing
//
// Writer writes pcapng with gopacket's pcapgo. Capture records an
// interface with an AF_PACKET socket bound to it (Linux, root or
// CAP_NET_RAW), with kernel timestamps, VLAN tags put back from the
// auxiliary data, and the kernel's drop count in a closing Interface
// Statistics Block.
package pcap
