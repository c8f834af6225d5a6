package httpx

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"noops/internal/forensics/flow"
)

func benchConn(body []byte, chunk int, gz bool) *flow.Conn {
	var resp bytes.Buffer
	payload := body
	enc := ""
	if gz {
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		w.Write(body)
		w.Close()
		payload, enc = z.Bytes(), "Content-Encoding: gzip\r\n"
	}
	fmt.Fprintf(&resp, "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n%sTransfer-Encoding: chunked\r\n\r\n", enc)
	for p := payload; len(p) > 0; {
		n := min(chunk, len(p))
		fmt.Fprintf(&resp, "%x\r\n", n)
		resp.Write(p[:n])
		resp.WriteString("\r\n")
		p = p[n:]
	}
	resp.WriteString("0\r\n\r\n")
	a, b := flow.Endpoint{Port: 50000}, flow.Endpoint{Port: 80}
	return &flow.Conn{ID: 1, Client: a, Server: b,
		ToServer: half(a, b, []byte("GET /big.tar HTTP/1.1\r\nHost: x\r\n\r\n")), ToClient: half(b, a, resp.Bytes())}
}

// BenchmarkExtract extracts a 64 MiB chunked response (16 KiB chunks),
// plain and gzip-encoded, and reads it back.
func BenchmarkExtract(b *testing.B) {
	body := content(64 << 20)
	for _, gz := range []bool{false, true} {
		c := benchConn(body, 16<<10, gz)
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			opt := Options{TempDir: b.TempDir()}
			for b.Loop() {
				objs, _ := Extract([]*flow.Conn{c}, opt)
				if n, _ := io.Copy(io.Discard, io.NewSectionReader(objs[0].Data, 0, objs[0].Size)); n != int64(len(body)) {
					b.Fatalf("read %d of %d", n, len(body))
				}
				objs[0].Close()
			}
		})
	}
}
