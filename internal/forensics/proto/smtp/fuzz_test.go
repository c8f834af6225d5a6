package smtp

import (
	"io"
	"testing"

	"noops/internal/forensics/flow"
)

// FuzzSMTP feeds arbitrary bytes as a session's two directions (the
// client's up to split, the server's after) and checks the objects.
func FuzzSMTP(f *testing.F) {
	m := newMail()
	client := "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + string(m.raw) + ".\r\nBDAT 5 LAST\r\nabcdeAUTH LOGIN\r\neA==\r\nQUIT\r\n"
	server := "220 x ESMTP\r\n250-x\r\n250 CHUNKING\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n250 ok\r\n334 x\r\n235 ok\r\n221 bye\r\n"
	f.Add([]byte(client+server), len(client))
	f.Add([]byte("HELO x\r\nDATA\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=4=\r\n--c--\r\n--b--\r\n.\r\n"), 1000)
	f.Add([]byte("EHLO x\r\nBDAT 99999999999999999999\r\n"), 100)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		split = min(max(split, 0), len(data))
		a, b := flow.Endpoint{Port: 40000}, flow.Endpoint{Port: 25}
		c := &flow.Conn{ID: 1, Client: a, Server: b, ToServer: half(a, b, data[:split]), ToClient: half(b, a, data[split:])}
		objs, _ := Extract([]*flow.Conn{c})
		for _, o := range objs {
			if o.Size < 0 || o.Size > int64(len(data))*4+16 {
				t.Fatalf("object %q: Size %d from %d input bytes", o.Name, o.Size, len(data))
			}
			for _, g := range o.Gaps {
				if g.Start < 0 || g.End <= g.Start || g.End > o.Size {
					t.Fatalf("object %q: gap %v outside [0, %d)", o.Name, g, o.Size)
				}
			}
			if n, err := io.Copy(io.Discard, io.NewSectionReader(o.Data, 0, o.Size)); n != o.Size {
				t.Fatalf("object %q: read %d of %d: %v", o.Name, n, o.Size, err)
			}
			o.Close()
		}
	})
}
