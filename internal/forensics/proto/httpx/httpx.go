package httpx

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

const (
	maxMessages = 1 << 20 // per direction of a connection
	sniffLimit  = 64 << 10
)

type request struct {
	hdr  header
	body *body
}

type extractor struct {
	opt    Options
	objs   []*flow.Object
	warns  []flow.Warning
	ranges map[string]*rangeSet
	order  []string
	n      int // made-up names so far
}

// Extract returns the bodies of the HTTP/1.x messages in conns: every
// response with a body (named from Content-Disposition, else the
// request's URL, else "response-N" with an extension from Content-Type),
// every request body, the files of multipart/form-data uploads, and one
// object per URL for 206 partial responses, their ranges stitched.
// Connections that do not start with HTTP are skipped.
//
// Undecoded bodies read from the connections' storage: close conns only
// after the objects are consumed. Decoded ones own a Buffer that
// Object.Close releases.
func Extract(conns []*flow.Conn, opt Options) ([]*flow.Object, []flow.Warning) {
	e := &extractor{opt: opt.withDefaults(), ranges: map[string]*rangeSet{}}
	sorted := make([]*flow.Conn, 0, len(conns))
	for _, c := range conns {
		if c != nil {
			sorted = append(sorted, c)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, c := range sorted {
		e.conn(c)
	}
	e.stitch()
	return e.objs, e.warns
}

func (e *extractor) warn(c *flow.Conn, format string, args ...any) {
	e.warns = append(e.warns, flow.Warning{Message: fmt.Sprintf("HTTP conn %d (%s→%s): ", c.ID, c.Client, c.Server) + fmt.Sprintf(format, args...)})
}

func (e *extractor) conn(c *flow.Conn) {
	reqStart, reqOK := start(c.ToServer, false)
	respStart, respOK := start(c.ToClient, true)
	if !reqOK && !respOK {
		// Without the SYN the higher port is taken for the client: a
		// server on a high port is then the "client".
		c = proto.Swapped(c)
		reqStart, reqOK = start(c.ToServer, false)
		respStart, respOK = start(c.ToClient, true)
		if !reqOK && !respOK {
			return
		}
	}
	var reqs []*request
	if reqOK {
		if reqStart > 0 {
			e.warn(c, "client→server bytes 0-%d are not HTTP (the capture began mid-message?); skipped", reqStart)
		}
		reqs = e.requests(c, reqStart)
	}
	if respOK {
		if respStart > 0 {
			e.warn(c, "server→client bytes 0-%d are not HTTP (the capture began mid-message?); skipped", respStart)
		}
		e.responses(c, respStart, reqs)
	} else if c.ToClient == nil {
		e.warn(c, "only the client's side was captured: no responses")
	}
}

// start finds where a direction's first message begins: at 0, or, when
// the capture began after the connection did (no SYN), at a line start
// in its first 64 KiB.
func start(h *flow.Half, response bool) (int64, bool) {
	if h == nil || h.Size == 0 {
		return 0, false
	}
	b, _ := h.Bytes(0, 256)
	if looksLikeStart(skipCRLF(b), response) {
		return int64(len(b) - len(skipCRLF(b))), true
	}
	if h.SYN {
		return 0, false
	}
	return resync(h, 0, sniffLimit, response)
}

func skipCRLF(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// next skips the empty lines some clients send between messages.
func nextStart(h *flow.Half, pos int64) int64 {
	b, _ := h.Bytes(pos, pos+8)
	return pos + int64(len(b)-len(skipCRLF(b)))
}

func (e *extractor) requests(c *flow.Conn, pos int64) []*request {
	h := c.ToServer
	var reqs []*request
	for len(reqs) < maxMessages {
		pos = nextStart(h, pos)
		if pos >= h.Size {
			break
		}
		hdr, err := readHeader(h, pos, e.opt.MaxHeaderBytes)
		if err != nil {
			next, ok := e.lost(c, h, pos, err, false)
			if !ok {
				break
			}
			pos = next
			continue
		}
		b := e.framing(c, h, &hdr, nil)
		r := &request{hdr: hdr, body: b}
		reqs = append(reqs, r)
		next, ok := b.next, b.next >= 0
		if !ok {
			if next, ok = resync(h, max(hdr.end, b.lostAt, pos+1), h.Size, false); !ok {
				next = h.Size
			}
			b.keepRaw(h, next)
			if ok {
				e.warn(c, "request %d: its body's framing was lost; parsing resumes at client→server offset %d", len(reqs), next)
			}
		}
		e.requestObjects(c, r, len(reqs))
		if hdr.method == "CONNECT" || !ok {
			break // a tunnel follows, or nothing more can be read
		}
		pos = next
	}
	return reqs
}

func (e *extractor) responses(c *flow.Conn, pos int64, reqs []*request) {
	h := c.ToClient
	k := 0 // responses that answered a request
	for n := 0; n < maxMessages; n++ {
		pos = nextStart(h, pos)
		if pos >= h.Size {
			break
		}
		hdr, err := readHeader(h, pos, e.opt.MaxHeaderBytes)
		if err != nil {
			next, ok := e.lost(c, h, pos, err, true)
			if !ok {
				break
			}
			pos = next
			continue
		}
		if hdr.status >= 100 && hdr.status < 200 && hdr.status != 101 {
			pos = hdr.end // 100 Continue, 103 Early Hints: no body, no request used
			continue
		}
		var req *request
		if k < len(reqs) {
			req = reqs[k]
		}
		k++
		if hdr.status == 101 {
			e.warn(c, "101 Switching Protocols at server→client offset %d: the rest is another protocol and was not read", pos)
			return
		}
		if req != nil && req.hdr.method == "CONNECT" && hdr.status/100 == 2 {
			e.warn(c, "CONNECT %s: a tunnel follows and was not read", req.hdr.target)
			return
		}
		b := e.framing(c, h, &hdr, req)
		if b.next >= 0 {
			e.responseObject(c, req, &hdr, b, k)
			pos = b.next
			continue
		}
		next, ok := resync(h, max(hdr.end, b.lostAt, pos+1), h.Size, true)
		if !ok {
			next = h.Size
		}
		b.keepRaw(h, next)
		e.responseObject(c, req, &hdr, b, k)
		if !ok {
			break
		}
		e.warn(c, "response %d: its body's framing was lost; parsing resumes at server→client offset %d", k, next)
		pos = next
	}
}

// lost reports a header that could not be read and finds where parsing
// may resume.
func (e *extractor) lost(c *flow.Conn, h *flow.Half, pos int64, err error, response bool) (int64, bool) {
	dir := proto.Direction(c, h)
	if errors.Is(err, errTruncated) {
		e.warn(c, "%s header at offset %d cut off by the end of the capture", dir, pos)
		return 0, false
	}
	next, ok := resync(h, pos, h.Size-pos, response)
	if ok {
		e.warn(c, "%s offset %d: %v; bytes %d-%d skipped", dir, pos, err, pos, next)
	} else {
		e.warn(c, "%s offset %d: %v; the rest (%d bytes) is not HTTP", dir, pos, err, h.Size-pos)
	}
	return next, ok
}

// framing finds a message's body (RFC 9112 section 6.3).
func (e *extractor) framing(c *flow.Conn, h *flow.Half, hdr *header, req *request) *body {
	empty := &body{asm: &proto.Assembly{}, declared: -1, next: hdr.end, complete: true, lostAt: -1}
	if hdr.status != 0 {
		switch {
		case hdr.status == 204 || hdr.status == 304:
			return empty
		case req != nil && req.hdr.method == "HEAD":
			return empty
		}
	}
	te := contentCodings(hdr.all("transfer-encoding"))
	if len(te) > 0 && te[len(te)-1] == "chunked" {
		b := chunkedBody(h, hdr.end, e.opt.MaxHeaderBytes)
		if hdr.get("content-length") != "" {
			b.notes = append(b.notes, "both Transfer-Encoding and Content-Length: chunked framing used")
		}
		return b
	}
	if cl := hdr.all("content-length"); len(cl) > 0 {
		n, err := strconv.ParseInt(strings.TrimSpace(strings.Split(cl[0], ",")[0]), 10, 64)
		if err == nil && n >= 0 && n <= proto.MaxOffset {
			if hdr.status != 0 && req == nil && n > 0 && headLike(h, hdr.end) {
				e.warn(c, "server→client offset %d: Content-Length %d but another response follows at once: taken for the answer to a HEAD request (not captured)",
					hdr.start, n)
				return empty
			}
			b := lengthBody(h, hdr.end, n)
			if len(cl) > 1 && cl[1] != cl[0] {
				b.notes = append(b.notes, fmt.Sprintf("conflicting Content-Length values %q: the first used", cl))
			}
			return b
		}
		e.warn(c, "%s offset %d: bad Content-Length %q", proto.Direction(c, h), hdr.start, cl[0])
	}
	if hdr.status == 0 {
		return empty // a request without length has no body
	}
	return closeBody(h, hdr.end)
}

// headLike says whether the bytes at off start another response.
func headLike(h *flow.Half, off int64) bool {
	b, _ := h.Bytes(off, off+16)
	return looksLikeStart(b, true)
}
