package smtp

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// Bounds on one message's MIME tree.
const (
	maxDepth     = 10
	maxParts     = 1000
	maxHeader    = 1 << 20
	maxPartBytes = 1 << 30
)

// walker takes a message apart into its attachments and encoded parts.
type walker struct {
	msg   *flow.Object // the .eml the parts come from
	base  string       // the prefix of made-up names
	parts int
	objs  []*flow.Object
	notes []string // about the message's structure
}

// readHeader reads a MIME header block; a message whose header does not
// end within maxHeader is taken as all header.
func readHeader(r *bufio.Reader) (textproto.MIMEHeader, error) {
	tr := textproto.NewReader(bufio.NewReader(io.LimitReader(r, maxHeader)))
	h, err := tr.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return nil, fmt.Errorf("reading MIME header: %w", err)
	}
	return h, nil
}

// message walks a whole message (or an attached message/rfc822).
func (w *walker) message(r io.Reader, depth int) {
	br := bufio.NewReaderSize(r, 64<<10)
	// The header ends at the first empty line; read it through a
	// reader that stops there so that the body stays in br.
	var hb bytes.Buffer
	for hb.Len() < maxHeader {
		line, err := br.ReadSlice('\n')
		hb.Write(line)
		if len(bytes.TrimRight(line, "\r\n")) == 0 || err != nil {
			break
		}
	}
	h, err := readHeader(bufio.NewReader(&hb))
	if err != nil {
		w.notes = append(w.notes, err.Error())
		return
	}
	if depth == 0 {
		for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id"} {
			if v := h.Get(k); v != "" {
				w.notes = append(w.notes, k+": "+decodeWords(v))
			}
		}
	}
	w.entity(h, br, depth)
}

// entity walks one MIME entity: a multipart's parts, an attached
// message, or a leaf.
func (w *walker) entity(h textproto.MIMEHeader, body io.Reader, depth int) {
	w.parts++
	if w.parts > maxParts {
		if w.parts == maxParts+1 {
			w.notes = append(w.notes, fmt.Sprintf("more than %d MIME parts: the rest not extracted", maxParts))
		}
		return
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = proto.ASCIILower(strings.TrimSpace(strings.Split(h.Get("Content-Type"), ";")[0]))
		if mt == "" {
			mt = "text/plain"
		}
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && depth < maxDepth:
		if params["boundary"] == "" {
			w.notes = append(w.notes, fmt.Sprintf("%s without a boundary: its parts not separated", mt))
			w.leaf(h, mt, params, body)
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				w.notes = append(w.notes, fmt.Sprintf("%s broken: %v", mt, err))
				return
			}
			w.entity(p.Header, p, depth+1)
		}
	case mt == "message/rfc822" && depth < maxDepth:
		o := w.leaf(h, mt, params, body)
		if o != nil {
			w.message(io.NewSectionReader(o.Data, 0, o.Size), depth+1)
		}
	default:
		w.leaf(h, mt, params, body)
	}
}

// leaf makes an object of an attachment (a part with a file name or
// "attachment" disposition) or of a part whose encoding hides its text in
// the .eml (base64, quoted-printable), decoded. Other parts are readable
// in the .eml as they are and make no object.
func (w *walker) leaf(h textproto.MIMEHeader, mt string, params map[string]string, body io.Reader) *flow.Object {
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name, from := dparams["filename"], "Content-Disposition"
	if name == "" {
		name, from = rawParam(h.Get("Content-Disposition"), "filename"), "Content-Disposition"
	}
	if name == "" {
		name, from = params["name"], "Content-Type name"
	}
	if name == "" {
		name, from = rawParam(h.Get("Content-Type"), "name"), "Content-Type name"
	}
	name = decodeWords(name)
	cte := proto.ASCIILower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	encoded := cte == "base64" || cte == "quoted-printable"
	if name == "" && disp != "attachment" && !encoded && mt != "message/rfc822" {
		return nil
	}
	buf := proto.NewBuffer("", 0)
	o := &flow.Object{
		Protocol: "smtp", Name: name, NameFrom: from, Data: buf, ExpectedSize: -1, ContentType: mt,
		Flow: w.msg.Flow, Frames: w.msg.Frames, Ranges: w.msg.Ranges, Complete: w.msg.Complete,
		Notes: []string{"part of " + w.msg.Name},
	}
	o.SetClose(buf.Close)
	if name == "" {
		o.NameFrom = ""
		o.Name = fmt.Sprintf("%s-part-%d%s", w.base, w.parts, extFor(mt))
	}
	var r io.Reader = body
	switch cte {
	case "base64":
		f := &b64Filter{r: body}
		r = base64.NewDecoder(base64.StdEncoding, f)
		defer func() {
			if f.dropped > 0 {
				o.Notes = append(o.Notes, fmt.Sprintf("%d bytes that are not base64 skipped", f.dropped))
			}
		}()
		o.Decoded = []string{"base64"}
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
		o.Decoded = []string{"quoted-printable"}
	case "", "7bit", "8bit", "binary":
	default:
		o.Notes = append(o.Notes, fmt.Sprintf("Content-Transfer-Encoding %q not decoded", cte))
	}
	n, cut, err := proto.CopyLimit(buf, r, maxPartBytes)
	o.Size = n
	if err != nil {
		o.Complete = false
		o.Notes = append(o.Notes, fmt.Sprintf("decoding stopped after %d bytes: %v", n, err))
	}
	if cut {
		o.Complete = false
		o.Notes = append(o.Notes, fmt.Sprintf("part cut at %d bytes (the size limit)", n))
	}
	w.objs = append(w.objs, o)
	return o
}

// b64Filter passes only base64's alphabet and padding, counting what it
// drops (spaces, stray punctuation), so that a sloppy encoder's output
// still decodes.
type b64Filter struct {
	r       io.Reader
	dropped int64
}

func (f *b64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			switch {
			case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/', c == '=':
				p[k] = c
				k++
			case c == '\r', c == '\n':
			default:
				f.dropped++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// rawParam finds name="value" in a header mime.ParseMediaType refused.
func rawParam(v, name string) string {
	lower := proto.ASCIILower(v)
	for i := 0; ; {
		j := strings.Index(lower[i:], name+"=")
		if j < 0 {
			return ""
		}
		j += i
		if j > 0 && lower[j-1] != ';' && lower[j-1] != ' ' && lower[j-1] != '\t' {
			i = j + 1
			continue
		}
		s := strings.TrimSpace(v[j+len(name)+1:])
		if strings.HasPrefix(s, `"`) {
			if k := strings.IndexByte(s[1:], '"'); k >= 0 {
				return s[1 : 1+k]
			}
			return s[1:]
		}
		s, _, _ = strings.Cut(s, ";")
		return strings.TrimSpace(s)
	}
}

// decodeWords decodes RFC 2047 encoded words; charsets the standard
// library lacks stay encoded.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d := mime.WordDecoder{}
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}

var extByType = map[string]string{
	"text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics", "text/csv": ".csv",
	"application/pdf": ".pdf", "application/zip": ".zip", "application/gzip": ".gz",
	"application/x-tar": ".tar", "application/octet-stream": ".bin", "application/json": ".json",
	"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "message/rfc822": ".eml",
}

func extFor(mt string) string {
	if e, ok := extByType[mt]; ok {
		return e
	}
	return ".bin"
}
