package httpx

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// rangeSet gathers the 206 responses for one resource.
type rangeSet struct {
	obj      *flow.Object // name, flow, first ranges
	asm      proto.Assembly
	total    int64 // the complete length, -1 when no response said
	complete bool
	pieces   int
	bufs     []*proto.Buffer
}

// contentRange reads "bytes first-last/total" ("*" for an unknown total).
func contentRange(v string) (first, last, total int64, ok bool) {
	unit, spec, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found || proto.ASCIILower(unit) != "bytes" {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(spec, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2 error
	first, err1 = strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	last, err2 = strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || last >= proto.MaxOffset {
		return 0, 0, 0, false
	}
	total = -1
	if t := strings.TrimSpace(tot); t != "*" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n <= last || n > proto.MaxOffset {
			return 0, 0, 0, false
		}
		total = n
	}
	return first, last, total, true
}

// rangeKey names the resource a 206 response is part of: its URL, or,
// without the request, the server and the validator it sent.
func rangeKey(c *flow.Conn, req *request, hdr *header) string {
	if req != nil {
		return fmt.Sprintf("url|%s|%s|%s", c.Server, req.hdr.get("host"), req.hdr.target)
	}
	v := hdr.get("etag")
	if v == "" {
		v = hdr.get("last-modified")
	}
	_, _, total, _ := contentRange(hdr.get("content-range"))
	return fmt.Sprintf("srv|%s|%s|%d|%s", c.Server, v, total, mediaType(hdr.get("content-type")))
}

func (e *extractor) addRange(c *flow.Conn, req *request, hdr *header, b *body, k int) {
	key := rangeKey(c, req, hdr)
	rs := e.ranges[key]
	if rs == nil {
		o := &flow.Object{Protocol: "http", Flow: proto.Ref(c, c.ToClient), Frames: c.ToClient.Frames, Ranges: b.ranges,
			ContentType: mediaType(hdr.get("content-type"))}
		e.name(o, hdr, req, "response")
		rs = &rangeSet{obj: o, total: -1, complete: true}
		e.ranges[key] = rs
		e.order = append(e.order, key)
	}
	o := rs.obj
	o.Frames = mergeFrames(o.Frames, c.ToClient.Frames)
	what := exchange(c, req, hdr, k)
	if cod := contentCodings(hdr.all("content-encoding")); len(cod) > 0 {
		o.Notes = append(o.Notes, fmt.Sprintf("%s: ranges of the %s-encoded form, not decoded", what, strings.Join(cod, ", ")))
	}
	rs.complete = rs.complete && b.complete
	o.Notes = append(o.Notes, b.notes...)
	if mediaType(hdr.get("content-type")) == "multipart/byteranges" {
		e.byteranges(rs, hdr, b, what)
		return
	}
	first, last, total, ok := contentRange(hdr.get("content-range"))
	if !ok {
		o.Notes = append(o.Notes, fmt.Sprintf("%s: no usable Content-Range (%q); body placed at 0", what, hdr.get("content-range")))
		rs.complete = false
	}
	if ok && last-first+1 != b.size {
		o.Notes = append(o.Notes, fmt.Sprintf("%s: Content-Range %d-%d is %d bytes, the body %d", what, first, last, last-first+1, b.size))
	}
	rs.place(first, total, b.asm, b.gaps(), b.asm.Size())
	o.Notes = append(o.Notes, fmt.Sprintf("bytes %d-%d from %s", first, first+b.size, what))
}

// place adds a piece at off, leaving the piece's gaps uncovered.
func (rs *rangeSet) place(off, total int64, r io.ReaderAt, gaps []flow.Range, size int64) {
	if total >= 0 {
		if rs.total >= 0 && rs.total != total {
			rs.obj.Notes = append(rs.obj.Notes, fmt.Sprintf("responses disagree on the complete length: %d and %d", rs.total, total))
		}
		rs.total = max(rs.total, total)
	}
	rs.pieces++
	pos := int64(0)
	for _, g := range gaps {
		if g.Start > pos {
			rs.asm.Add(off+pos, r, pos, min(g.Start, size)-pos)
		}
		pos = max(pos, g.End)
	}
	if pos < size {
		rs.asm.Add(off+pos, r, pos, size-pos)
	}
}

// byteranges places each part of a multipart/byteranges body.
func (e *extractor) byteranges(rs *rangeSet, hdr *header, b *body, what string) {
	o := rs.obj
	_, params, err := mime.ParseMediaType(hdr.get("content-type"))
	if err != nil || params["boundary"] == "" {
		o.Notes = append(o.Notes, what+": multipart/byteranges without a usable boundary")
		rs.complete = false
		return
	}
	mr := multipart.NewReader(io.NewSectionReader(b.asm, 0, b.asm.Size()), params["boundary"])
	for i := 0; i < 10000; i++ {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			o.Notes = append(o.Notes, fmt.Sprintf("%s: multipart/byteranges broken after %d parts: %v", what, i, err))
			rs.complete = false
			return
		}
		first, _, total, ok := contentRange(p.Header.Get("Content-Range"))
		if !ok {
			o.Notes = append(o.Notes, fmt.Sprintf("%s: part %d has no usable Content-Range", what, i+1))
			rs.complete = false
			continue
		}
		buf := proto.NewBuffer(e.opt.TempDir, e.opt.MemLimit)
		n, _, err := proto.CopyLimit(buf, p, e.opt.MaxBodyBytes)
		rs.bufs = append(rs.bufs, buf)
		if err != nil {
			rs.complete = false
			o.Notes = append(o.Notes, fmt.Sprintf("%s: part %d cut off: %v", what, i+1, err))
		}
		rs.place(first, total, buf, nil, n)
		o.Notes = append(o.Notes, fmt.Sprintf("bytes %d-%d from %s (multipart/byteranges part %d)", first, first+n, what, i+1))
	}
}

// maxHole bounds the zeros a stitched object may hold where no range
// was captured; a resource captured more sparsely (the last kilobyte of a
// large file) gives one object per captured run instead.
const maxHole = 1 << 30

// stitch makes one object of each resource's ranges. The object ends
// where the last captured byte does; a missing tail up to the complete
// length is a gap past Size.
func (e *extractor) stitch() {
	for _, key := range e.order {
		rs := e.ranges[key]
		o := rs.obj
		size := rs.asm.Size()
		if rs.total >= 0 && rs.total < size {
			size = rs.total
		}
		rs.asm.SetSize(size)
		o.Data, o.Size, o.ExpectedSize = &rs.asm, size, rs.total
		o.Gaps = rs.asm.Gaps(size)
		holes := size - rs.asm.Covered()
		if rs.total > size {
			o.Gaps = append(o.Gaps, flow.Range{Start: size, End: rs.total})
		}
		o.Complete = rs.complete && rs.total >= 0 && len(o.Gaps) == 0
		o.Decoded = append(o.Decoded, "206 ranges stitched")
		if len(o.Gaps) > 0 {
			o.Notes = append(o.Notes, "ranges not captured: "+proto.FormatRanges(o.Gaps))
		}
		if bufs := rs.bufs; len(bufs) > 0 {
			o.SetClose(func() error {
				var first error
				for _, b := range bufs {
					if err := b.Close(); err != nil && first == nil {
						first = err
					}
				}
				return first
			})
		}
		if holes > maxHole {
			e.objs = append(e.objs, runs(o, &rs.asm)...)
			continue
		}
		e.objs = append(e.objs, o)
	}
}

// runs splits a sparse stitched object into one object per captured run;
// the first one owns the storage.
func runs(o *flow.Object, asm *proto.Assembly) []*flow.Object {
	var out []*flow.Object
	pos := int64(0)
	emit := func(a, b int64) {
		r := *o
		if len(out) > 0 {
			r.SetClose(nil)
		}
		r.Name = fmt.Sprintf("%s.bytes-%d-%d", o.Name, a, b)
		r.NameFrom = o.NameFrom
		r.Data, r.Size, r.Gaps, r.Complete = io.NewSectionReader(asm, a, b-a), b-a, nil, false
		r.Decoded = append(append([]string(nil), o.Decoded...), fmt.Sprintf("bytes %d-%d of %d", a, b, o.ExpectedSize))
		r.Notes = append(append([]string(nil), o.Notes...),
			fmt.Sprintf("only bytes %d-%d of the resource are in this object: its ranges were too sparse to place in one file", a, b))
		out = append(out, &r)
	}
	for _, g := range asm.Gaps(asm.Size()) {
		if g.Start > pos {
			emit(pos, g.Start)
		}
		pos = g.End
	}
	if pos < asm.Size() {
		emit(pos, asm.Size())
	}
	return out
}

func mergeFrames(a, b flow.Frames) flow.Frames {
	if a.First == 0 || (b.First > 0 && b.First < a.First) {
		a.First, a.FirstTime = b.First, b.FirstTime
	}
	if b.Last > a.Last {
		a.Last, a.LastTime = b.Last, b.LastTime
	}
	return a
}
