package unpack

import (
	"bytes"
	"encoding/binary"
	"io"
	"strconv"
)

// Formats: what a node's content is, recognised by magic bytes (never by
// name), or text, data or empty.
const (
	FormatTar    = "tar"
	FormatGzip   = "gzip"
	FormatBzip2  = "bzip2"
	FormatZip    = "zip"
	FormatPcap   = "pcap"
	FormatPcapng = "pcapng"
	FormatXz     = "xz"
	Format7z     = "7z"
	FormatZstd   = "zstd"
	FormatRar    = "rar"
	FormatPNG    = "png"
	FormatJPEG   = "jpeg"
	FormatGIF    = "gif"
	FormatPDF    = "pdf"
	FormatELF    = "elf"
	FormatText   = "text"  // printable ratio at least textThreshold
	FormatData   = "data"  // anything else
	FormatEmpty  = "empty" // no bytes
)

// textThreshold is the printable ratio from which content counts as text,
// and from which a decoding's output is kept.
const textThreshold = 0.90

// sniffLen is how much of an object's start sniff reads.
const sniffLen = 4096

var magics = []struct {
	format string
	magic  string
}{
	{FormatGzip, "\x1f\x8b\x08"},
	{FormatZip, "PK\x03\x04"},
	{FormatZip, "PK\x05\x06"},
	{FormatZip, "PK\x07\x08PK\x03\x04"},
	{FormatPcap, "\xd4\xc3\xb2\xa1"},
	{FormatPcap, "\xa1\xb2\xc3\xd4"},
	{FormatPcap, "\x4d\x3c\xb2\xa1"},
	{FormatPcap, "\xa1\xb2\x3c\x4d"},
	{FormatXz, "\xfd7zXZ\x00"},
	{Format7z, "7z\xbc\xaf\x27\x1c"},
	{FormatZstd, "\x28\xb5\x2f\xfd"},
	{FormatRar, "Rar!\x1a\x07"},
	{FormatPNG, "\x89PNG\r\n\x1a\n"},
	{FormatJPEG, "\xff\xd8\xff"},
	{FormatGIF, "GIF87a"},
	{FormatGIF, "GIF89a"},
	{FormatPDF, "%PDF-"},
	{FormatELF, "\x7fELF"},
}

// sniff names the format whose magic h starts with, or "".
func sniff(h []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(h, []byte(m.magic)) {
			return m.format
		}
	}
	switch {
	case isBzip2(h):
		return FormatBzip2
	case isPcapng(h):
		return FormatPcapng
	case isTar(h):
		return FormatTar
	}
	return ""
}

// isBzip2: "BZh", a block size digit, then a block or end-of-stream magic.
func isBzip2(h []byte) bool {
	if len(h) < 10 || string(h[:3]) != "BZh" || h[3] < '1' || h[3] > '9' {
		return false
	}
	m := string(h[4:10])
	return m == "1AY&SY" || m == "\x17rE8P\x90"
}

// isPcapng: a Section Header Block with a byte-order magic.
func isPcapng(h []byte) bool {
	if len(h) < 12 || string(h[:4]) != "\x0a\x0d\x0d\x0a" {
		return false
	}
	bom := string(h[8:12])
	return bom == "\x1a\x2b\x3c\x4d" || bom == "\x4d\x3c\x2b\x1a"
}

// isTar recognises a tar header: the ustar magic at 257 (POSIX and GNU),
// or, for old V7 archives, a header whose checksum is right.
func isTar(h []byte) bool {
	if len(h) >= 262 && string(h[257:262]) == "ustar" {
		return true
	}
	if len(h) < 512 || h[0] == 0 {
		return false
	}
	field := bytes.Trim(h[148:156], " \x00")
	want, err := strconv.ParseUint(string(field), 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, b := range h[:512] {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += uint64(b)
	}
	return sum == want
}

// binaryFormat reports a recognised non-text format: a decoding that
// produces one is kept whatever its printable ratio.
func binaryFormat(f string) bool {
	switch f {
	case FormatText, FormatData, FormatEmpty, "":
		return false
	}
	return true
}

// archive reports the formats Walk unpacks.
func archive(f string) bool {
	switch f {
	case FormatTar, FormatGzip, FormatBzip2, FormatZip:
		return true
	}
	return false
}

// zipTail reports an end-of-central-directory record ending the content:
// a zip appended to an image or an executable (a polyglot), which
// archive/zip reads in place. Only non-archive content is checked.
func zipTail(ra io.ReaderAt, size int64) bool {
	const eocd = 22
	if size < eocd {
		return false
	}
	n := min(size, eocd+65535)
	tail := make([]byte, n)
	k, _ := ra.ReadAt(tail, size-n)
	tail = tail[:k]
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	if i < 0 || i+eocd > len(tail) {
		return false
	}
	comment := int(binary.LittleEndian.Uint16(tail[i+20:]))
	return i+eocd+comment == len(tail)
}

// commonBigrams are the thirty most frequent letter pairs of English.
var commonBigrams = func() (t [26 * 26]bool) {
	for _, p := range []string{"th", "he", "in", "er", "an", "re", "nd", "on", "en", "at",
		"ou", "ed", "ha", "to", "or", "it", "is", "hi", "es", "ng",
		"st", "ar", "te", "se", "al", "nt", "le", "ve", "as", "of"} {
		t[int(p[0]-'a')*26+int(p[1]-'a')] = true
	}
	return t
}()

// minBigrams is the fewest letter pairs english scores; below it, 0.
const minBigrams = 8

// english scores how much p reads like English: the share of adjacent
// letter pairs (case folded, inside words) that are among the thirty most
// common English bigrams. English prose scores about 0.4-0.5, random
// letters about 0.05, ROT13 of English about 0.1-0.15.
func english(p []byte) float64 {
	prev, pairs, hits := -1, 0, 0
	for _, b := range p {
		c := int(b | 0x20)
		if c < 'a' || c > 'z' {
			prev = -1
			continue
		}
		c -= 'a'
		if prev >= 0 {
			pairs++
			if commonBigrams[prev*26+c] {
				hits++
			}
		}
		prev = c
	}
	if pairs < minBigrams {
		return 0
	}
	return float64(hits) / float64(pairs)
}
