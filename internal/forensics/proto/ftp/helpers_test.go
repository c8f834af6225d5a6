package ftp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"noops/internal/forensics/flow"
)

func ep(s string) flow.Endpoint {
	ap := netip.MustParseAddrPort(s)
	return flow.Endpoint{Addr: ap.Addr(), Port: ap.Port()}
}

// half builds a reassembled direction the way the reassembler hands it
// over: the bytes of a gap read as zeros.
func half(src, dst flow.Endpoint, data []byte, gaps ...flow.Range) *flow.Half {
	b := bytes.Clone(data)
	for _, g := range gaps {
		clear(b[g.Start:g.End])
	}
	h := flow.NewHalf(src, dst, bytes.NewReader(b), int64(len(b)), nil)
	h.Gaps, h.SYN, h.FIN = gaps, true, true
	return h
}

// step is one exchange of a control session: the client's command ("" for
// the greeting) and the server's reply lines.
type step struct {
	cmd     string
	replies []string
}

func transcript(steps []step) (toServer, toClient []byte) {
	var c, s bytes.Buffer
	for _, st := range steps {
		if st.cmd != "" {
			c.WriteString(st.cmd + "\r\n")
		}
		for _, r := range st.replies {
			s.WriteString(r + "\r\n")
		}
	}
	return c.Bytes(), s.Bytes()
}

type side int

const (
	both side = iota
	serverOnly
	clientOnly
)

// ctrlConn is a control connection; sides drops what a one-sided capture
// would not hold.
func ctrlConn(id int, client, server flow.Endpoint, steps []step, sides side) *flow.Conn {
	cs, sc := transcript(steps)
	c := &flow.Conn{ID: id, Client: client, Server: server, Frames: flow.Frames{First: id * 10, Last: 10000}}
	if sides != serverOnly {
		c.ToServer = half(client, server, cs)
	}
	if sides != clientOnly {
		c.ToClient = half(server, client, sc)
	}
	return c
}

// dataConn is a data connection from client (the SYN's sender) to
// server; toServer/toClient are the bytes each way, nil when the capture
// lacks that direction.
func dataConn(id int, client, server flow.Endpoint, toServer, toClient []byte, gaps ...flow.Range) *flow.Conn {
	c := &flow.Conn{ID: id, Client: client, Server: server, Frames: flow.Frames{First: id * 10, Last: id*10 + 5}}
	// The gaps are in the longer direction, the one carrying the file.
	down := len(toClient) >= len(toServer)
	if toServer != nil {
		c.ToServer = half(client, server, toServer, pick(!down, gaps)...)
	}
	if toClient != nil {
		c.ToClient = half(server, client, toClient, pick(down, gaps)...)
	}
	return c
}

func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readAll(t *testing.T, o *flow.Object) []byte {
	t.Helper()
	b := make([]byte, o.Size)
	n, err := o.Data.ReadAt(b, 0)
	if err != nil && !(err == io.EOF && int64(n) == o.Size) {
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

func hasWarning(ws []flow.Warning, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w.Message, sub) {
			return true
		}
	}
	return false
}

func pick(ok bool, gaps []flow.Range) []flow.Range {
	if ok {
		return gaps
	}
	return nil
}
