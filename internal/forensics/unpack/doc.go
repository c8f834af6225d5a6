// Package unpack recursively unpacks and decodes one extracted object —
// a file carved from FTP, HTTP, SMTP or TFTP by noops pcap — into a tree
// of Nodes: archive entries, decompressed streams and text decodings,
// each with its SHA-256, its decode chain from the capture down to it
// ("ftp:secret.tar" > "tar:inner.tar" > "tar:flag.txt" > "base64"), the
// matches of the --flag pattern, and warnings that say what was lost.
//
// # Recognition
//
// Content is recognised by magic bytes, never by name: gzip (1f 8b 08),
// bzip2 ("BZh" + level + block magic), zip (PK\x03\x04, or an end record
// closing other content: a zip appended to an image), tar (the ustar
// magic at 257, or a V7 header whose checksum is right), pcap and pcapng
// captures, and a few formats recognised but not unpacked (xz, 7z, zstd,
// rar: a warning says so; png, jpeg, gif, pdf, elf). Anything else is
// "text" when its printable ratio is at least 0.90, else "data".
// Captures are not parsed here: Node.IsCapture tells the caller to
// recurse with its capture extractor.
//
// # Archives
//
// Tar and zip entries become children named by a sanitized entry name
// (no absolute paths, no "..", no control characters; duplicates get
// "~2"); the original is kept in Node.Original and a hostile one is
// warned about. Symbolic and hard links, devices and fifos are recorded
// as warnings, never followed or created. A zip whose central directory
// is unreadable (a truncated zip) or whose entries all fail to open is
// read from its local headers, data descriptors included. A truncated
// archive or stream gives what was recovered, marked Truncated, with a
// warning saying how much; a bad CRC is a warning on a complete object.
// Data after a gzip stream that is not another member is reported with
// its offset and size.
//
// # Text decodings and their scoring
//
// Text objects (printable ratio ≥ 0.90) are tried, in this order:
//
//   - Whole-content hex, base32, base64 (the first kept wins): at least
//     16 non-whitespace characters of which 95% are in the alphabet; hex
//     may hold spaces and ':' separators; base32 and base64 text may not
//     hold spaces (at most one per 64 characters), so prose is not tried;
//     base64 whose every character is in the alphabet must have a length
//     that is not 1 mod 4. Base64 takes both the standard and URL-safe
//     alphabets; '=' ends a group, so concatenated padded blobs decode.
//   - Quoted-printable, when "=XX" escapes come with a soft line break,
//     or when at least three escapes are, half or more, of bytes QP must
//     escape (0x80 and above, '=', space, tab): "x=10" is not QP.
//   - uuencode, for every "begin MODE NAME" block (and "begin-base64"):
//     always kept, named by the begin line; a block without "end" is kept
//     and marked Truncated.
//   - Embedded strings, when no whole-content decoding was kept: in the
//     first 1 MiB, runs of 16 or more base64-alphabet characters (with
//     their '=' padding; a run continues across a line break after a line
//     of 40 or more, for wrapped base64) are tried as hex when all hex,
//     base32 when all base32, then base64. The chain element gives the
//     offset: "base64@120". At most 256 runs per object.
//   - ROT13, on text that is at least half letters (8 or more), when no
//     whole-content decoding was kept.
//
// A decoding is kept when, in this order: its output matches the flag
// pattern where its input did not; or its output is a recognised format
// (gzip, png, a capture...); or, for ROT13, the English score of its
// output is at least 0.25 and 0.10 above its input's; or, for the others,
// the printable ratio of its output is at least 0.90. The English score
// is the share of adjacent letter pairs, among the first 64 KiB, that are
// among the thirty commonest English bigrams: prose scores 0.4-0.5,
// ROT13 of prose and random letters 0.05-0.15. ROT13 is also kept when
// its input looks base64/base32/hex and its output decodes further (ROT13
// of base64); the rotation is first judged on a 64 KiB sample, and the
// whole content is rotated only when the sample passes or, with a flag
// pattern, when the rotated stream matches it. The printable ratio counts
// printable ASCII, tab, CR, LF and well-formed UTF-8, or printable
// UTF-16LE pairs. Node.Score and Node.Why record the judged value and
// verdict. A decoy — random letters that are valid base64 — decodes to
// about 37% printable and is dropped, counted in Node.Attempts, the
// first sixteen listed in Node.Rejected with their scores.
//
// Decodings chain (base64 of hex of ROT13, base64 of gzip of tar ...)
// since every kept output is examined again, down to MaxDepth.
//
// # Flags
//
// With Options.Flag set, every object's whole content is searched as it
// is produced, in 256 KiB windows overlapping by 4 KiB: a match of up to
// 4 KiB is found wherever it is, including at the end of a decoded blob.
// At most 32 distinct matches of at most 512 bytes are kept per object.
//
// # Budgets
//
// MaxDepth bounds the chain; MaxTotal the bytes produced by the whole
// walk (kept objects; a rejected decoding's bytes are given back);
// MaxRatio the output of each step against its input (a zip entry's
// compressed size, a gzip file's size), never below MinExpansion;
// MaxEntries the entries per archive; MaxNodes the objects in the tree.
// When one is hit, that branch stops with a warning naming what was lost
// and the walk goes on with the others. Content is held in memory up to
// MaxMemory across the tree, then in temporary files in a private
// directory under TempDir, removed by the root's Close; nothing is
// written anywhere else. A 42.zip-like nest or a 1000:1 entry thus costs
// at most MaxTotal bytes and the time to produce them.
//
// Walk never panics: a panic in a step, which would be a bug, is recovered
// into a warning on the object being unpacked.
package unpack
