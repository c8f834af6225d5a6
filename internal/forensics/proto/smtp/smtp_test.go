package smtp

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"

	"noops/internal/forensics/flow"
)

// postfix answers like Postfix 3.7 on Debian, and records every byte
// each way.
func postfix(t *testing.T, client func(addr string)) *flow.Conn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var in, out bytes.Buffer
	var cl netip.AddrPort
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cl = netip.MustParseAddrPort(c.RemoteAddr().String())
		r := bufio.NewReader(io.TeeReader(c, &in))
		w := io.MultiWriter(c, &out)
		say := func(s string) { io.WriteString(w, s+"\r\n") }
		say("220 mail.example.com ESMTP Postfix (Debian/GNU)")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(line)), " ")
			switch verb {
			case "EHLO":
				say("250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING")
			case "MAIL":
				say("250 2.1.0 Ok")
			case "RCPT":
				say("250 2.1.5 Ok")
			case "DATA":
				say("354 End data with <CR><LF>.<CR><LF>")
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
				}
				say("250 2.0.0 Ok: queued as 4F1A21234")
			case "QUIT":
				say("221 2.0.0 Bye")
				return
			default:
				say("502 5.5.2 Error: command not recognized")
			}
		}
	}()
	client(l.Addr().String())
	wg.Wait()
	srv := netip.MustParseAddrPort(l.Addr().String())
	a := flow.Endpoint{Addr: cl.Addr(), Port: cl.Port()}
	b := flow.Endpoint{Addr: srv.Addr(), Port: srv.Port()}
	return &flow.Conn{ID: 7, Client: a, Server: b, ToServer: half(a, b, in.Bytes()), ToClient: half(b, a, out.Bytes())}
}

func send(t *testing.T, msg []byte) func(string) {
	return func(addr string) {
		if err := smtp.SendMail(addr, nil, "alice@example.com", []string{"bob@example.com", "carol@example.com"}, msg); err != nil {
			t.Errorf("SendMail: %v", err)
		}
	}
}

func half(src, dst flow.Endpoint, data []byte, gaps ...flow.Range) *flow.Half {
	b := bytes.Clone(data)
	for _, g := range gaps {
		clear(b[g.Start:g.End])
	}
	h := flow.NewHalf(src, dst, bytes.NewReader(b), int64(len(b)), nil)
	h.Gaps, h.SYN, h.FIN = gaps, true, true
	return h
}

// mail is a message with a quoted-printable text part, a base64
// attachment with an RFC 2047 name, an attached message, and lines that
// need dot-stuffing.
type mail struct {
	raw, text, pdf, inner, innerAtt []byte
	pdfName                         string
}

func newMail() mail {
	m := mail{pdfName: "résumé €.pdf"}
	m.text = []byte("Grüße! The key is in the attachment: a line longer than seventy-six characters gets soft breaks =, and this\r\n.starts with a dot\r\n.\r\n")
	m.pdf = bytes.Repeat([]byte("%PDF-1.7 \x00\x01\x02\xff binary "), 300)
	m.innerAtt = []byte("flag{nested}")
	var inner bytes.Buffer
	inner.WriteString("From: eve@example.com\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; name=\"flag.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	inner.WriteString(b64lines(m.innerAtt))
	m.inner = inner.Bytes()

	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.SetBoundary("==outer==")
	fmt.Fprintf(&b, "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"==outer==\"\r\n\r\nThis is a multi-part message.\r\n.\r\n..\r\n",
		mime.QEncoding.Encode("utf-8", "Rapport für Q3"))
	tp, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"quoted-printable"}})
	qp := quotedprintable.NewWriter(tp)
	qp.Write(m.text)
	qp.Close()
	ap, _ := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"application/pdf"},
		"Content-Transfer-Encoding": {"base64"},
		"Content-Disposition":       {fmt.Sprintf("attachment; filename=\"%s\"", mime.BEncoding.Encode("UTF-8", m.pdfName))},
	})
	io.WriteString(ap, b64lines(m.pdf))
	mp, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"message/rfc822"}, "Content-Disposition": {"attachment; filename=fwd.eml"}})
	mp.Write(m.inner)
	mw.Close()
	m.raw = b.Bytes()
	return m
}

func b64lines(b []byte) string {
	var s strings.Builder
	enc := []byte(base64.StdEncoding.EncodeToString(b))
	for len(enc) > 76 {
		s.Write(enc[:76])
		s.WriteString("\r\n")
		enc = enc[76:]
	}
	s.Write(enc)
	s.WriteString("\r\n")
	return s.String()
}

func readAll(t *testing.T, o *flow.Object) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(o.Data, 0, o.Size))
	if err != nil {
		t.Fatalf("reading %q: %v", o.Name, err)
	}
	return b
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

type want struct {
	name, nameFrom string
	data           []byte
	decoded        []string
	complete       bool
	gaps           []flow.Range
	notes          []string
}

func TestExtract(t *testing.T) {
	t.Parallel()
	m := newMail()
	full := postfix(t, send(t, m.raw))
	objects := func(complete bool, notes ...string) []want {
		return []want{
			{name: "smtp-7-1.eml", data: m.raw, complete: complete, notes: append([]string{"Subject: Rapport für Q3", "RCPT TO:<bob@example.com>, <carol@example.com>"}, notes...)},
			{name: "smtp-7-1-part-2.txt", data: m.text, decoded: []string{"quoted-printable"}, complete: complete},
			{name: m.pdfName, nameFrom: "Content-Disposition", data: m.pdf, decoded: []string{"base64"}, complete: complete},
			{name: "fwd.eml", nameFrom: "Content-Disposition", data: m.inner, complete: complete},
			{name: "flag.txt", nameFrom: "Content-Type name", data: m.innerAtt, decoded: []string{"base64"}, complete: complete},
		}
	}
	clientOnly := *full
	clientOnly.ToClient = nil
	serverOnly := *full
	serverOnly.ToServer = nil
	gapped := *full
	cs := bytesOf(full.ToServer)
	at := int64(bytes.Index(cs, []byte("This is a multi-part")))
	gapped.ToServer = half(full.ToServer.Src, full.ToServer.Dst, cs, flow.Range{Start: at, End: at + 4})
	cut := *full
	cut.ToServer = half(full.ToServer.Src, full.ToServer.Dst, cs[:bytes.Index(cs, []byte("\r\n.\r\nQUIT"))+2])
	cut.ToClient = nil

	tests := []struct {
		name     string
		conn     *flow.Conn
		want     []want
		warnings []string
	}{
		{name: "both sides: the message and its parts", conn: full, want: objects(true, "accepted: 250 2.0.0 Ok: queued as 4F1A21234")},
		{name: "client side only", conn: &clientOnly, want: objects(true)},
		{name: "server side only: no content", conn: &serverOnly,
			warnings: []string{"only the server's side was captured: 1 message(s)", "queued as 4F1A21234"}},
		{name: "a gap in the message", conn: &gapped, want: func() []want {
			w := objects(false)[:1]
			w[0].data = bytes.Replace(m.raw, []byte("This"), []byte{0, 0, 0, 0}, 1)
			w[0].gaps = []flow.Range{{Start: int64(bytes.Index(m.raw, []byte("This"))), End: int64(bytes.Index(m.raw, []byte("This"))) + 4}}
			w[0].notes = []string{"message bytes not captured"}
			return append(w, objects(false)[1:]...)
		}()},
		{name: "no final dot", conn: &cut, want: func() []want {
			w := objects(false)
			w[0].notes = []string{"ended before the final"}
			return w
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs, warns := Extract([]*flow.Conn{tc.conn})
			check(t, objs, warns, tc.want, tc.warnings)
		})
	}
}

func bytesOf(h *flow.Half) []byte {
	b, _ := h.Bytes(0, h.Size)
	return b
}

func check(t *testing.T, objs []*flow.Object, warns []flow.Warning, want []want, warnings []string) {
	t.Helper()
	defer func() {
		for _, o := range objs {
			o.Close()
		}
	}()
	if len(objs) != len(want) {
		var names []string
		for _, o := range objs {
			names = append(names, fmt.Sprintf("%q %q", o.Name, o.Notes))
		}
		t.Fatalf("Extract returned %d objects %v, want %d; warnings %v", len(objs), names, len(want), warns)
	}
	for i, w := range want {
		o := objs[i]
		if o.Protocol != "smtp" || o.Name != w.name || o.NameFrom != w.nameFrom {
			t.Errorf("object %d = %q from %q, want %q from %q", i, o.Name, o.NameFrom, w.name, w.nameFrom)
		}
		if got := readAll(t, o); sum(got) != sum(w.data) {
			t.Errorf("object %q: content differs (%d bytes, want %d):\n%q\nwant\n%q", o.Name, len(got), len(w.data), trunc(got), trunc(w.data))
		}
		if o.Complete != w.complete || !slices.Equal(o.Decoded, w.decoded) || !slices.Equal(o.Gaps, w.gaps) {
			t.Errorf("object %q: Complete %v Decoded %q Gaps %v, want %v %q %v; notes %q", o.Name, o.Complete, o.Decoded, o.Gaps, w.complete, w.decoded, w.gaps, o.Notes)
		}
		for _, n := range w.notes {
			if !slices.ContainsFunc(o.Notes, func(s string) bool { return strings.Contains(s, n) }) {
				t.Errorf("object %q: no note containing %q in %q", o.Name, n, o.Notes)
			}
		}
	}
	for _, w := range warnings {
		if !slices.ContainsFunc(warns, func(x flow.Warning) bool { return strings.Contains(x.Message, w) }) {
			t.Errorf("no warning containing %q in %v", w, warns)
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}
