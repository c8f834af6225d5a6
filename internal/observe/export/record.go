package export

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A record is one queued batch in a segment file:
//
//	length  uint32, little endian: the payload's length
//	crc     uint32, little endian: CRC-32C of the payload followed by seq
//	seq     uint64, little endian: the batch's sequence number
//	payload length bytes: the serialized Export*ServiceRequest
//
// A segment file is the 8-byte segmentMagic followed by records.
const (
	recordHeader = 16
	// maxRecordPayload bounds one batch, so that a corrupt length cannot
	// make a reader allocate without end.
	maxRecordPayload = 64 << 20
	segmentMagic     = "NOOPSQ1\n"
	magicLen         = int64(len(segmentMagic))
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errTorn is a record cut short: the end of a file a crash interrupted.
	errTorn = errors.New("record cut short")
	// errCorrupt is a record whose length or checksum is wrong.
	errCorrupt = errors.New("record corrupt")
)

// payloadCRC is the checksum of a payload alone; sealRecord extends it
// with the sequence number, which is known only once the record is queued.
func payloadCRC(payload []byte) uint32 { return crc32.Checksum(payload, castagnoli) }

func recordCRC(pcrc uint32, seq uint64) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	return crc32.Update(pcrc, castagnoli, s[:])
}

// sealRecord fills the header of rec, whose payload starts at
// rec[recordHeader:], for sequence number seq; pcrc is payloadCRC of the
// payload.
func sealRecord(rec []byte, seq uint64, pcrc uint32) {
	binary.LittleEndian.PutUint32(rec[0:], uint32(len(rec)-recordHeader))
	binary.LittleEndian.PutUint32(rec[4:], recordCRC(pcrc, seq))
	binary.LittleEndian.PutUint64(rec[8:], seq)
}

// encodeRecord returns the record of payload with sequence number seq.
func encodeRecord(seq uint64, payload []byte) []byte {
	rec := make([]byte, recordHeader+len(payload))
	copy(rec[recordHeader:], payload)
	sealRecord(rec, seq, payloadCRC(payload))
	return rec
}

// peekRecordLen returns the size, header included, of the record r starts
// with, without consuming it; io.EOF when r is at its end.
func peekRecordLen(r *bufio.Reader) (int, error) {
	h, err := r.Peek(recordHeader)
	switch {
	case len(h) == 0 && err == io.EOF:
		return 0, io.EOF
	case len(h) < recordHeader:
		return 0, errTorn
	}
	n := binary.LittleEndian.Uint32(h)
	if n > maxRecordPayload {
		return 0, fmt.Errorf("%w: length %d over the limit", errCorrupt, n)
	}
	return recordHeader + int(n), nil
}

// readRecord reads one record from r and appends its payload to dst. It
// returns io.EOF at a clean end of r, errTorn when r ends inside the
// record and errCorrupt when its length or checksum is wrong; dst is
// returned unchanged on error. It allocates at most maxRecordPayload
// beyond dst.
func readRecord(r *bufio.Reader, dst []byte) (seq uint64, out []byte, err error) {
	size, err := peekRecordLen(r)
	if err != nil {
		return 0, dst, err
	}
	var h [recordHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, dst, errTorn
	}
	want := binary.LittleEndian.Uint32(h[4:])
	seq = binary.LittleEndian.Uint64(h[8:])
	start := len(dst)
	out = growLen(dst, size-recordHeader)
	if _, err := io.ReadFull(r, out[start:]); err != nil {
		return 0, dst, errTorn
	}
	if recordCRC(payloadCRC(out[start:]), seq) != want {
		return 0, dst, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return seq, out, nil
}

// growLen extends b by n bytes, reallocating when its capacity is short.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}
