package httpx

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"noops/internal/forensics/flow"
)

// FuzzHTTP feeds arbitrary bytes as a connection's two directions (the
// requests up to split, the responses after) and checks that the objects
// are consistent and readable.
func FuzzHTTP(f *testing.F) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("hello hello hello hello"))
	zw.Close()
	req := "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /m HTTP/1.1\r\nRange: bytes=0-3\r\n\r\nPOST /u HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 74\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\nabc\r\n--b--\r\n"
	resp := fmt.Sprintf("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n%x\r\n%s\r\n0\r\nX-T: 1\r\n\r\n", gz.Len(), gz.Bytes()) +
		"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\nContent-Length: 4\r\n\r\nabcd" +
		"HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=Q\r\n\r\n--Q\r\nContent-Range: bytes 5-6/10\r\n\r\nxy\r\n--Q--\r\n" +
		"HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n\x78\x9c\x01"
	f.Add([]byte(req+resp), len(req))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\nab"), 0)
	f.Add([]byte("HTTP/1.1 206 x\r\nContent-Range: bytes 1125899906842000-1125899906842001/*\r\nContent-Length: 2\r\n\r\nab"), 0)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffff\r\nab"), 0)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		split = min(max(split, 0), len(data))
		a, b := flow.Endpoint{Port: 50000}, flow.Endpoint{Port: 80}
		c := &flow.Conn{ID: 1, Client: a, Server: b, ToServer: half(a, b, data[:split]), ToClient: half(b, a, data[split:])}
		objs, _ := Extract([]*flow.Conn{c}, Options{MaxBodyBytes: 1 << 20, MemLimit: 1 << 18, TempDir: dir})
		for _, o := range objs {
			if o.Size < 0 || o.Size > 2<<30 {
				t.Fatalf("object %q: Size %d", o.Name, o.Size)
			}
			for _, g := range o.Gaps {
				if g.Start < 0 || g.End <= g.Start {
					t.Fatalf("object %q: gap %v", o.Name, g)
				}
			}
			if o.Size <= 4<<20 {
				if n, err := io.Copy(io.Discard, io.NewSectionReader(o.Data, 0, o.Size)); n != o.Size {
					t.Fatalf("object %q: read %d of %d: %v", o.Name, n, o.Size, err)
				}
			}
			o.Close()
		}
	})
}
