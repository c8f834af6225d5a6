package tftp

import (
	"encoding/binary"
	"io"
	"testing"

	"noops/internal/forensics/flow"
)

// encode writes datagrams as records: a direction byte (0 client→69, 1
// server→client, 2 client→server, 3 another flow), a 2-byte length and
// the payload.
func encode(ds []flow.Datagram) []byte {
	var b []byte
	for _, d := range ds {
		dir := byte(3)
		switch {
		case d.Dst == srv69:
			dir = 0
		case d.Src == srvTID:
			dir = 1
		case d.Src == client:
			dir = 2
		}
		b = append(b, dir)
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.Payload)))
		b = append(b, d.Payload...)
	}
	return b
}

func decodeRecords(b []byte) []flow.Datagram {
	var out []flow.Datagram
	other1, other2 := ep("10.9.9.9:1234"), ep("10.9.9.8:4321")
	for len(b) >= 3 {
		dir, n := b[0]%4, int(binary.BigEndian.Uint16(b[1:]))
		b = b[3:]
		n = min(n, len(b))
		src, dst := client, srv69
		switch dir {
		case 1:
			src, dst = srvTID, client
		case 2:
			src, dst = client, srvTID
		case 3:
			src, dst = other1, other2
		}
		out = append(out, flow.Datagram{Src: src, Dst: dst, Frame: len(out) + 1, Payload: b[:n]})
		b = b[n:]
	}
	return out
}

// FuzzTFTP feeds arbitrary datagrams and checks the objects.
func FuzzTFTP(f *testing.F) {
	c := &capture{}
	download(c, "f", content(3000), 512, true, map[int]bool{2: true}, map[int]bool{3: true})
	f.Add(encode(c.d))
	c = &capture{}
	c.add(client, srv69, wrq("u", "tsize", "99999999999999999"))
	c.add(client, srvTID, data(65535, []byte("x")))
	c.add(client, srvTID, data(1, []byte("y")))
	c.add(srvTID, client, tftpErr(0, "no"))
	f.Add(encode(c.d))
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, _ := Extract(decodeRecords(b))
		for _, o := range objs {
			if o.Size < 0 || o.Size > 2<<30 {
				t.Fatalf("object %q: Size %d", o.Name, o.Size)
			}
			for _, g := range o.Gaps {
				if g.Start < 0 || g.End <= g.Start {
					t.Fatalf("object %q: gap %v", o.Name, g)
				}
			}
			if o.Size <= 1<<20 {
				if n, err := io.Copy(io.Discard, io.NewSectionReader(o.Data, 0, o.Size)); n != o.Size {
					t.Fatalf("object %q: read %d of %d: %v", o.Name, n, o.Size, err)
				}
			}
		}
	})
}
