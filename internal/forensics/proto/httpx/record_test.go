package httpx

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"noops/internal/forensics/flow"
)

// recorder is a net.Listener that keeps every byte its connections carry
// each way: the transcripts of a real HTTP server and client.
type recorder struct {
	net.Listener
	mu    sync.Mutex
	conns []*recConn
}

type recConn struct {
	net.Conn
	mu       sync.Mutex
	in, out  bytes.Buffer // client→server, server→client
	clientEP netip.AddrPort
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.out.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (r *recorder) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recConn{Conn: c, clientEP: netip.MustParseAddrPort(c.RemoteAddr().String())}
	r.mu.Lock()
	r.conns = append(r.conns, rc)
	r.mu.Unlock()
	return rc, nil
}

func newRecorder(t *testing.T) *recorder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{Listener: l}
}

// flowConns turns the recorded connections into what the reassembler
// would give for a capture of both sides.
func (r *recorder) flowConns() []*flow.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	srv := netip.MustParseAddrPort(r.Addr().String())
	var out []*flow.Conn
	for i, c := range r.conns {
		c.mu.Lock()
		cl := flow.Endpoint{Addr: c.clientEP.Addr(), Port: c.clientEP.Port()}
		sv := flow.Endpoint{Addr: srv.Addr(), Port: srv.Port()}
		out = append(out, &flow.Conn{ID: i + 1, Client: cl, Server: sv,
			ToServer: half(cl, sv, c.in.Bytes()), ToClient: half(sv, cl, c.out.Bytes())})
		c.mu.Unlock()
	}
	return out
}

func half(src, dst flow.Endpoint, data []byte, gaps ...flow.Range) *flow.Half {
	b := bytes.Clone(data)
	for _, g := range gaps {
		clear(b[g.Start:min(g.End, int64(len(b)))])
	}
	h := flow.NewHalf(src, dst, bytes.NewReader(b), int64(len(b)), nil)
	h.Gaps, h.SYN, h.FIN = gaps, true, true
	return h
}

func content(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func readAll(t *testing.T, o *flow.Object) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(o.Data, 0, o.Size))
	if err != nil {
		t.Fatalf("reading object %q: %v", o.Name, err)
	}
	return b
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func hasNote(o *flow.Object, sub string) bool {
	for _, n := range o.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

func describe(objs []*flow.Object) string {
	var b strings.Builder
	for _, o := range objs {
		fmt.Fprintf(&b, "\n  [%s (%s) %d bytes conn %d complete=%v decoded=%q gaps=%v notes=%q]", o.Name, o.NameFrom, o.Size, o.Flow.Conn, o.Complete, o.Decoded, o.Gaps, o.Notes)
	}
	return b.String()
}
