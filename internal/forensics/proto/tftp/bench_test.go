package tftp

import (
	"io"
	"testing"
)

// BenchmarkExtract follows a 32 MiB download in 1468-byte blocks (the
// size PXE clients ask for), reading the object back.
func BenchmarkExtract(b *testing.B) {
	c := &capture{}
	file := content(32 << 20)
	download(c, "vmlinuz", file, 1468, true, nil, nil)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		objs, _ := Extract(c.d)
		if n, _ := io.Copy(io.Discard, io.NewSectionReader(objs[0].Data, 0, objs[0].Size)); n != int64(len(file)) {
			b.Fatalf("read %d of %d", n, len(file))
		}
	}
}
