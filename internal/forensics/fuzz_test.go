package forensics

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ftpSession writes an FTP session: the control connection (client
// commands, then vsftpd's replies) and the passive data connection
// carrying data as name.
func (s *synth) ftpSession(name string, data []byte) {
	cli := netip.MustParseAddr("10.0.0.2")
	srv := netip.MustParseAddr("10.0.0.1")
	req := fmt.Sprintf("USER anonymous\r\nPASS x\r\nTYPE I\r\nPASV\r\nRETR %s\r\nQUIT\r\n", name)
	resp := fmt.Sprintf("220 (vsFTPd 3.0.3)\r\n331 Please specify the password.\r\n230 Login successful.\r\n200 Switching to Binary mode.\r\n"+
		"227 Entering Passive Mode (10,0,0,1,200,10).\r\n150 Opening BINARY mode data connection for %s (%d bytes).\r\n226 Transfer complete.\r\n221 Goodbye.\r\n", name, len(data))
	s.connAround(netip.AddrPortFrom(cli, 40000), netip.AddrPortFrom(srv, 21), []byte(req), []byte(resp), func() {
		s.conn(netip.AddrPortFrom(cli, 40001), netip.AddrPortFrom(srv, 200<<8|10), nil, data)
	})
}

// FuzzExtract runs the whole pipeline on mutated captures: whatever the
// bytes, Extract must not panic, must write only inside its directory,
// and every entry must be a file with the manifest's hash.
func FuzzExtract(f *testing.F) {
	flagTar := makeTar(f, tarFile{"flag.txt", []byte("ZmxhZ3tmdXp6fQ==\n")})
	s := newSynth(f)
	s.ftpSession("secret.tar", flagTar)
	f.Add(s.bytes())
	s = newSynth(f)
	s.http(40001, "/a.tar", flagTar, "")
	inner := s.bytes()
	f.Add(inner)
	s = newSynth(f)
	s.http(40002, "/in.pcapng", inner, "")
	f.Add(s.bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(inner)
	zw.Close()
	f.Add(gz.Bytes())
	f.Add(inner[:len(inner)*2/3])
	f.Fuzz(func(t *testing.T, capture []byte) {
		dir, err := os.MkdirTemp("", "fuzzextract")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "c.pcap")
		if err := os.WriteFile(file, capture, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := Extract(ctx, file, out, Options{Flag: flagPattern, TempDir: dir, MaxOutput: 64 << 20, MaxDepth: 3})
		if err != nil {
			if r != nil {
				t.Fatalf("Extract failed (%v) after writing a report", err)
			}
			return
		}
		for _, e := range r.Objects {
			if !filepath.IsLocal(filepath.FromSlash(e.Path)) {
				t.Fatalf("entry path %q", e.Path)
			}
			b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(e.Path)))
			if err != nil || sha(b) != e.SHA256 {
				t.Fatalf("entry %s: %v, sha256 %s, manifest %s", e.Path, err, sha(b), e.SHA256)
			}
		}
		var sum bytes.Buffer
		if err := r.WriteSummary(&sum, 10); err != nil {
			t.Fatal(err)
		}
	})
}
