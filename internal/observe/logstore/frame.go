package logstore

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
)

// A frame is one block on disk (see doc.go):
//
//	"LSB1" | index length u32 | body length u32 | crc32c(index) u32 | crc32c(body) u32 | crc32c(the 20 bytes before) u32
//	index | body
//
// The index is small and uncompressed, so Open reads only the indexes; the
// body is the block's raw form compressed (zstd in partition files, S2 in
// the write-ahead log).
const (
	frameMagic  = "LSB1"
	frameHeader = 24
	maxIndex    = 1 << 20
	maxBody     = maxRawBlock
)

// Codecs of a frame's body.
const (
	codecZstd = 1
	codecS2   = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Bits of the streams mask in an index; any other stream sets streamOther.
var streamBits = map[string]uint32{StreamStdout: 1, StreamStderr: 2, StreamAccess: 4, StreamPlatform: 8, StreamOTLP: 16}

const (
	streamOther = 32
	maxIndexApp = 64 // a block with more apps is marked as holding any app
)

func streamBit(s string) uint32 {
	if b, ok := streamBits[s]; ok {
		return b
	}
	return streamOther
}

// blockMeta is what the store keeps in memory of one frame: its index and
// where it is.
type blockMeta struct {
	path       string // the file
	off        int64  // where the frame starts
	idxLen     uint32
	bodyLen    uint32
	idxCRC     uint32
	bodyCRC    uint32
	codec      byte
	gen        uint64 // the head generation it was sealed from
	count      int
	minT, maxT int64 // microseconds since the epoch
	rawLen     int
	streams    uint32
	apps       []string // nil when manyApps
	manyApps   bool
	bloomOff   int // offset of the trace-ID bloom filter in the index
	bloomLen   int
	bloomK     byte
	seq        uint64 // order of arrival in this process, for stable merges
}

func (m *blockMeta) size() int64 { return frameHeader + int64(m.idxLen) + int64(m.bodyLen) }

func (m *blockMeta) hasApp(app string) bool {
	return m.manyApps || slices.Contains(m.apps, app)
}

// buildIndex returns the index of recs (sanitized) and fills m with it.
func buildIndex(recs []Record, codec byte, gen uint64, rawLen int, m *blockMeta) []byte {
	*m = blockMeta{codec: codec, gen: gen, count: len(recs), rawLen: rawLen}
	var ids int
	for i := range recs {
		r := &recs[i]
		t := r.Time.UnixMicro()
		if i == 0 || t < m.minT {
			m.minT = t
		}
		if i == 0 || t > m.maxT {
			m.maxT = t
		}
		m.streams |= streamBit(r.Stream)
		if !m.manyApps && !slices.Contains(m.apps, r.App) {
			if len(m.apps) == maxIndexApp {
				m.manyApps, m.apps = true, nil
			} else {
				m.apps = append(m.apps, r.App)
			}
		}
		if r.TraceID != "" {
			ids++
		}
	}
	b := []byte{codec}
	b = binary.AppendUvarint(b, gen)
	b = binary.AppendUvarint(b, uint64(m.count))
	b = binary.AppendVarint(b, m.minT)
	b = binary.AppendVarint(b, m.maxT)
	b = binary.AppendUvarint(b, uint64(rawLen))
	b = binary.AppendUvarint(b, uint64(m.streams))
	if m.manyApps {
		b = append(b, 1)
	} else {
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(m.apps)))
		for _, a := range m.apps {
			b = binary.AppendUvarint(b, uint64(len(a)))
			b = append(b, a...)
		}
	}
	// The bloom filter: bloomBits per trace ID, bloomK probes.
	nbytes := 0
	if ids > 0 && codec == codecZstd {
		nbytes = (ids*bloomBits + 7) / 8
	}
	b = append(b, bloomK)
	b = binary.AppendUvarint(b, uint64(nbytes))
	m.bloomK, m.bloomOff, m.bloomLen = bloomK, len(b), nbytes
	b = slices.Grow(b, nbytes)[:len(b)+nbytes]
	bloom := b[m.bloomOff:]
	if nbytes > 0 {
		for i := range recs {
			if id := recs[i].TraceID; id != "" {
				bloomAdd(bloom, bloomK, id)
			}
		}
	}
	return b
}

// parseIndex reads an index written by buildIndex.
func parseIndex(b []byte, m *blockMeta) error {
	c := column{s: string(b), end: len(b)}
	m.codec = c.byte()
	m.gen = c.uvarint()
	count := c.uvarint()
	m.minT = c.varint()
	m.maxT = c.varint()
	raw := c.uvarint()
	streams := c.uvarint()
	if c.bad || count > maxBlockRecords || raw > maxRawBlock || m.minT > m.maxT || streams > 0xffff {
		return fmt.Errorf("%w: bad index", errCorrupt)
	}
	m.count, m.rawLen, m.streams = int(count), int(raw), uint32(streams)
	switch c.byte() {
	case 0:
		n := c.uvarint()
		if n > maxIndexApp {
			return fmt.Errorf("%w: bad index", errCorrupt)
		}
		m.apps = make([]string, 0, n)
		for range n {
			m.apps = append(m.apps, c.str())
		}
	case 1:
		m.manyApps = true
	default:
		c.bad = true
	}
	m.bloomK = c.byte()
	nb := c.uvarint()
	if c.bad || nb != uint64(c.end-c.off) || m.bloomK > 16 || (m.codec != codecZstd && m.codec != codecS2) {
		return fmt.Errorf("%w: bad index", errCorrupt)
	}
	m.bloomOff, m.bloomLen = c.off, int(nb)
	return nil
}

// The trace-ID bloom filter: 5 bits per ID and 3 probes (about 9% false
// positives, 0.6 bytes per record), probes by double hashing of the ID.
const (
	bloomBits = 5
	bloomK    = 3
)

func bloomHashes(id string) (uint64, uint64) {
	var h1, h2 uint64
	if isHex(id, 32) {
		var b [16]byte
		hex.Decode(b[:], []byte(id))
		h1, h2 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	} else {
		h1, h2 = 14695981039346656037, 1099511628211
		for i := 0; i < len(id); i++ {
			h1 = (h1 ^ uint64(id[i])) * 1099511628211
			h2 = h2*31 + uint64(id[i])
		}
	}
	// Mix, so that IDs chosen by a client do not all land on a few bits.
	return mix(h1), mix(h2) | 1
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func bloomAdd(bits []byte, k byte, id string) {
	h1, h2 := bloomHashes(id)
	m := uint64(len(bits)) * 8
	for i := range uint64(k) {
		p := (h1 + i*h2) % m
		bits[p/8] |= 1 << (p % 8)
	}
}

func bloomTest(bits []byte, k byte, id string) bool {
	if len(bits) == 0 {
		return false
	}
	h1, h2 := bloomHashes(id)
	m := uint64(len(bits)) * 8
	for i := range uint64(k) {
		p := (h1 + i*h2) % m
		if bits[p/8]&(1<<(p%8)) == 0 {
			return false
		}
	}
	return true
}

// appendFrame appends the frame of index and body to dst.
func appendFrame(dst, index, body []byte) []byte {
	var h [frameHeader]byte
	copy(h[:], frameMagic)
	binary.LittleEndian.PutUint32(h[4:], uint32(len(index)))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(body)))
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(index, castagnoli))
	binary.LittleEndian.PutUint32(h[16:], crc32.Checksum(body, castagnoli))
	binary.LittleEndian.PutUint32(h[20:], crc32.Checksum(h[:20], castagnoli))
	dst = append(dst, h[:]...)
	dst = append(dst, index...)
	return append(dst, body...)
}

// scanFrames reads the indexes of the frames of the file f (size bytes
// long) from its start. It stops at the first frame that is cut short or
// fails a checksum and returns where the good frames end: a crash leaves
// at most a torn last frame, which the caller cuts off. The last frame's
// body is checked too, since a crash can leave a frame whose length made
// it to disk but not all of its data. With wantBodies it also returns the
// bodies (for the write-ahead log).
func scanFrames(f io.ReaderAt, path string, size int64, wantBodies bool) (metas []*blockMeta, bodies [][]byte, end int64, err error) {
	var h [frameHeader]byte
	for end < size {
		if size-end < frameHeader {
			return metas, bodies, end, fmt.Errorf("%w: %d bytes of a torn frame header at %d", errCorrupt, size-end, end)
		}
		if _, err := f.ReadAt(h[:], end); err != nil {
			return metas, bodies, end, fmt.Errorf("reading %s at %d: %w", path, end, err)
		}
		il, bl := binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[8:])
		if string(h[:4]) != frameMagic || binary.LittleEndian.Uint32(h[20:]) != crc32.Checksum(h[:20], castagnoli) ||
			il > maxIndex || bl > maxBody {
			return metas, bodies, end, fmt.Errorf("%w: bad frame header at %d", errCorrupt, end)
		}
		m := &blockMeta{path: path, off: end, idxLen: il, bodyLen: bl, bodyCRC: binary.LittleEndian.Uint32(h[16:])}
		if end+m.size() > size {
			return metas, bodies, end, fmt.Errorf("%w: frame at %d cut short", errCorrupt, end)
		}
		idx := make([]byte, il)
		if _, err := f.ReadAt(idx, end+frameHeader); err != nil {
			return metas, bodies, end, fmt.Errorf("reading %s at %d: %w", path, end, err)
		}
		m.idxCRC = binary.LittleEndian.Uint32(h[12:])
		if crc32.Checksum(idx, castagnoli) != m.idxCRC {
			return metas, bodies, end, fmt.Errorf("%w: index checksum at %d", errCorrupt, end)
		}
		if err := parseIndex(idx, m); err != nil {
			return metas, bodies, end, fmt.Errorf("%w at %d", err, end)
		}
		last := end+m.size() == size
		if wantBodies || last {
			body, err := readBody(f, m)
			if err != nil {
				return metas, bodies, end, err
			}
			if wantBodies {
				bodies = append(bodies, body)
			}
		}
		metas = append(metas, m)
		end += m.size()
	}
	return metas, bodies, end, nil
}

// readBody reads and checks the body of the frame m.
func readBody(f io.ReaderAt, m *blockMeta) ([]byte, error) {
	body := make([]byte, m.bodyLen)
	if _, err := f.ReadAt(body, m.off+frameHeader+int64(m.idxLen)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: block at %d cut short", errCorrupt, m.off)
		}
		return nil, fmt.Errorf("reading %s at %d: %w", m.path, m.off, err)
	}
	if crc32.Checksum(body, castagnoli) != m.bodyCRC {
		return nil, fmt.Errorf("%w: body checksum at %d", errCorrupt, m.off)
	}
	return body, nil
}

// readBloom reads (and checks) the index of the frame m and returns its
// trace-ID bloom filter.
func readBloom(f io.ReaderAt, m *blockMeta) ([]byte, error) {
	b := make([]byte, m.idxLen)
	if _, err := f.ReadAt(b, m.off+frameHeader); err != nil {
		return nil, fmt.Errorf("reading %s at %d: %w", m.path, m.off, err)
	}
	if crc32.Checksum(b, castagnoli) != m.idxCRC || m.bloomOff+m.bloomLen > len(b) {
		return nil, fmt.Errorf("%w: index checksum at %d", errCorrupt, m.off)
	}
	return b[m.bloomOff : m.bloomOff+m.bloomLen], nil
}

// fileSize returns the size of an open file.
func fileSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
