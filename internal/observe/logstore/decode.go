package logstore

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// strs reads NUL-terminated strings from one string.
type strs struct {
	s   string
	bad bool
}

func (c *strs) next() string {
	i := strings.IndexByte(c.s, 0)
	if i < 0 {
		c.bad = true
		return ""
	}
	v := c.s[:i]
	c.s = c.s[i+1:]
	return v
}

// decoder decompresses and decodes block bodies; safe for concurrent use.
type decoder struct {
	zdec *zstd.Decoder
}

// decode parses a block body. It never panics on bad input, checks every
// length against the bytes there are, and allocates at most about
// maxRawBlock plus the records.
func (dc decoder) decode(body []byte) ([]Record, error) {
	head := column{s: unsafe.String(unsafe.SliceData(body), len(body)), end: len(body)}
	if head.byte() != blockVersion {
		return nil, fmt.Errorf("%w: unknown version", errCorrupt)
	}
	n := head.uvarint()
	t := head.varint()
	ns := head.uvarint()
	if head.bad || n > maxBlockRecords || ns > maxStreams || ns < 1+numBytes {
		return nil, fmt.Errorf("%w: bad header", errCorrupt)
	}
	type stream struct {
		method        byte
		raw, stored   uint64
		rawOff, rawTo int
	}
	streams := make([]stream, ns)
	var rawTotal, storedTotal uint64
	for i := range streams {
		st := &streams[i]
		st.method, st.raw, st.stored = head.byte(), head.uvarint(), head.uvarint()
		rawTotal += st.raw
		storedTotal += st.stored
		if head.bad || st.method > methodS2 || rawTotal > maxRawBlock || storedTotal > uint64(len(body)) ||
			st.method == methodRaw && st.raw != st.stored {
			return nil, fmt.Errorf("%w: bad stream table", errCorrupt)
		}
	}
	if uint64(len(body)-head.off) != storedTotal {
		return nil, fmt.Errorf("%w: %d bytes of streams, want %d", errCorrupt, len(body)-head.off, storedTotal)
	}
	all := make([]byte, 0, rawTotal)
	off := head.off
	for i := range streams {
		st := &streams[i]
		src := body[off : off+int(st.stored)]
		off += int(st.stored)
		st.rawOff = len(all)
		switch st.method {
		case methodRaw:
			all = append(all, src...)
		case methodZstd:
			var err error
			if dc.zdec == nil {
				return nil, fmt.Errorf("%w: zstd stream without a decoder", errCorrupt)
			}
			if all, err = dc.zdec.DecodeAll(src, all); err != nil {
				return nil, fmt.Errorf("%w: stream %d: %v", errCorrupt, i, err)
			}
		case methodS2:
			if l, err := s2.DecodedLen(src); err != nil || uint64(l) != st.raw {
				return nil, fmt.Errorf("%w: stream %d: bad length", errCorrupt, i)
			}
			if _, err := s2.Decode(all[len(all):len(all)+int(st.raw)], src); err != nil {
				return nil, fmt.Errorf("%w: stream %d: %v", errCorrupt, i, err)
			}
			all = all[:len(all)+int(st.raw)]
		}
		if uint64(len(all)-st.rawOff) != st.raw {
			return nil, fmt.Errorf("%w: stream %d: %d bytes, want %d", errCorrupt, i, len(all)-st.rawOff, st.raw)
		}
		st.rawTo = len(all)
	}
	s := unsafe.String(unsafe.SliceData(all), len(all)) // all is never written again
	get := func(i int) string { return s[streams[i].rawOff:streams[i].rawTo] }
	widths := get(0)
	if len(widths) != numNumeric {
		return nil, fmt.Errorf("%w: bad widths", errCorrupt)
	}
	next := 1
	var planes [numNumeric][]string
	for c := range planes {
		if widths[c] > 8 {
			return nil, fmt.Errorf("%w: bad widths", errCorrupt)
		}
		for range int(widths[c]) {
			planes[c] = append(planes[c], get(next))
			next++
		}
	}
	if next+numBytes != len(streams) {
		return nil, fmt.Errorf("%w: %d streams, want %d", errCorrupt, len(streams), next+numBytes)
	}
	var bytesCols [numBytes]string
	for c := range bytesCols {
		bytesCols[c] = get(next + c)
	}
	for _, p := range planes[nFlags] {
		if len(p) != int(n) {
			return nil, fmt.Errorf("%w: %d flags, want %d", errCorrupt, len(p), n)
		}
	}
	flags := numReader{planes: planes[nFlags]}
	nAccess := 0
	for i := range int(n) {
		if flags.at(i)&flagAccess != 0 {
			nAccess++
		}
	}
	// Each numeric column holds one value per record, or per access record.
	for c := range planes {
		want := int(n)
		if c >= nIdxFirst+numCommonDicts && c < nIdxFirst+numDicts || c >= nStatus {
			want = nAccess
		}
		if c == nPathNum && len(planes[c]) > 0 {
			want = len(planes[c][0]) // as many as the templates say: checked while reading
		}
		for _, p := range planes[c] {
			if len(p) != want {
				return nil, fmt.Errorf("%w: numeric column %d has %d values, want %d", errCorrupt, c, len(p), want)
			}
		}
	}
	var dicts [numDicts][]string
	for d := range dicts {
		r := strs{s: bytesCols[bDictFirst+d]}
		for r.s != "" && !r.bad {
			dicts[d] = append(dicts[d], r.next())
		}
		if r.bad {
			return nil, fmt.Errorf("%w: dictionary %d", errCorrupt, d)
		}
	}
	var nr [numNumeric]numReader
	for c := range nr {
		nr[c].planes = planes[c]
	}
	bad := false
	get1 := func(d int) string {
		i := nr[nIdxFirst+d].next()
		if i >= uint64(len(dicts[d])) {
			bad = true
			return ""
		}
		return dicts[d][i]
	}
	traces, spans := bytesCols[bTraceBin], bytesCols[bSpanBin]
	ids, lines := strs{s: bytesCols[bIDStr]}, strs{s: bytesCols[bLine]}
	var pb []byte
	recs := make([]Record, n)
	acc := make([]Access, nAccess)
	for i := range recs {
		r := &recs[i]
		z := nr[nTime].next()
		t += int64(z>>1) ^ -int64(z&1)
		r.Time = time.UnixMicro(t).UTC()
		f := nr[nFlags].next()
		r.Truncated = f&flagTruncated != 0
		switch {
		case f&flagTraceBin != 0 && len(traces) >= 16:
			r.TraceID = hex.EncodeToString([]byte(traces[:16]))
			traces = traces[16:]
		case f&flagTraceBin != 0:
			bad = true
		case f&flagTraceStr != 0:
			r.TraceID = ids.next()
		}
		switch {
		case f&flagSpanBin != 0 && len(spans) >= 8:
			r.SpanID = hex.EncodeToString([]byte(spans[:8]))
			spans = spans[8:]
		case f&flagSpanBin != 0:
			bad = true
		case f&flagSpanStr != 0:
			r.SpanID = ids.next()
		}
		app, host, _ := strings.Cut(get1(dAppHost), "\x01")
		r.App = app
		r.Stream = get1(dStream)
		r.Sandbox = get1(dSandbox)
		r.Severity = get1(dSeverity)
		r.Line = lines.next()
		if f&flagAccess != 0 {
			a := &acc[0]
			acc = acc[1:]
			a.Host = host
			a.Method = get1(dMethod)
			a.Proto = get1(dProto)
			a.Client = get1(dClient)
			a.User = get1(dUser)
			a.UserAgent = get1(dUserAgent)
			a.Referer = get1(dReferer)
			a.Status = int(min(nr[nStatus].next(), 1<<31))
			a.Duration = time.Duration(min(nr[nDuration].next(), 1<<40)) * time.Microsecond
			a.BytesIn = int64(min(nr[nBytesIn].next(), 1<<62))
			a.BytesOut = int64(min(nr[nBytesOut].next(), 1<<62))
			tmpl := get1(dPath)
			if strings.IndexByte(tmpl, 1) < 0 {
				a.Path = tmpl
			} else {
				pb = pb[:0]
				for k := 0; k < len(tmpl); k++ {
					if tmpl[k] != 1 {
						pb = append(pb, tmpl[k])
						continue
					}
					if nr[nPathNum].left() == 0 {
						bad = true
						break
					}
					pb = strconv.AppendUint(pb, nr[nPathNum].next(), 10)
				}
				a.Path = string(pb)
			}
			r.Access = a
		}
		if bad || ids.bad || lines.bad {
			return nil, fmt.Errorf("%w: record %d", errCorrupt, i)
		}
	}
	return recs, nil
}

// numReader reads a numeric column from its byte planes. The caller has
// checked that every plane holds as many values as it reads.
type numReader struct {
	planes []string
	i      int
}

func (r *numReader) at(i int) uint64 {
	var v uint64
	for k, p := range r.planes {
		v |= uint64(p[i]) << (8 * k)
	}
	return v
}

// left is how many values remain (of a column with planes).
func (r *numReader) left() int {
	if len(r.planes) == 0 {
		return math.MaxInt
	}
	return len(r.planes[0]) - r.i
}

func (r *numReader) next() uint64 {
	v := r.at(r.i)
	r.i++
	return v
}

// column reads varints and strings from a byte slice (indexes, headers).
type column struct {
	s        string
	off, end int
	bad      bool
}

func (c *column) uvarint() uint64 {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if c.off >= c.end {
			c.bad = true
			return 0
		}
		b := c.s[c.off]
		c.off++
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x
		}
	}
	c.bad = true
	return 0
}

func (c *column) varint() int64 {
	u := c.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (c *column) byte() byte {
	if c.off >= c.end {
		c.bad = true
		return 0
	}
	c.off++
	return c.s[c.off-1]
}

// str reads a length-prefixed string.
func (c *column) str() string {
	n := c.uvarint()
	if c.bad || n > uint64(c.end-c.off) {
		c.bad = true
		return ""
	}
	c.off += int(n)
	return c.s[c.off-int(n) : c.off]
}
