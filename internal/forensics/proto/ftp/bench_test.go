package ftp

import (
	"io"
	"testing"

	"noops/internal/forensics/flow"
)

// BenchmarkExtract extracts a 64 MiB passive download from a server-only
// capture and reads it back: the work the CTF case costs.
func BenchmarkExtract(b *testing.B) {
	file := content(9, 64<<20)
	cli, srv := ep("127.0.0.1:51234"), ep("127.0.0.1:21")
	conns := []*flow.Conn{
		ctrlConn(1, cli, srv, steps(vsLogin, []step{pasv(40000), retr("secret.tar", len(file), done), vsQuit}), serverOnly),
		dataConn(2, ep("127.0.0.1:52002"), ep("127.0.0.1:40000"), nil, file),
	}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		objs, _ := Extract(conns)
		if n, _ := io.Copy(io.Discard, io.NewSectionReader(objs[0].Data, 0, objs[0].Size)); n != int64(len(file)) {
			b.Fatalf("read %d of %d", n, len(file))
		}
	}
}
