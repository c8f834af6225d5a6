package logstore

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// A block stores records column by column, each column in one or more
// streams compressed on their own (see doc.go). Its body is
//
//	version byte | n uvarint | first time varint | stream count uvarint |
//	per stream: method byte, raw length uvarint, stored length uvarint |
//	the streams' stored bytes
//
// Stream 0 holds one byte per numeric column: how many bytes its widest
// value needs (w). A numeric column then has w streams, its values' byte
// planes (least significant first), each with one byte per value. Then
// come the byte columns, one stream each. Strings are NUL-terminated
// (sanitized values never hold a NUL).

// Numeric columns.
const (
	nTime     = iota // zigzag of the difference in microseconds from the previous record (the first: from the block's first time)
	nFlags           // flag* bits
	nIdxFirst        // dictionary indices, one column per dictionary
	nStatus   = nIdxFirst + numDicts + iota - 3
	nDuration
	nBytesIn
	nBytesOut
	nPathNum // the numbers taken out of paths (see encoder.path)
	numNumeric
)

// Dictionaries.
const (
	dAppHost   = iota // app \x01 host (sanitized values never hold a control character)
	dStream           // the rest: one string each
	dSandbox          //
	dSeverity         //
	dMethod           // access only from here on
	dProto            //
	dClient           //
	dUser             //
	dUserAgent        //
	dReferer          //
	dPath             // path templates: a path with each standalone decimal number replaced by \x01
	numDicts
	numCommonDicts = dMethod // dictionaries with a value for every record
)

// Byte columns, after the dictionaries' values (bDictFirst+d).
const (
	bDictFirst = iota
	bTraceBin  = bDictFirst + numDicts + iota - 1 // 16 bytes per record with flagTraceBin
	bSpanBin                                      // 8 bytes per record with flagSpanBin
	bIDStr                                        // trace/span IDs that are not hex
	bLine                                         // lines
	numBytes
)

// Flag bits of nFlags.
const (
	flagAccess    = 1 << iota // the record has Access
	flagTruncated             // Record.Truncated
	flagTraceBin              // trace ID in bTraceBin
	flagTraceStr              // trace ID in bIDStr
	flagSpanBin               // span ID in bSpanBin
	flagSpanStr               // span ID in bIDStr
)

// How a stream is stored.
const (
	methodRaw  = 0
	methodZstd = 1
	methodS2   = 2
)

const (
	blockVersion    = 2
	maxBlockRecords = 1 << 20  // records in one block, enforced when decoding
	maxRawBlock     = 64 << 20 // bytes of a block's streams decompressed
	maxStreams      = 1 + 8*numNumeric + numBytes
)

var errCorrupt = errors.New("corrupt block")

// encoder turns records into a block body. Its buffers are reused from
// one block to the next; it is not safe for concurrent use.
type encoder struct {
	nums   [numNumeric][]uint64
	bytes  [numBytes][]byte
	dicts  [numDicts]map[string]uint32
	plane  []byte
	tmpl   []byte
	stored []byte
	tmp    []byte
	out    []byte
	zenc   *zstd.Encoder // nil: S2
}

func newEncoder(zenc *zstd.Encoder) *encoder {
	e := &encoder{zenc: zenc}
	for i := range e.dicts {
		e.dicts[i] = make(map[string]uint32)
	}
	return e
}

// encode returns the body of a block of recs (sanitized), valid until the
// next call, and the size of its streams decompressed.
func (e *encoder) encode(recs []Record) ([]byte, int) {
	for i := range e.nums {
		e.nums[i] = e.nums[i][:0]
	}
	for i := range e.bytes {
		e.bytes[i] = e.bytes[i][:0]
	}
	for i := range e.dicts {
		clear(e.dicts[i])
	}
	var base int64
	if len(recs) > 0 {
		base = recs[0].Time.UnixMicro()
	}
	prev := base
	var tb [16]byte
	for i := range recs {
		r := &recs[i]
		t := r.Time.UnixMicro()
		d := t - prev
		e.nums[nTime] = append(e.nums[nTime], uint64(d<<1)^uint64(d>>63))
		prev = t
		var flags uint64
		if r.Truncated {
			flags |= flagTruncated
		}
		switch {
		case r.TraceID == "":
		case isHex(r.TraceID, 32):
			flags |= flagTraceBin
			hex.Decode(tb[:16], []byte(r.TraceID))
			e.bytes[bTraceBin] = append(e.bytes[bTraceBin], tb[:16]...)
		default:
			flags |= flagTraceStr
			e.str(bIDStr, r.TraceID)
		}
		switch {
		case r.SpanID == "":
		case isHex(r.SpanID, 16):
			flags |= flagSpanBin
			hex.Decode(tb[:8], []byte(r.SpanID))
			e.bytes[bSpanBin] = append(e.bytes[bSpanBin], tb[:8]...)
		default:
			flags |= flagSpanStr
			e.str(bIDStr, r.SpanID)
		}
		host := ""
		if r.Access != nil {
			host = r.Access.Host
		}
		e.dict2(dAppHost, r.App, host)
		e.dict(dStream, r.Stream)
		e.dict(dSandbox, r.Sandbox)
		e.dict(dSeverity, r.Severity)
		e.str(bLine, r.Line)
		if a := r.Access; a != nil {
			flags |= flagAccess
			e.dict(dMethod, a.Method)
			e.dict(dProto, a.Proto)
			e.dict(dClient, a.Client)
			e.dict(dUser, a.User)
			e.dict(dUserAgent, a.UserAgent)
			e.dict(dReferer, a.Referer)
			e.nums[nStatus] = append(e.nums[nStatus], uint64(max(a.Status, 0)))
			e.nums[nDuration] = append(e.nums[nDuration], uint64(max(a.Duration.Microseconds(), 0)))
			e.nums[nBytesIn] = append(e.nums[nBytesIn], uint64(max(a.BytesIn, 0)))
			e.nums[nBytesOut] = append(e.nums[nBytesOut], uint64(max(a.BytesOut, 0)))
			e.path(a.Path)
		}
		e.nums[nFlags] = append(e.nums[nFlags], flags)
	}
	return e.finish(len(recs), base)
}

// finish lays out and compresses the streams.
func (e *encoder) finish(n int, base int64) ([]byte, int) {
	type stream struct {
		raw    []byte
		method byte
		stored []byte
	}
	var widths [numNumeric]byte
	for c, vals := range e.nums {
		var m uint64
		for _, v := range vals {
			m |= v
		}
		for m > 0 {
			widths[c]++
			m >>= 8
		}
	}
	streams := []stream{{raw: widths[:]}}
	e.plane = e.plane[:0]
	for c, vals := range e.nums {
		for k := range int(widths[c]) {
			start := len(e.plane)
			for _, v := range vals {
				e.plane = append(e.plane, byte(v>>(8*k)))
			}
			streams = append(streams, stream{raw: e.plane[start:len(e.plane):len(e.plane)]})
		}
	}
	for c := range e.bytes {
		streams = append(streams, stream{raw: e.bytes[c]})
	}
	rawTotal := 0
	body := e.out[:0]
	stored := e.stored[:0]
	byteCols := len(streams) - numBytes
	for i := range streams {
		st := &streams[i]
		rawTotal += len(st.raw)
		st.stored, st.method = st.raw, methodRaw
		// Trace and span IDs are random: not worth compressing.
		if len(st.raw) < 32 || i == byteCols+bTraceBin || i == byteCols+bSpanBin {
			continue
		}
		from := len(stored)
		if e.zenc != nil {
			stored = e.zenc.EncodeAll(st.raw, stored)
		} else {
			e.tmp = slices.Grow(e.tmp[:0], s2.MaxEncodedLen(len(st.raw)))
			stored = append(stored, s2.Encode(e.tmp[:cap(e.tmp)], st.raw)...)
		}
		if len(stored)-from < len(st.raw) {
			st.stored = stored[from:len(stored):len(stored)]
			st.method = methodS2
			if e.zenc != nil {
				st.method = methodZstd
			}
		} else {
			stored = stored[:from]
		}
	}
	body = append(body, blockVersion)
	body = binary.AppendUvarint(body, uint64(n))
	body = binary.AppendVarint(body, base)
	body = binary.AppendUvarint(body, uint64(len(streams)))
	for _, st := range streams {
		body = append(body, st.method)
		body = binary.AppendUvarint(body, uint64(len(st.raw)))
		body = binary.AppendUvarint(body, uint64(len(st.stored)))
	}
	for _, st := range streams {
		body = append(body, st.stored...)
	}
	e.out, e.stored = body, stored
	return body, rawTotal
}

// dict appends s's index in dictionary d, adding s to it when new.
func (e *encoder) dict(d int, s string) {
	m := e.dicts[d]
	n, ok := m[s]
	if !ok {
		n = uint32(len(m))
		m[s] = n
		e.str(bDictFirst+d, s)
	}
	e.nums[nIdxFirst+d] = append(e.nums[nIdxFirst+d], uint64(n))
}

// dict2 is dict for a pair of strings.
func (e *encoder) dict2(d int, a, b string) {
	m := e.dicts[d]
	if b == "" {
		// Most records: no lookup of a joined key.
		e.dict(d, a)
		return
	}
	k := a + "\x01" + b
	n, ok := m[k]
	if !ok {
		n = uint32(len(m))
		m[k] = n
		e.str(bDictFirst+d, k)
	}
	e.nums[nIdxFirst+d] = append(e.nums[nIdxFirst+d], uint64(n))
}

// path dictionary-codes p's template: p with every standalone run of
// decimal digits (not next to a letter or digit, no leading zero, at most
// 15 digits) replaced by \x01, the numbers going to their own column.
// "/products/1234/reviews?page=2" is "/products/\x01/reviews?page=\x01"
// with 1234 and 2; "/static/app.3f9a1c2e.js" stays as it is.
func (e *encoder) path(p string) {
	t := e.tmpl[:0]
	for i := 0; i < len(p); {
		c := p[i]
		if !isDigit(c) || i > 0 && isAlnum(p[i-1]) {
			t = append(t, c)
			i++
			continue
		}
		j := i
		var v uint64
		for j < len(p) && isDigit(p[j]) {
			v = v*10 + uint64(p[j]-'0')
			j++
		}
		if j < len(p) && isAlnum(p[j]) || j-i > 15 || c == '0' && j-i > 1 {
			t = append(t, p[i:j]...)
		} else {
			t = append(t, 1)
			e.nums[nPathNum] = append(e.nums[nPathNum], v)
		}
		i = j
	}
	e.tmpl = t
	m := e.dicts[dPath]
	n, ok := m[string(t)]
	if !ok {
		n = uint32(len(m))
		m[string(t)] = n
		e.bytes[bDictFirst+dPath] = append(append(e.bytes[bDictFirst+dPath], t...), 0)
	}
	e.nums[nIdxFirst+dPath] = append(e.nums[nIdxFirst+dPath], uint64(n))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }

func (e *encoder) str(c int, s string) {
	e.bytes[c] = append(e.bytes[c], s...)
	e.bytes[c] = append(e.bytes[c], 0)
}
