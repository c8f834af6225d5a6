package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var benchBody = []byte("hello from the app\n")

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(benchBody)
	}))
	b.Cleanup(up.Close)
	return up
}

// benchGet runs GETs of url (POSTs of a small body with post) from 16
// goroutines per CPU over client's keep-alive connections.
func benchGet(b *testing.B, client *http.Client, url string, post bool) {
	b.Cleanup(client.CloseIdleConnections) // before the gateway stops
	b.SetParallelism(16)                   // many connections, as wrk -c
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var res *http.Response
			var err error
			if post {
				res, err = client.Post(url, "text/plain", strings.NewReader("name=value&other=thing"))
			} else {
				res, err = client.Get(url)
			}
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProxy measures a full request through the gateway: a client on
// loopback over TLS keep-alive, the proxy, and an httptest upstream. ns/op
// and allocs/op cover all three; compare with BenchmarkDirectTLS for the
// gateway's own share. "http1" is what wrk sends (the pooled fast path),
// "h2" the same over HTTP/2, "http1-post" a request with a body
// (httputil.ReverseProxy and http.Transport).
func BenchmarkProxy(b *testing.B) {
	for _, mode := range []string{"http1", "h2", "http1-post"} {
		proto, post := strings.TrimSuffix(mode, "-post"), strings.HasSuffix(mode, "-post")
		b.Run(mode, func(b *testing.B) {
			tg := startGateway(b, false)
			up := benchUpstream(b)
			tg.SetBackends("hello", []Backend{{ID: "a", Addr: up.Listener.Addr().String()}}, "")
			https, _ := tg.Addr()
			_, pool := selfSigned(b)
			conf := &tls.Config{RootCAs: pool}
			if proto == "http1" {
				conf.NextProtos = []string{"http/1.1"}
			}
			c := newClient(https.String(), pool, conf)
			if proto == "http1" {
				c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
			}
			benchGet(b, c, tg.url("hello.localhost", "/"), post)
		})
	}
}

// BenchmarkDirectTLS is the baseline: the same client and upstream handler
// over TLS with no gateway between them.
func BenchmarkDirectTLS(b *testing.B) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(benchBody)
	}))
	cert, pool := selfSigned(b)
	up.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut at Close
	up.StartTLS()
	b.Cleanup(up.Close)
	c := newClient(up.Listener.Addr().String(), pool, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	benchGet(b, c, "https://hello.localhost/", false)
}

func BenchmarkRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		h := http.Header{}
		requestID(h)
	}
}

func BenchmarkAppOf(b *testing.B) {
	g := New(Config{Domain: "localhost"})
	b.ReportAllocs()
	for b.Loop() {
		g.appOf("hello.localhost:8443")
	}
}

// rawUpstream is a keep-alive HTTP/1.1 server that answers every request
// with the same bytes and allocates nothing per request, so that a
// benchmark's allocations are the gateway's own.
func rawUpstream(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\r\nhello from the app\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8<<10)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						have = copy(buf, buf[i+4:have])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// discardWriter is a ResponseWriter that keeps only the header map.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP is the gateway's handler alone: routing, request ID,
// the pooled upstream round trip and the response copy, without TLS or the
// HTTP server around it. allocs/op are the handler's.
func BenchmarkServeHTTP(b *testing.B) {
	g := New(Config{Domain: "localhost"})
	g.SetBackends("hello", []Backend{{ID: "raw", Addr: rawUpstream(b)}}, "")
	req := httptest.NewRequest(http.MethodGet, "https://hello.localhost/", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		delete(req.Header, "X-Request-Id")
		clear(w.h)
		g.ServeHTTP(w, req)
	}
}
