package tracestore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// A block on disk is a fixed header, the zstd-compressed trace table and
// the zstd-compressed payload:
//
//	 0  magic "NTB1"
//	 4  version (1), 3 reserved bytes (0)
//	 8  span count                 u32
//	12  trace table, uncompressed  u32
//	16  trace table, compressed    u32
//	20  payload, uncompressed      u32
//	24  payload, compressed        u32
//	28  CRC-32C of the compressed trace table
//	32  CRC-32C of the compressed payload
//	36  smallest span start, ns    i64 (the base of the sections' times)
//	44  largest span start, ns     i64
//	52  CRC-32C of bytes 0-51
//
// All integers are little-endian.
const (
	headerSize = 56
	blockMagic = "NTB1"
	// maxSection bounds a section's sizes, compressed and not, so that a
	// corrupt header cannot make a reader allocate without limit.
	maxSection = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is a block's header, decoded.
type header struct {
	spans                int
	tableRaw, tableLen   int
	payloadRaw, payLen   int
	tableCRC, payloadCRC uint32
	minStart, maxStart   int64
}

// size is the block's length on disk.
func (h *header) size() int64 { return headerSize + int64(h.tableLen) + int64(h.payLen) }

func (h *header) marshal() []byte {
	b := make([]byte, headerSize)
	copy(b, blockMagic)
	b[4] = 1
	le := binary.LittleEndian
	le.PutUint32(b[8:], uint32(h.spans))
	le.PutUint32(b[12:], uint32(h.tableRaw))
	le.PutUint32(b[16:], uint32(h.tableLen))
	le.PutUint32(b[20:], uint32(h.payloadRaw))
	le.PutUint32(b[24:], uint32(h.payLen))
	le.PutUint32(b[28:], h.tableCRC)
	le.PutUint32(b[32:], h.payloadCRC)
	le.PutUint64(b[36:], uint64(h.minStart))
	le.PutUint64(b[44:], uint64(h.maxStart))
	le.PutUint32(b[52:], crc32.Checksum(b[:52], castagnoli))
	return b
}

func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, corruptf("header of %d bytes", len(b))
	}
	if string(b[:4]) != blockMagic {
		return h, corruptf("bad magic %q", b[:4])
	}
	le := binary.LittleEndian
	if got, want := crc32.Checksum(b[:52], castagnoli), le.Uint32(b[52:]); got != want {
		return h, corruptf("header checksum %08x, want %08x", got, want)
	}
	if b[4] != 1 {
		return h, corruptf("block version %d", b[4])
	}
	h.spans = int(le.Uint32(b[8:]))
	h.tableRaw = int(le.Uint32(b[12:]))
	h.tableLen = int(le.Uint32(b[16:]))
	h.payloadRaw = int(le.Uint32(b[20:]))
	h.payLen = int(le.Uint32(b[24:]))
	h.tableCRC = le.Uint32(b[28:])
	h.payloadCRC = le.Uint32(b[32:])
	h.minStart = int64(le.Uint64(b[36:]))
	h.maxStart = int64(le.Uint64(b[44:]))
	for _, n := range []int{h.tableRaw, h.tableLen, h.payloadRaw, h.payLen} {
		if n > maxSection {
			return h, corruptf("section of %d bytes over the limit", n)
		}
	}
	if h.maxStart < h.minStart {
		return h, corruptf("start range %d..%d", h.minStart, h.maxStart)
	}
	return h, nil
}

// codecs holds the zstd encoder and decoder; both are safe for concurrent
// EncodeAll and DecodeAll.
type codecs struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newCodecs() (*codecs, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), 4)), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, fmt.Errorf("starting the zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxSection), zstd.WithDecoderConcurrency(2))
	if err != nil {
		return nil, fmt.Errorf("starting the zstd decoder: %w", err)
	}
	return &codecs{enc: enc, dec: dec}, nil
}

func (c *codecs) close() {
	_ = c.enc.Close()
	c.dec.Close()
}

// encodeBlock builds a block of spans (all with valid IDs, bounded).
func (c *codecs) encodeBlock(spans []*Span) ([]byte, header, []traceEntry) {
	rs := make([]rawSpan, len(spans))
	h := header{spans: len(spans)}
	for i, s := range spans {
		rs[i] = toRaw(s)
		st := s.Start.UnixNano()
		if i == 0 || st < h.minStart {
			h.minStart = st
		}
		if i == 0 || st > h.maxStart {
			h.maxStart = st
		}
	}
	sortRaw(rs)
	table := buildTable(rs)
	rawTable := encodeTable(nil, table, h.minStart)
	rawPayload := encodePayload(nil, rs, h.minStart)
	zt := c.enc.EncodeAll(rawTable, nil)
	zp := c.enc.EncodeAll(rawPayload, nil)
	h.tableRaw, h.tableLen = len(rawTable), len(zt)
	h.payloadRaw, h.payLen = len(rawPayload), len(zp)
	h.tableCRC = crc32.Checksum(zt, castagnoli)
	h.payloadCRC = crc32.Checksum(zp, castagnoli)
	b := make([]byte, 0, h.size())
	b = append(b, h.marshal()...)
	b = append(b, zt...)
	b = append(b, zp...)
	return b, h, table
}

// section checks and decompresses one compressed section.
func (c *codecs) section(what string, z []byte, crc uint32, raw int) ([]byte, error) {
	if got := crc32.Checksum(z, castagnoli); got != crc {
		return nil, corruptf("%s checksum %08x, want %08x", what, got, crc)
	}
	out, err := c.dec.DecodeAll(z, make([]byte, 0, raw))
	if err != nil {
		return nil, corruptf("decompressing the %s: %v", what, err)
	}
	if len(out) != raw {
		return nil, corruptf("%s of %d bytes, want %d", what, len(out), raw)
	}
	return out, nil
}

// table decodes a block's trace table from its compressed bytes.
func (c *codecs) table(h *header, z []byte) ([]traceEntry, error) {
	raw, err := c.section("trace table", z, h.tableCRC, h.tableRaw)
	if err != nil {
		return nil, err
	}
	return decodeTable(raw, h.minStart)
}

// payload decodes a block's spans (only those of one trace when only is
// set) from its compressed bytes.
func (c *codecs) payload(h *header, z []byte, only *[16]byte) ([]Span, error) {
	raw, err := c.section("payload", z, h.payloadCRC, h.payloadRaw)
	if err != nil {
		return nil, err
	}
	spans, err := decodePayload(raw, h.minStart, only)
	if err == nil && only == nil && len(spans) != h.spans {
		err = corruptf("%d spans, the header says %d", len(spans), h.spans)
	}
	return spans, err
}

// decodeBlock decodes a whole block held in memory: its header, trace
// table and spans. It is what FuzzDecodeBlock exercises; the store reads
// the sections separately.
func (c *codecs) decodeBlock(b []byte) (header, []traceEntry, []Span, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, nil, nil, err
	}
	if int64(len(b)) < h.size() {
		return h, nil, nil, corruptf("block of %d bytes, the header says %d", len(b), h.size())
	}
	z := b[headerSize:]
	table, err := c.table(&h, z[:h.tableLen])
	if err != nil {
		return h, nil, nil, err
	}
	spans, err := c.payload(&h, z[h.tableLen:h.tableLen+h.payLen], nil)
	return h, table, spans, err
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
