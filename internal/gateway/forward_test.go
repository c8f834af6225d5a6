package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingUpstream is an httptest server that counts the connections it
// accepted.
func countingUpstream(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	up := httptest.NewUnstartedServer(h)
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	return up, &conns
}

func TestResponses(t *testing.T) {
	tg := startGateway(t, false).http1()
	big := strings.Repeat("x", 1<<20)
	up, _ := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			io.WriteString(w, big)
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.WriteHeader(http.StatusNotModified)
		case "/hop":
			w.Header().Set("Connection", "X-Private")
			w.Header().Set("X-Private", "secret")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-Public", "ok")
			io.WriteString(w, "hop")
		case "/query":
			io.WriteString(w, r.URL.RawQuery)
		case "/method":
			io.WriteString(w, r.Method+" "+r.Header.Get("Content-Length"))
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	})
	tg.SetBackends("hello", []Backend{{ID: "u", Addr: up.Listener.Addr().String()}}, "")
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string
		check              func(t *testing.T, res *http.Response)
	}{
		{name: "large body", path: "/big", wantStatus: 200, wantBody: big},
		{name: "chunked with trailer", path: "/chunked", wantStatus: 200, wantBody: "part1,part2",
			check: func(t *testing.T, res *http.Response) {
				if got := res.Trailer.Get("X-Sum"); got != "42" {
					t.Errorf("trailer X-Sum = %q, want 42", got)
				}
			}},
		{name: "204", path: "/nocontent", wantStatus: 204},
		{name: "304", path: "/notmodified", wantStatus: 304},
		{name: "HEAD", method: http.MethodHead, path: "/", wantStatus: 200,
			check: func(t *testing.T, res *http.Response) {
				if res.ContentLength != 5 {
					t.Errorf("HEAD Content-Length = %d, want 5", res.ContentLength)
				}
			}},
		{name: "hop-by-hop response headers dropped", path: "/hop", wantStatus: 200, wantBody: "hop",
			check: func(t *testing.T, res *http.Response) {
				if res.Header.Get("X-Private") != "" || res.Header.Get("Keep-Alive") != "" || res.Header.Get("X-Public") != "ok" {
					t.Errorf("response headers %v: want X-Public only", res.Header)
				}
			}},
		{name: "query passed", path: "/query?a=1&b=%20", wantStatus: 200, wantBody: "a=1&b=%20"},
		{name: "ambiguous query cleaned", path: "/query?x=1&a=1;b=2", wantStatus: 200, wantBody: "x=1"},
		{name: "bodyless POST has a length", method: http.MethodPost, path: "/method", wantStatus: 200, wantBody: "POST 0"},
		{name: "DELETE", method: http.MethodDelete, path: "/method", wantStatus: 200, wantBody: "DELETE "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, tg.url("hello.localhost", tc.path), nil)
			res, err := tg.client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, tc.path, err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatalf("reading %s: %v", tc.path, err)
			}
			if res.StatusCode != tc.wantStatus || string(body) != tc.wantBody {
				t.Errorf("%s %s = %d %q (%d bytes), want %d %.40q", method, tc.path, res.StatusCode, string(body[:min(len(body), 40)]), len(body), tc.wantStatus, tc.wantBody)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	tg := startGateway(t, false)
	tests := []struct {
		name      string
		close     bool // the upstream answers Connection: close
		wantConns int32
	}{
		{"reused", false, 1},
		{"closed by the app", true, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, conns := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.close {
					w.Header().Set("Connection", "close")
				}
				io.WriteString(w, "ok")
			})
			tg.SetBackends("hello", []Backend{{ID: tc.name, Addr: up.Listener.Addr().String()}}, "")
			for range 5 {
				if res := tg.get(t, tg.url("hello.localhost", "/"), nil); res.status != 200 || res.body != "ok" {
					t.Fatalf("GET = %d %q", res.status, res.body)
				}
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Errorf("5 sequential requests used %d upstream connections, want %d", got, tc.wantConns)
			}
		})
	}
}

// closingUpstream answers each request on a connection and then closes it
// without saying so, like an app whose keep-alive timeout just expired.
func closingUpstream(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var served atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				n := served.Add(1)
				body := fmt.Sprintf("%s %d", req.Method, n%10)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
				if req.Method != http.MethodHead {
					io.WriteString(c, body)
				}
			}()
		}
	}()
	return ln.Addr().String(), &served
}

func TestStaleConnection(t *testing.T) {
	tg := startGateway(t, false).http1()
	addr, _ := closingUpstream(t)
	tg.SetBackends("hello", []Backend{{ID: "c", Addr: addr}}, "")
	tests := []struct {
		method     string
		wantStatus int
	}{
		{http.MethodGet, 200},  // sent again on a new connection
		{http.MethodHead, 200}, // idempotent too
		{http.MethodPost, 502}, // the app may have acted on it: not repeated
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			// The first request leaves a pooled connection that the app has
			// closed; the second finds it within staleCheckAfter.
			for i := range 2 {
				req, _ := http.NewRequest(http.MethodGet, tg.url("hello.localhost", "/"), nil)
				if i == 1 {
					req.Method = tc.method
				}
				res, err := tg.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if want := map[int]int{0: 200, 1: tc.wantStatus}[i]; res.StatusCode != want {
					t.Errorf("request %d (%s) = %d, want %d", i, req.Method, res.StatusCode, want)
				}
			}
		})
	}
}

func TestStaleConnectionAfterIdle(t *testing.T) {
	tg := startGateway(t, false)
	addr, _ := closingUpstream(t)
	tg.SetBackends("hello", []Backend{{ID: "c", Addr: addr}}, "")
	for i := range 2 {
		if i == 1 {
			time.Sleep(2 * staleCheckAfter) // the check on the way out of the pool finds it closed
		}
		res, err := tg.client.Post(tg.url("hello.localhost", "/"), "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("POST %d after idle = %d, want 200", i, res.StatusCode)
		}
	}
}

// TestTruncatedResponse checks that a response the app breaks off does not
// reach the client as if it were complete.
func TestTruncatedResponse(t *testing.T) {
	tg := startGateway(t, false).http1()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
			c.Close()
		}
	}()
	tg.SetBackends("hello", []Backend{{ID: "t", Addr: ln.Addr().String()}}, "")
	res, err := tg.client.Get(tg.url("hello.localhost", "/"))
	if err != nil {
		return // cut before the head reached the client: fine
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil {
		t.Errorf("read %q of a response the app broke off, with no error: want the client to see it cut", body)
	}
}

func TestClientGoneClosesUpstream(t *testing.T) {
	tg := startGateway(t, false)
	upGone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: hi\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // an idle stream: only the gateway closing it ends this
		close(upGone)
	}))
	defer up.Close()
	tg.SetBackends("hello", []Backend{{ID: "s", Addr: up.Listener.Addr().String()}}, "")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.url("hello.localhost", "/"), nil)
	res, err := tg.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	if line != "data: hi\n" {
		t.Fatalf("first line = %q", line)
	}
	cancel()
	res.Body.Close()
	select {
	case <-upGone:
	case <-time.After(5 * time.Second):
		t.Fatal("the app's stream stayed open after the client left")
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	tg := startGateway(t, false)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	}))
	defer up.Close()
	tg.SetBackends("hello", []Backend{{ID: "ws", Addr: up.Listener.Addr().String()}}, "")
	https, _ := tg.Addr()
	_, pool := selfSigned(t)
	c, err := tls.Dial("tcp", https.String(), &tls.Config{RootCAs: pool, ServerName: "hello.localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: hello.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %d, want 101", res.StatusCode)
	}
	io.WriteString(c, "ping\n")
	if got, _ := br.ReadString('\n'); got != "echo ping\n" {
		t.Errorf("over the upgraded connection got %q, want echo ping", got)
	}
}

func TestPoolSweep(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	p := &connPool{addr: ln.Addr().String()}
	var conns []*upConn
	for range 3 {
		c, err := p.get(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	server := []net.Conn{<-accepted, <-accepted, <-accepted}
	defer func() {
		for _, c := range server {
			c.Close()
		}
	}()
	for _, c := range conns {
		p.put(c)
	}
	conns[0].since = time.Now().Add(-2 * upstreamIdleTimeout) // idled too long
	server[1].Close()                                         // closed by the app
	time.Sleep(2 * staleCheckAfter)
	p.sweep(time.Now())
	p.mu.Lock()
	idle := append([]*upConn(nil), p.idle...)
	p.mu.Unlock()
	if len(idle) != 1 || idle[0] != conns[2] {
		t.Fatalf("after sweep the pool holds %d connections, want only the live, recent one", len(idle))
	}
	if c, err := p.get(context.Background(), false); err != nil || c != conns[2] {
		t.Errorf("get after sweep = %v, %v: want the kept connection", c, err)
	}
}
