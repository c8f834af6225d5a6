// Package tftp extracts the files of TFTP transfers (RFC 1350, with the
// RFC 2347 option extension and RFC 2348 blksize, RFC 2349 tsize) from
// UDP datagrams.
//
// A request (RRQ or WRQ) goes to port 69; the server answers from a new
// port, and the transfer runs between the client's port and that one.
// Each flow's packets are given to the latest request its client port
// sent before them; the server sends DATA for RRQ, the client for WRQ.
// A flow no captured request explains is taken for a transfer when every
// packet in it parses as TFTP, none uses a well-known port (DNS, NTP, …)
// and DATA block 1 is there; it is named "tftp-<port>" after the sending
// port.
//
// The block size is the OACK's blksize, else 512, raised to the largest
// DATA seen when the OACK was not captured; tsize (the OACK's for RRQ,
// the request's for WRQ) is the expected size. Blocks are placed by
// number: retransmitted copies are dropped (differing copies noted),
// numbers past 65535 unwrapped (to 0 or to 1, whichever the capture
// shows), missing blocks are the object's Gaps, and the first block
// shorter than the block size ends the file. Objects are views of the
// datagrams' payloads (proto.Assembly).
package tftp
