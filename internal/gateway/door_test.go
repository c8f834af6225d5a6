package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// tlsConn opens an HTTP/1.1 TLS connection to the gateway.
func (tg *testGateway) tlsConn(t *testing.T) *tls.Conn {
	t.Helper()
	https, _ := tg.Addr()
	_, pool := selfSigned(t)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", https.String(),
		&tls.Config{RootCAs: pool, ServerName: "hello.localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends one keep-alive request on c.
func roundTrip(t *testing.T, c net.Conn, rd *bufio.Reader) int {
	t.Helper()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// closed reports whether the server closed c within a second.
func closed(c net.Conn, rd *bufio.Reader) bool {
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := rd.ReadByte()
	var ne net.Error
	return err != nil && !(errorAs(err, &ne) && ne.Timeout())
}

func TestConnectionsPerClient(t *testing.T) {
	up := newUpstream(t, "a")
	tg := startGateway(t, false, func(c *Config) { c.Limits.ConnsPerClient = 2 })
	tg.SetBackends("hello", []Backend{up.backend()}, "")
	loop := netip.MustParseAddr("127.0.0.1")

	// Two idle keep-alive connections: a third makes the server close one.
	a, b := tg.tlsConn(t), tg.tlsConn(t)
	ra, rb := bufio.NewReader(a), bufio.NewReader(b)
	if roundTrip(t, a, ra) != 200 || roundTrip(t, b, rb) != 200 {
		t.Fatal("first requests failed")
	}
	c := tg.tlsConn(t)
	rc := bufio.NewReader(c)
	if roundTrip(t, c, rc) != 200 {
		t.Fatal("the third connection was not served")
	}
	if !closed(a, ra) && !closed(b, rb) {
		t.Error("no idle connection was closed to make room")
	}
	if n := tg.Conns(loop); n != 2 {
		t.Errorf("%d connections open, want 2", n)
	}

	// Two connections busy (a request begun, not finished): a new one is refused.
	tg2 := startGateway(t, false, func(c *Config) { c.Limits.ConnsPerClient = 2 })
	tg2.SetBackends("hello", []Backend{up.backend()}, "")
	for i := 0; i < 2; i++ {
		x := tg2.tlsConn(t)
		io.WriteString(x, "GET / HTTP/1.1\r\nHost: hello.localhost\r\n") // headers not finished
	}
	time.Sleep(100 * time.Millisecond)
	https, _ := tg2.Addr()
	_, pool := selfSigned(t)
	if x, err := tls.Dial("tcp", https.String(), &tls.Config{RootCAs: pool, ServerName: "hello.localhost"}); err == nil {
		x.Close()
		t.Error("a third connection was accepted while two were busy")
	}
	if tg2.door.overLimit.Load() == 0 {
		t.Error("the refusal was not counted")
	}
}

func errorAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}
