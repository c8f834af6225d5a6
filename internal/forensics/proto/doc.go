// Package proto holds what the protocol extractors under
// internal/forensics/proto share: an Assembly that places pieces of
// reassembled streams at offsets of an object without copying them, a
// Buffer that keeps decoded bytes in memory and moves them to an unlinked
// temporary file when they grow, a LineReader that returns lines with
// their stream offsets, and the parser for the "NNN text" replies FTP and
// SMTP servers send.
//
// Objects the extractors return may read from the Conns' storage (an
// undecoded HTTP body or an FTP download is a view of the reassembled
// stream, not a copy), so the caller closes the Conns only after it has
// consumed the objects; decoded objects own their storage and are
// released by Object.Close.
package proto
