package httpx

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// maxRanges bounds the stream ranges listed for one object; a body of
// more chunks is described by its overall span.
const maxRanges = 512

// newObject makes an object of a message's body, its content codings
// removed where possible.
func (e *extractor) newObject(c *flow.Conn, h *flow.Half, hdr *header, b *body) *flow.Object {
	o := &flow.Object{
		Protocol:     "http",
		Flow:         proto.Ref(c, h),
		Frames:       h.Frames,
		ExpectedSize: b.declared,
		ContentType:  mediaType(hdr.get("content-type")),
		Complete:     b.complete,
		Notes:        append([]string(nil), b.notes...),
		Ranges:       b.ranges,
	}
	if len(o.Ranges) > maxRanges {
		o.Notes = append(o.Notes, fmt.Sprintf("body spread over %d stream ranges; the span %d-%d is listed", len(o.Ranges), o.Ranges[0].Start, o.Ranges[len(o.Ranges)-1].End))
		o.Ranges = []flow.Range{{Start: o.Ranges[0].Start, End: o.Ranges[len(o.Ranges)-1].End}}
	}
	if b.chunked {
		o.Decoded = append(o.Decoded, "chunked")
	}
	gaps := b.gaps()
	for _, g := range gaps {
		o.Notes = append(o.Notes, fmt.Sprintf("body bytes %d-%d not captured", g.Start, g.End))
	}
	codings := contentCodings(hdr.all("content-encoding"))
	d := decode(b.asm, b.asm.Size(), codings, e.opt)
	o.Notes = append(o.Notes, d.notes...)
	if d.buf == nil {
		o.Data, o.Size, o.Gaps = b.asm, b.asm.Size(), gaps
		return o
	}
	o.Data, o.Size = d.data, d.size
	o.SetClose(d.buf.Close)
	o.Decoded = append(o.Decoded, d.applied...)
	o.Complete = o.Complete && d.complete
	if b.declared >= 0 {
		o.Notes = append(o.Notes, fmt.Sprintf("Content-Length %d is the encoded size", b.declared))
	}
	o.ExpectedSize = -1
	if len(gaps) > 0 {
		o.Notes = append(o.Notes, "the encoded body has gaps: decoding cannot go past the first")
		o.Complete = false
	}
	return o
}

// name sets an object's name: from Content-Disposition, else the URL's
// last segment, else made up from prefix and Content-Type.
func (e *extractor) name(o *flow.Object, hdr *header, req *request, prefix string) {
	if n := dispositionName(hdr.get("content-disposition")); n != "" {
		o.Name, o.NameFrom = n, "Content-Disposition"
		return
	}
	if req != nil {
		if n := urlName(req.hdr.target); n != "" {
			o.Name, o.NameFrom = n, "URL"
			return
		}
		o.Name = "index" + extFor(hdr.get("content-type"))
		return
	}
	e.n++
	o.Name = fmt.Sprintf("%s-%d%s", prefix, e.n, extFor(hdr.get("content-type")))
}

func (e *extractor) responseObject(c *flow.Conn, req *request, hdr *header, b *body, k int) {
	if b.size == 0 {
		return
	}
	if hdr.status == 206 {
		e.addRange(c, req, hdr, b, k)
		return
	}
	o := e.newObject(c, c.ToClient, hdr, b)
	e.name(o, hdr, req, "response")
	o.Notes = append([]string{exchange(c, req, hdr, k)}, o.Notes...)
	e.objs = append(e.objs, o)
}

// exchange describes a response in a note.
func exchange(c *flow.Conn, req *request, hdr *header, k int) string {
	if req == nil {
		return fmt.Sprintf("response %d on conn %d (request not captured): %d %s", k, c.ID, hdr.status, hdr.reason)
	}
	s := fmt.Sprintf("%s %s → %d %s", req.hdr.method, req.hdr.target, hdr.status, hdr.reason)
	if host := req.hdr.get("host"); host != "" {
		s += " (Host: " + host + ")"
	}
	return s
}

func (e *extractor) requestObjects(c *flow.Conn, r *request, k int) {
	if r.body.size == 0 {
		return
	}
	o := e.newObject(c, c.ToServer, &r.hdr, r.body)
	if n := urlName(r.hdr.target); n != "" {
		o.Name, o.NameFrom = n, "URL"
	} else {
		e.n++
		o.Name = fmt.Sprintf("request-%d%s", e.n, extFor(r.hdr.get("content-type")))
	}
	o.Notes = append([]string{fmt.Sprintf("request body: %s %s (request %d on conn %d)", r.hdr.method, r.hdr.target, k, c.ID)}, o.Notes...)
	e.objs = append(e.objs, o)
	if o.ContentType == "multipart/form-data" {
		e.formFiles(c, o, &r.hdr)
	}
}

// formFiles makes an object of each file in a multipart/form-data body.
func (e *extractor) formFiles(c *flow.Conn, whole *flow.Object, hdr *header) {
	_, params, err := mime.ParseMediaType(hdr.get("content-type"))
	if err != nil || params["boundary"] == "" {
		whole.Notes = append(whole.Notes, "multipart/form-data without a usable boundary: files not separated")
		return
	}
	mr := multipart.NewReader(io.NewSectionReader(whole.Data, 0, whole.Size), params["boundary"])
	for i := 0; i < 10000; i++ {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			whole.Notes = append(whole.Notes, fmt.Sprintf("multipart/form-data broken after %d parts: %v", i, err))
			return
		}
		name := dispositionName(p.Header.Get("Content-Disposition"))
		if name == "" {
			continue // a plain form field
		}
		buf := proto.NewBuffer(e.opt.TempDir, e.opt.MemLimit)
		n, cut, err := proto.CopyLimit(buf, p, e.opt.MaxBodyBytes)
		o := &flow.Object{
			Protocol: "http", Name: name, NameFrom: "Content-Disposition", Data: buf, Size: n,
			Flow: whole.Flow, Frames: whole.Frames, Ranges: whole.Ranges, ExpectedSize: -1,
			ContentType: mediaType(p.Header.Get("Content-Type")), Complete: whole.Complete && err == nil && !cut,
			Decoded: append(append([]string(nil), whole.Decoded...), "multipart/form-data"),
			Notes:   []string{fmt.Sprintf("file field %q of the upload %s", p.FormName(), whole.Name)},
		}
		o.SetClose(buf.Close)
		if err != nil {
			o.Notes = append(o.Notes, fmt.Sprintf("part cut off after %d bytes: %v", n, err))
		}
		if cut {
			o.Notes = append(o.Notes, fmt.Sprintf("part cut at %d bytes (the size limit)", n))
		}
		e.objs = append(e.objs, o)
	}
}
