// Package forensics is noops pcap extract: it turns a network capture into
// the files that crossed the network, with the evidence for each one.
//
// # Pipeline
//
// Extract reads the capture with internal/forensics/pcap (pcap or pcapng,
// also gzipped; damage is skipped with warnings), feeds every TCP packet,
// and the UDP datagrams whose first bytes are a TFTP opcode, to the
// reassembler of internal/forensics/stream, and collects the connections
// it hands out. The idle timeout is an hour of capture time: CTF captures
// are stitched from sessions with long pauses, and a connection handed
// out early would be cut in two. Only when the capture is read do the
// four extractors of internal/forensics/proto run, since an FTP transfer
// needs its control and data connections together: ftp, httpx, smtp over
// the connections, tftp over the datagrams. Their objects are written in
// the order of their first frame.
//
// Each object goes to objects/<protocol>/<name> under the output
// directory, then internal/forensics/unpack walks the written file
// (archives, compression, text decodings, within its budgets) and every
// node of the tree is written below it: a node's children go to
// <node's file>.unpacked/<child's name>. A node that is a capture is
// extracted in its turn into <node's file>.extracted/<protocol>/...,
// its objects' chains continuing the chain of the node, down to
// Options.MaxDepth captures; the objects of a capture nested d deep
// unpack MaxDepth-d levels deep.
//
// # Evidence
//
// Every file written has an Entry in the Report: its path, SHA-256 and
// size; the protocol, the name as the protocol gave it and where it came
// from (RETR, the 150 reply when only the server was captured, a URL,
// Content-Disposition, a tar entry, a base64 decoding); the flow that
// carried it and, for FTP, the control connection; first and last frame
// with their times; the byte ranges of the stream that make it and the
// gaps the capture lacks; the size the protocol announced; whether it is
// complete; and the decode chain from the capture down to it
// (["capture.pcap", "ftp:secret.tar", "tar:inner.tar", "tar:flag.txt",
// "base64"]). The Report is written as manifest.json, and as a table
// (PATH, PROTO, SIZE, FLOW, FRAMES, COMPLETE/GAPS, CHAIN) with the flags
// found and every warning in summary.txt.
//
// Matches of Options.Flag are reported at the deepest node that holds
// them: a flag in a base64 file inside a tar is reported at the decoding,
// not at the tar nor at the capture that carried the tar.
//
// # Bad input and hostile names
//
// Damage never stops the extraction: a truncated capture, a corrupt
// block, a lost segment or a stream cut short gives the files as far as
// they go, with Gaps (zeros in the file) and a warning naming the file
// and the bytes lost. A transfer the protocol did not report complete is
// warned about even when no gap is known. Only a file that cannot be
// read as a capture at all is an error.
//
// Names from the capture are untrusted. An object's file name is the
// last component of the name the protocol gave, with control characters
// and invalid UTF-8 replaced; names inside archives are sanitized by
// unpack. Every file is created through an os.Root opened on the output
// directory, so no name, and no symbolic link planted in the directory,
// leads out of it; names are also checked to be local with filepath.Rel.
// A name already taken gets "~2", "~3" before its extension; an entry
// whose directory is a file ("a" and "a/b" in one archive) is flattened
// to "a_b". Files are written 0644, directories 0755, and never
// overwritten. Options.MaxOutput bounds the bytes written, against
// captures built to fill a disk.
package forensics
