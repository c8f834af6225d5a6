//go:build linux

package forensics

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/testenv/need"
)

// TestHTTPAndSMTPCaptures records, with tcpdump, a net/http server
// sending files chunked and gzip-encoded, and a mail with a base64
// attachment and a quoted-printable part sent to a small SMTP server;
// the extracted bodies and attachments must be the originals, and the
// flag in the tar sent over HTTP is found with its chain.
func TestHTTPAndSMTPCaptures(t *testing.T) {
	need.Root(t)
	td := need.Program(t, "tcpdump")
	files := makeFTPFiles(t) // secret.tar, with the flag inside
	page := []byte(strings.Repeat("<p>the quick brown fox jumps over the lazy dog</p>\n", 4000))
	attachment := randomBytes(150 << 10)
	qpText := "Grüße aus Köln — the key is in the attachment.\n" + strings.Repeat("long line that quoted-printable has to wrap with a soft line break ", 3) + "\n"

	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		switch r.URL.Path {
		case "/files/secret.tar":
			body = files.data["secret.tar"]
		case "/index.html":
			body = page
		default:
			http.NotFound(w, r)
			return
		}
		// No Content-Length and flushes: the response goes chunked.
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		for off := 0; off < len(body); off += 50000 {
			zw.Write(body[off:min(off+50000, len(body))])
			zw.Flush()
			w.(http.Flusher).Flush()
		}
		zw.Close()
	})}
	go srv.Serve(hln)
	defer srv.Close()
	mails := make(chan []byte, 1)
	go serveSMTP(sln, mails)
	defer sln.Close()

	file := filepath.Join(t.TempDir(), "http-smtp.pcap")
	hp, sp := hln.Addr().(*net.TCPAddr).Port, sln.Addr().(*net.TCPAddr).Port
	stop := tcpdump(t, td, file, fmt.Sprintf("tcp port %d or tcp port %d", hp, sp))

	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, path := range []string{"/files/secret.tar", "/index.html"} {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", hp, path), nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s: transfer encoding %v, content encoding %q; the test wants chunked gzip", path, resp.TransferEncoding, resp.Header.Get("Content-Encoding"))
		}
	}
	client.CloseIdleConnections()

	msg := mailWithAttachment(t, "report.bin", attachment, qpText)
	if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", sp), nil, "alice@example.org", []string{"bob@example.org"}, msg); err != nil {
		t.Fatalf("sending the mail: %v", err)
	}
	select {
	case got := <-mails:
		if !bytes.Equal(got, msg) {
			t.Fatalf("the SMTP server received %d bytes, not the %d-byte message", len(got), len(msg))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the SMTP server got no message")
	}
	if dropped := stop(); dropped != 0 {
		t.Fatalf("tcpdump dropped %d packets", dropped)
	}

	r, out := extract(t, file, Options{})
	want := map[string][]byte{"secret.tar": files.data["secret.tar"], "index.html": page}
	for _, e := range top(r, "http") {
		orig, ok := want[e.Name]
		if !ok {
			continue
		}
		if !e.Complete || e.SHA256 != sha(orig) || !bytes.Equal(readOut(t, out, e), orig) {
			t.Errorf("http %s: complete %v, %d bytes, sha256 %s; want the %d-byte original", e.Name, e.Complete, e.Size, e.SHA256, len(orig))
		}
		if !slices.Contains(e.Decoded, "chunked") || !slices.Contains(e.Decoded, "gzip") || e.NameFrom != "URL" {
			t.Errorf("http %s: decoded %v, name from %q; want chunked and gzip, from the URL", e.Name, e.Decoded, e.NameFrom)
		}
		delete(want, e.Name)
	}
	if len(want) > 0 {
		t.Errorf("HTTP bodies not extracted: %v; objects %v", slices.Collect(mapKeys(want)), names(top(r, "http")))
	}
	chain := []string{filepath.Base(file), "http:secret.tar", "tar:inner.tar", "tar:flag.txt", "base64"}
	if len(r.Flags) != 1 || r.Flags[0].Flag != files.flag || !slices.Equal(r.Flags[0].Chain, chain) {
		t.Errorf("flags %+v; want %s with chain %q", r.Flags, files.flag, chain)
	}

	var gotAttachment, gotText, gotMail bool
	for _, e := range top(r, "smtp") {
		b := readOut(t, out, e)
		switch {
		case e.Name == "report.bin":
			gotAttachment = bytes.Equal(b, attachment) && e.SHA256 == sha(attachment)
		case bytes.Equal(b, []byte(strings.ReplaceAll(qpText, "\n", "\r\n"))) || bytes.Equal(b, []byte(qpText)):
			gotText = true
		case bytes.Equal(b, msg):
			gotMail = true
		}
	}
	if !gotAttachment || !gotText || !gotMail {
		t.Errorf("SMTP: attachment %v, quoted-printable part %v, whole message %v; objects %v\nwarnings:\n%s",
			gotAttachment, gotText, gotMail, names(top(r, "smtp")), strings.Join(r.Warnings, "\n"))
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// mailWithAttachment builds a MIME message: a quoted-printable text part
// and a base64 attachment, with CRLF line endings as SMTP carries them.
func mailWithAttachment(t *testing.T, name string, data []byte, text string) []byte {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, _ := mw.CreatePart(h)
	qw := quotedprintable.NewWriter(pw)
	qw.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
	qw.Close()
	h = textproto.MIMEHeader{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Transfer-Encoding", "base64")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	pw, _ = mw.CreatePart(h)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		fmt.Fprintf(pw, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	fmt.Fprintf(pw, "%s\r\n", enc)
	mw.Close()
	var m bytes.Buffer
	fmt.Fprintf(&m, "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: the report\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&m, "Content-Type: multipart/mixed; boundary=%s\r\n\r\n", mw.Boundary())
	m.Write(body.Bytes())
	return m.Bytes()
}

// serveSMTP accepts one SMTP session on ln and sends the message it
// received (dot-unstuffed, CRLF line endings) to mails.
func serveSMTP(ln net.Listener, mails chan<- []byte) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	tc := textproto.NewConn(c)
	tc.PrintfLine("220 mail.example.org ESMTP test")
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		switch cmd {
		case "EHLO":
			tc.PrintfLine("250-mail.example.org\r\n250 8BITMIME")
		case "HELO", "MAIL", "RCPT", "RSET", "NOOP":
			tc.PrintfLine("250 OK")
		case "DATA":
			tc.PrintfLine("354 End data with <CR><LF>.<CR><LF>")
			b, err := io.ReadAll(tc.DotReader())
			if err != nil {
				return
			}
			mails <- bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
			tc.PrintfLine("250 OK queued")
		case "QUIT":
			tc.PrintfLine("221 bye")
			return
		default:
			tc.PrintfLine("502 not implemented")
		}
	}
}
