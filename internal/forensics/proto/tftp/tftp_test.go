package tftp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/forensics/flow"
)

func ep(s string) flow.Endpoint {
	ap := netip.MustParseAddrPort(s)
	return flow.Endpoint{Addr: ap.Addr(), Port: ap.Port()}
}

func op(code uint16, rest ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

func strs(s ...string) []byte { return []byte(strings.Join(s, "\x00") + "\x00") }

func u16(n int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(n)) }

func rrq(name string, opts ...string) []byte {
	return op(opRRQ, strs(append([]string{name, "octet"}, opts...)...))
}
func wrq(name string, opts ...string) []byte {
	return op(opWRQ, strs(append([]string{name, "octet"}, opts...)...))
}
func data(n int, p []byte) []byte         { return op(opDATA, u16(n), p) }
func ack(n int) []byte                    { return op(opACK, u16(n)) }
func oack(opts ...string) []byte          { return op(opOACK, strs(opts...)) }
func tftpErr(code int, msg string) []byte { return op(opERROR, u16(code), strs(msg)) }

// capture numbers datagrams as frames in order.
type capture struct{ d []flow.Datagram }

func (c *capture) add(src, dst flow.Endpoint, p []byte) {
	n := len(c.d) + 1
	c.d = append(c.d, flow.Datagram{Src: src, Dst: dst, Frame: n, Time: time.Unix(1700000000, int64(n)*1000), Payload: p})
}

var (
	client = ep("10.0.0.2:50000")
	srv69  = ep("10.0.0.1:69")
	srvTID = ep("10.0.0.1:60001")
)

// download is an RRQ transfer as tftp-hpa runs it; skip leaves blocks
// out of the capture, dup sends blocks twice.
func download(c *capture, name string, file []byte, bs int, opts bool, skip, dup map[int]bool) {
	if opts {
		c.add(client, srv69, rrq(name, "tsize", "0", "blksize", fmt.Sprint(bs)))
		c.add(srvTID, client, oack("tsize", fmt.Sprint(len(file)), "blksize", fmt.Sprint(bs)))
		c.add(client, srvTID, ack(0))
	} else {
		c.add(client, srv69, rrq(name))
	}
	for n, off := 1, 0; ; n++ {
		end := min(off+bs, len(file))
		if !skip[n] {
			c.add(srvTID, client, data(n&0xffff, file[off:end]))
			if dup[n] {
				c.add(srvTID, client, data(n&0xffff, file[off:end]))
			}
		}
		c.add(client, srvTID, ack(n&0xffff))
		if end-off < bs {
			return
		}
		off = end
	}
}

func content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

type want struct {
	name, nameFrom string
	data           []byte
	complete       bool
	expected       int64
	gaps           []flow.Range
	notes          []string
}

func TestExtract(t *testing.T) {
	t.Parallel()
	file := content(100000)
	exact := content(1468 * 3)
	big := content(70000 * 8)
	tests := []struct {
		name     string
		build    func(c *capture)
		want     []want
		warnings []string
	}{
		{
			name:  "RRQ with blksize and tsize",
			build: func(c *capture) { download(c, "boot/pxelinux.0", file, 1468, true, nil, nil) },
			want: []want{{name: "boot/pxelinux.0", nameFrom: "RRQ", data: file, complete: true, expected: 100000,
				notes: []string{"OACK blksize=1468 tsize=100000"}}},
		},
		{
			name:  "plain RRQ, 512-byte blocks, a size that is a multiple of the block",
			build: func(c *capture) { download(c, "x.bin", exact[:1024], 512, false, nil, nil) },
			want:  []want{{name: "x.bin", nameFrom: "RRQ", data: exact[:1024], complete: true, expected: -1}},
		},
		{
			name:  "duplicate blocks",
			build: func(c *capture) { download(c, "f", file, 1468, true, nil, map[int]bool{3: true, 7: true}) },
			want: []want{{name: "f", nameFrom: "RRQ", data: file, complete: true, expected: 100000,
				notes: []string{"2 duplicate block(s) (retransmissions) dropped"}}},
		},
		{
			name:  "a missing block is a gap",
			build: func(c *capture) { download(c, "f", file, 1468, true, map[int]bool{5: true}, nil) },
			want: []want{{name: "f", nameFrom: "RRQ", data: holed(file, 4*1468, 5*1468), expected: 100000,
				gaps: []flow.Range{{Start: 4 * 1468, End: 5 * 1468}}, notes: []string{"blocks 5-5 missing"}}},
		},
		{
			name: "no request captured",
			build: func(c *capture) {
				download(c, "f", file, 1468, true, nil, nil)
				c.d = slices.DeleteFunc(c.d, func(d flow.Datagram) bool { return d.Dst == srv69 })
			},
			want: []want{{name: "tftp-60001", data: file, complete: true, expected: 100000, notes: []string{"request was not captured"}}},
		},
		{
			name: "WRQ upload",
			build: func(c *capture) {
				c.add(client, srv69, wrq("up.cfg", "tsize", "3000"))
				c.add(srvTID, client, oack("tsize", "3000"))
				for n := 1; n <= 6; n++ {
					c.add(client, srvTID, data(n, file[(n-1)*512:min(n*512, 3000)]))
					c.add(srvTID, client, ack(n))
				}
			},
			want: []want{{name: "up.cfg", nameFrom: "WRQ", data: file[:3000], complete: true, expected: 3000}},
		},
		{
			name: "file not found",
			build: func(c *capture) {
				c.add(client, srv69, rrq("missing"))
				c.add(srvTID, client, tftpErr(1, "File not found"))
			},
			warnings: []string{`TFTP RRQ "missing": ERROR 1 "File not found"`},
		},
		{
			name: "only the client's side",
			build: func(c *capture) {
				download(c, "f", file, 1468, true, nil, nil)
				c.d = slices.DeleteFunc(c.d, func(d flow.Datagram) bool { return d.Src == srvTID })
			},
			warnings: []string{"the DATA sent by 10.0.0.1:60001 was not captured (only the other side?); 10.0.0.2:50000 acknowledged blocks up to 69"},
		},
		{
			name:  "block numbers wrap to 0",
			build: func(c *capture) { download(c, "big", big, 8, true, nil, nil) },
			want: []want{{name: "big", nameFrom: "RRQ", data: big, complete: true, expected: int64(len(big)),
				notes: []string{"wrapped 1 time(s), going on from 0"}}},
		},
		{
			name: "block numbers wrap to 1",
			build: func(c *capture) {
				download(c, "big", big, 8, true, nil, nil)
				// Renumber as an implementation that skips 0 does.
				n := 0
				for i, d := range c.d {
					if d.Payload[1] == opDATA {
						n++
						b := (n-1)%65535 + 1
						c.d[i].Payload = data(b, d.Payload[4:])
					}
				}
			},
			want: []want{{name: "big", nameFrom: "RRQ", data: big, complete: true, expected: int64(len(big)),
				notes: []string{"going on from 1"}}},
		},
		{
			name: "DNS is not TFTP",
			build: func(c *capture) {
				c.add(ep("10.0.0.2:40000"), ep("10.0.0.1:53"), []byte("\x00\x03\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &capture{}
			tc.build(c)
			objs, warns := Extract(c.d)
			if len(objs) != len(tc.want) {
				t.Fatalf("Extract returned %d objects, want %d; warnings %v", len(objs), len(tc.want), warns)
			}
			for i, w := range tc.want {
				o := objs[i]
				got, err := io.ReadAll(io.NewSectionReader(o.Data, 0, o.Size))
				if err != nil {
					t.Fatal(err)
				}
				if o.Protocol != "tftp" || o.Name != w.name || o.NameFrom != w.nameFrom {
					t.Errorf("object %d = %q from %q, want %q from %q", i, o.Name, o.NameFrom, w.name, w.nameFrom)
				}
				if sum(got) != sum(w.data) {
					t.Errorf("object %q: %d bytes, content differs from the %d sent; notes %q", o.Name, len(got), len(w.data), o.Notes)
				}
				if o.Complete != w.complete || o.ExpectedSize != w.expected || !slices.Equal(o.Gaps, w.gaps) {
					t.Errorf("object %q: Complete %v ExpectedSize %d Gaps %v, want %v %d %v; notes %q",
						o.Name, o.Complete, o.ExpectedSize, o.Gaps, w.complete, w.expected, w.gaps, o.Notes)
				}
				for _, n := range w.notes {
					if !slices.ContainsFunc(o.Notes, func(s string) bool { return strings.Contains(s, n) }) {
						t.Errorf("object %q: no note containing %q in %q", o.Name, n, o.Notes)
					}
				}
				if o.Flow.Proto != "udp" || o.Frames.First == 0 || o.Frames.Last < o.Frames.First {
					t.Errorf("object %q: Flow %+v Frames %+v", o.Name, o.Flow, o.Frames)
				}
			}
			for _, w := range tc.warnings {
				if !slices.ContainsFunc(warns, func(x flow.Warning) bool { return strings.Contains(x.Message, w) }) {
					t.Errorf("no warning containing %q in %v", w, warns)
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
