package ftp

import (
	"testing"

	"noops/internal/forensics/flow"
)

// FuzzFTPControl feeds arbitrary control connection bytes (the server's
// replies up to split, the client's commands after) with two candidate
// data connections, and checks that the objects are consistent.
func FuzzFTPControl(f *testing.F) {
	full, _ := transcript(steps(vsLogin, []step{pasv(40000), retr("file.bin", 10, done)}))
	cs, sc := transcript(steps(vsLogin, []step{{"PORT 127,0,0,1,200,10", []string{"200 PORT command successful. Consider using PASV."}},
		{"REST 5", []string{"350 Restart position accepted (5)."}}, retr("file.bin", 10, done),
		epsv(40000), {"STOR x", []string{"150 Ok to send data.", done}}}))
	f.Add(append(append([]byte{}, sc...), cs...), len(sc))
	f.Add(full, len(full))
	f.Add([]byte("220 (vsFTPd 3.0.3)\r\n227 Entering Passive Mode (127,0,0,1,156,64).\r\n150-x\r\n150 y\r\n226 z\r\nUSER a\r\nRETR b\r\n"), 87)
	f.Add([]byte("220 FTP\r\n213 99999999999999999999\r\n350 Restarting at 9223372036854775807\r\n150 Opening BINARY mode data connection for x (18446744073709551615 bytes).\r\n"), 200)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		split = min(max(split, 0), len(data))
		cli, srv := ep("127.0.0.1:51234"), ep("127.0.0.1:21")
		ctrl := &flow.Conn{ID: 1, Client: cli, Server: srv,
			ToClient: half(srv, cli, data[:split]), ToServer: half(cli, srv, data[split:])}
		conns := []*flow.Conn{ctrl,
			dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), []byte{}, []byte("0123456789")),
			dataConn(3, ep("127.0.0.1:20"), ep("127.0.0.1:51210"), []byte("abcdefghij"), nil),
		}
		objs, _ := Extract(conns)
		for _, o := range objs {
			if o.Size < 0 || o.Size > 1<<40 {
				t.Fatalf("object %q: Size %d", o.Name, o.Size)
			}
			for _, g := range o.Gaps {
				if g.Start < 0 || g.End <= g.Start || (g.End > o.Size && g.End > o.ExpectedSize) {
					t.Fatalf("object %q: gap %v outside [0, %d) / expected %d", o.Name, g, o.Size, o.ExpectedSize)
				}
			}
			if o.Size <= 1<<20 {
				b := make([]byte, o.Size)
				if n, err := o.Data.ReadAt(b, 0); int64(n) != o.Size {
					t.Fatalf("object %q: read %d of %d: %v", o.Name, n, o.Size, err)
				}
			}
		}
	})
}
