package main

// Sessions of the four protocols, as their usual servers speak them:
// HTTP/1.1 (nginx-style headers, keep-alive, Content-Length or chunked,
// some gzip), FTP (vsftpd's replies, PASV data connections), SMTP
// (Postfix's replies, a MIME message with a base64 attachment) and TFTP
// (RFC 1350, 512-byte blocks).

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"time"
)

// session is what one session's generator needs. Generators run one at a
// time (interleaved by the mixer), so the shared port counter needs no
// lock.
type session struct {
	f      *framer
	out    sink
	rng    *rand.Rand
	client host
	server host
	ports  *portCounter
	found  func(*object) // records an object the session carried
	now    time.Time     // for Date headers
}

// portCounter hands out ephemeral ports (and FTP passive ports) so that
// no 4-tuple is reused in a capture.
type portCounter struct{ client, passive uint16 }

func (p *portCounter) ephemeral() uint16 {
	if p.client < 32768 || p.client >= 60999 {
		p.client = 32768
	}
	p.client++
	return p.client
}

func (p *portCounter) pasv() uint16 {
	if p.passive < 30000 || p.passive >= 30999 {
		p.passive = 30000
	}
	p.passive++
	return p.passive
}

func (s *session) conn(sport uint16) *conn {
	return newConn(s.f, s.out, s.rng, s.client, s.server, s.ports.ephemeral(), sport)
}

var contentTypes = map[string]string{
	".bin": "application/octet-stream", ".zip": "application/zip", ".jpg": "image/jpeg", ".png": "image/png",
	".iso": "application/octet-stream", ".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
	".csv": "text/csv", ".json": "application/json", ".js": "application/javascript", ".log": "text/plain",
	".tar": "application/x-tar", ".pdf": "application/pdf",
}

// httpSession sends one keep-alive connection with a GET and a response
// per spec; the last request asks to close.
func (s *session) http(specs []spec) {
	c := s.conn(80)
	c.open()
	for i, sp := range specs {
		o := sp.make("http")
		s.httpExchange(c, "GET", "/files/"+sp.name, "", o, sp, i == len(specs)-1)
		s.found(o)
		if !c.ok {
			return
		}
	}
	c.close(1)
}

// httpExchange sends a request and a 200 response carrying o.
func (s *session) httpExchange(c *conn, method, target, extra string, o *object, sp spec, last bool) {
	connHdr := "keep-alive"
	if last {
		connHdr = "close"
	}
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"+
		"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n%sConnection: %s\r\n\r\n", method, target, s.server.ip, extra, connHdr)
	c.send(0, []byte(req))
	body, enc := o.data, ""
	if sp.gzip {
		body = gzipped(o.data)
		o.WireSHA256, enc = digest(body), "gzip"
	}
	ct := contentTypes[path.Ext(sp.name)]
	if ct == "" {
		ct = "application/octet-stream"
	}
	var h strings.Builder
	fmt.Fprintf(&h, "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: %s\r\nContent-Type: %s\r\n", s.now.UTC().Format(time.RFC1123), ct)
	fmt.Fprintf(&h, "Last-Modified: %s\r\nETag: \"%x-%x\"\r\n", s.now.Add(-72*time.Hour).UTC().Format(time.RFC1123), sp.seed&0xffffff, o.Size)
	if sp.gzip {
		h.WriteString("Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n")
	}
	wire := body
	if sp.chunked {
		h.WriteString("Transfer-Encoding: chunked\r\n")
		wire = chunk(s.rng, body)
		enc = strings.TrimPrefix(enc+"+chunked", "+")
	} else {
		fmt.Fprintf(&h, "Content-Length: %d\r\n", len(body))
	}
	o.Encoding = enc
	fmt.Fprintf(&h, "Connection: %s\r\n\r\n", connHdr)
	resp := make([]byte, 0, h.Len()+len(wire))
	resp = append(append(resp, h.String()...), wire...)
	c.send(1, resp)
}

// chunk frames body in chunks of 1-64 KiB and a last empty chunk.
func chunk(rng *rand.Rand, body []byte) []byte {
	out := make([]byte, 0, len(body)+len(body)/1000+64)
	for len(body) > 0 {
		n := min(len(body), 1+rng.IntN(64<<10))
		out = fmt.Appendf(out, "%x\r\n", n)
		out = append(append(out, body[:n]...), "\r\n"...)
		body = body[n:]
	}
	return append(out, "0\r\n\r\n"...)
}

// ftpOptions vary an FTP session for the cases.
type ftpOptions struct {
	port       uint16 // control port (21)
	serverOnly bool   // leave the client's packets out
	// data, if set, sends the file on the data connection instead of
	// conn.send (side 1 for RETR); it must leave the data sent.
	data func(c *conn, side int, b []byte)
}

// ftp sends an FTP session as vsftpd answers it: login, then per spec
// SIZE (sometimes), PASV, a data connection, RETR or STOR, 226; QUIT.
func (s *session) ftp(specs []spec, opt ftpOptions) {
	if opt.port == 0 {
		opt.port = 21
	}
	ctl := s.conn(opt.port)
	ctl.omit[0] = opt.serverOnly
	talk := func(cmd, reply string) {
		if cmd != "" {
			ctl.send(0, []byte(cmd+"\r\n"))
		}
		ctl.send(1, []byte(reply+"\r\n"))
	}
	ctl.open()
	talk("", "220 (vsFTPd 3.0.3)")
	talk("USER anonymous", "331 Please specify the password.")
	talk("PASS anonymous@", "230 Login successful.")
	talk("SYST", "215 UNIX Type: L8")
	talk("TYPE I", "200 Switching to Binary mode.")
	for _, sp := range specs {
		o := sp.make("ftp")
		if !sp.upload && s.rng.IntN(2) == 0 {
			talk("SIZE "+sp.name, fmt.Sprintf("213 %d", o.Size))
		}
		dport := s.ports.pasv()
		a := s.server.ip.As4()
		talk("PASV", fmt.Sprintf("227 Entering Passive Mode (%d,%d,%d,%d,%d,%d).", a[0], a[1], a[2], a[3], dport>>8, dport&0xff))
		dc := s.conn(dport)
		dc.omit[0] = opt.serverOnly
		dc.open()
		side := 1
		if sp.upload {
			side = 0
			talk("STOR "+sp.name, "150 Ok to send data.")
		} else {
			talk("RETR "+sp.name, fmt.Sprintf("150 Opening BINARY mode data connection for %s (%d bytes).", sp.name, o.Size))
		}
		if opt.data != nil {
			opt.data(dc, side, o.data)
		} else {
			dc.send(side, o.data)
		}
		dc.close(side)
		talk("", "226 Transfer complete.")
		s.found(o)
		if !ctl.ok || !dc.ok {
			return
		}
	}
	talk("QUIT", "221 Goodbye.")
	ctl.close(1)
}

// smtp sends one message per spec, each with the spec's object as a
// base64 attachment, as Postfix answers.
func (s *session) smtp(specs []spec) {
	c := s.conn(25)
	talk := func(cmd, reply string) {
		if cmd != "" {
			c.send(0, []byte(cmd+"\r\n"))
		}
		c.send(1, []byte(reply+"\r\n"))
	}
	c.open()
	talk("", "220 mail.example.org ESMTP Postfix (Debian/GNU)")
	talk("EHLO client.example.com", "250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n250 SMTPUTF8")
	for i, sp := range specs {
		o := sp.make("smtp")
		o.Encoding = "base64"
		talk("MAIL FROM:<alice@example.com>", "250 2.1.0 Ok")
		talk("RCPT TO:<bob@example.org>", "250 2.1.5 Ok")
		talk("DATA", "354 End data with <CR><LF>.<CR><LF>")
		msg := mailMessage(s, sp.name, i, o.data)
		o.MessageSHA256 = digest(msg[:len(msg)-len(".\r\n")])
		c.send(0, msg)
		c.send(1, fmt.Appendf(nil, "250 2.0.0 Ok: queued as %X\r\n", s.rng.Uint32()))
		s.found(o)
	}
	talk("QUIT", "221 2.0.0 Bye")
	c.close(1)
}

// mailMessage is a multipart/mixed message with a text part and data as
// a base64 attachment, ended by the lone dot.
func mailMessage(s *session, name string, i int, data []byte) []byte {
	boundary := fmt.Sprintf("=_noops_%08x", s.rng.Uint32())
	var b strings.Builder
	b.Grow(len(data)*4/3 + len(data)/38 + 1024)
	fmt.Fprintf(&b, "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: %s (%d)\r\n", name, i)
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%x.%d@example.com>\r\nMIME-Version: 1.0\r\n", s.now.UTC().Format(time.RFC1123Z), s.rng.Uint64(), i)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nHi Bob,\r\n\r\nthe file is attached.\r\n\r\nAlice\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/octet-stream; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n", boundary, name, name)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 0 {
		n := min(len(enc), 76)
		b.WriteString(enc[:n])
		b.WriteString("\r\n")
		enc = enc[n:]
	}
	fmt.Fprintf(&b, "--%s--\r\n.\r\n", boundary)
	return []byte(b.String())
}

// tftp sends a read request and the file in 512-byte DATA blocks, each
// acknowledged, from a transfer port of the server's choosing.
func (s *session) tftp(sp spec) {
	o := sp.make("tftp")
	cport, tid := s.ports.ephemeral(), s.ports.ephemeral()
	send := func(fromServer bool, p []byte) bool {
		if fromServer {
			return s.out(s.f.udp(s.server, s.client, tid, cport, p))
		}
		sport := uint16(69)
		if p[1] != 1 {
			sport = tid
		}
		return s.out(s.f.udp(s.client, s.server, cport, sport, p))
	}
	rrq := append([]byte{0, 1}, sp.name+"\x00octet\x00"...)
	if !send(false, rrq) {
		return
	}
	data := o.data
	for block := 1; ; block++ {
		n := min(len(data), 512)
		pkt := append([]byte{0, 3, byte(block >> 8), byte(block)}, data[:n]...)
		if !send(true, pkt) || !send(false, []byte{0, 4, byte(block >> 8), byte(block)}) {
			return
		}
		data = data[n:]
		if n < 512 {
			break
		}
	}
	s.found(o)
}
