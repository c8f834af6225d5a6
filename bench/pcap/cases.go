package main

// The cases: small captures, each with one file to extract in a way that
// real captures often present it, run through both tools and judged by
// SHA-256 (and, for the nested archive, by whether the flag was found).

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

// caseTruth is what a case's capture holds.
type caseTruth struct {
	want *object // the file, bytes kept
	flag string  // the flag hidden in it (case 5)
	// captured is how many of the file's first bytes the capture holds
	// in whole frames (case 7, cut short: the cut frame's 700 bytes may
	// be kept or not); the file's size otherwise.
	captured int
}

// caseDef is one case: how to build its capture and how to judge a
// tool's output.
type caseDef struct {
	id    int
	title string
	build func(path string, seed uint64) (*caseTruth, error)
	judge func(t *caseTruth, out *toolOutput, ours bool) verdict
}

// verdict is one tool's result on one case.
type verdict struct {
	OK    bool   `json:"right"`
	Short string `json:"verdict"` // right, missing, wrong, no flag, unmarked
	Text  string `json:"what"`
}

var cases = []caseDef{
	{1, "FTP download, data segments out of order", buildReordered, judgeFile},
	{2, "FTP, server's packets only (no RETR)", buildServerOnly, judgeFile},
	{3, "FTP on port 2121", buildPort2121, judgeFile},
	{4, "HTTP 206: the file in two ranges", buildRanges, judgeFile},
	{5, "base64 flag in a tar in a tar (FTP)", buildNested, judgeFlag},
	{6, "retransmission with different bytes (FTP)", buildOverlap, judgeFile},
	{7, "capture cut in the middle of an FTP download", buildCut, judgeCut},
}

var (
	caseClient = newHost("192.168.56.20")
	caseServer = newHost("192.168.56.10")
)

// writeCase writes a capture of one session that fn plays, and returns
// the object the session carried.
func writeCase(path string, seed uint64, fn func(s *session, cf *capFile)) (*object, error) {
	cf, err := createCapture(path, time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC), rand.New(rand.NewPCG(seed, 11)))
	if err != nil {
		return nil, err
	}
	var got *object
	s := &session{f: newFramer(), out: cf.write, rng: rand.New(rand.NewPCG(seed, 12)), client: caseClient, server: caseServer,
		ports: &portCounter{}, found: func(o *object) { got = o }, now: cf.now}
	fn(s, cf)
	if _, err := cf.close(); err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("building %s: the session carried no object", path)
	}
	return got, nil
}

func ftpCase(path string, sp spec, opt ftpOptions) (*caseTruth, error) {
	o, err := writeCase(path, sp.seed, func(s *session, _ *capFile) { s.ftp([]spec{sp}, opt) })
	if err != nil {
		return nil, err
	}
	return &caseTruth{want: o, captured: o.Size}, nil
}

// buildReordered: each group of eight data segments arrives shuffled
// (the client's ACK follows each group), as on a path with several
// links. Wireshark's tcp.reassemble_out_of_order is off by default.
func buildReordered(path string, seed uint64) (*caseTruth, error) {
	rng := rand.New(rand.NewPCG(seed, 13))
	opt := ftpOptions{data: func(c *conn, side int, b []byte) {
		ss := c.segments(side, b)
		for i := 0; i < len(ss); i += 8 {
			g := ss[i:min(i+8, len(ss))]
			for _, j := range rng.Perm(len(g)) {
				c.packet(side, g[j].seq, ackFlag, g[j].data)
			}
			last := g[len(g)-1]
			c.rcvd[1-side] = last.seq + uint32(len(last.data))
			c.ack(1 - side)
		}
	}}
	return ftpCase(path, spec{name: "shuffled.bin", size: 700_000, seed: seed}, opt)
}

// buildServerOnly: only the server's packets were captured (a span port
// of one direction, an asymmetric route): no USER, PASV or RETR, the
// file's name only in the 150 reply.
func buildServerOnly(path string, seed uint64) (*caseTruth, error) {
	return ftpCase(path, spec{name: "serveronly.bin", size: 500_000, seed: seed}, ftpOptions{serverOnly: true})
}

// buildPort2121: the control connection is on port 2121, which no
// dissector claims.
func buildPort2121(path string, seed uint64) (*caseTruth, error) {
	return ftpCase(path, spec{name: "port2121.bin", size: 400_000, seed: seed}, ftpOptions{port: 2121})
}

// buildNested: backup.tar holds inner.tar, which holds flag.txt, the
// flag in base64, and a decoy.
func buildNested(path string, seed uint64) (*caseTruth, error) {
	flag := fmt.Sprintf("flag{n3sted_t4rs_%08x}", uint32(seed))
	inner, err := tarOf(map[string][]byte{
		"secret/flag.txt":  []byte(base64.StdEncoding.EncodeToString([]byte(flag+"\n")) + "\n"),
		"secret/notes.txt": textBytes(rand.New(rand.NewPCG(seed, 14)), 20_000),
	})
	if err != nil {
		return nil, err
	}
	outer, err := tarOf(map[string][]byte{"README.txt": []byte("nothing to see here\n"), "inner.tar": inner})
	if err != nil {
		return nil, err
	}
	t, err := ftpCase(path, spec{name: "backup.tar", size: len(outer), seed: seed}, ftpOptions{data: func(c *conn, side int, _ []byte) {
		c.send(side, outer)
	}})
	if err != nil {
		return nil, err
	}
	// The session made random bytes of the right size; the tar was sent.
	t.want.data, t.want.SHA256, t.flag = outer, digest(outer), flag
	return t, nil
}

func tarOf(files map[string][]byte) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range []string{"README.txt", "inner.tar", "secret/flag.txt", "secret/notes.txt"} {
		data, ok := files[name]
		if !ok {
			continue
		}
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing the tar: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("writing the tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the tar: %w", err)
	}
	return b.Bytes(), nil
}

// buildOverlap: segment 20 is acknowledged by the client, then, six
// segments later, a segment with its sequence number and other bytes
// arrives (an injection, or a middlebox's rewrite). The receiver keeps
// what it acknowledged, so the file is the original.
func buildOverlap(path string, seed uint64) (*caseTruth, error) {
	opt := ftpOptions{data: func(c *conn, side int, b []byte) {
		ss := c.segments(side, b)
		for i, s := range ss {
			c.deliver(side, s)
			if c.pending[1-side] >= 2 || i == len(ss)-1 {
				c.ack(1 - side)
			}
			if i == 26 {
				forged := bytes.Repeat([]byte("X"), len(ss[20].data))
				c.packet(side, ss[20].seq, ackFlag, forged)
			}
		}
	}}
	return ftpCase(path, spec{name: "overlap.bin", size: 300_000, seed: seed}, opt)
}

// buildCut: the capture file ends 700 bytes into the payload of a data
// frame half way through the download (a capture stopped by a full disk
// or a killed tcpdump).
func buildCut(path string, seed uint64) (*caseTruth, error) {
	var cutAt int64
	var captured int
	var werr error
	o, err := writeCase(path, seed, func(s *session, cf *capFile) {
		opt := ftpOptions{data: func(c *conn, side int, b []byte) {
			ss := c.segments(side, b)
			for i, sg := range ss {
				if i == len(ss)/2 {
					off, err := cf.offset()
					if err != nil {
						werr = err
					}
					// The Enhanced Packet Block's 28-byte header, then
					// Ethernet, IPv4 and TCP headers (54 bytes).
					cutAt, captured = off+28+54+700, int(sg.seq-ss[0].seq)
				}
				c.deliver(side, sg)
				if c.pending[1-side] >= 2 || i == len(ss)-1 {
					c.ack(1 - side)
				}
			}
		}}
		s.ftp([]spec{{name: "cut.bin", size: 1_000_000, seed: seed}}, opt)
	})
	if err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	if err := os.Truncate(path, cutAt); err != nil {
		return nil, fmt.Errorf("cutting the capture: %w", err)
	}
	return &caseTruth{want: o, captured: captured}, nil
}

// buildRanges: a download resumed as two range requests on one
// keep-alive connection: 206 with Content-Range 0-(n/2-1)/n, then
// (n/2)-(n-1)/n.
func buildRanges(path string, seed uint64) (*caseTruth, error) {
	sp := spec{name: "firmware.bin", size: 600_000, seed: seed}
	o, err := writeCase(path, seed, func(s *session, _ *capFile) {
		o := sp.make("http")
		c := s.conn(80)
		c.open()
		half := o.Size / 2
		for i, r := range [][2]int{{0, half - 1}, {half, o.Size - 1}} {
			last := i == 1
			connHdr := map[bool]string{false: "keep-alive", true: "close"}[last]
			req := fmt.Sprintf("GET /fw/%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Wget/1.21.3\r\nAccept: */*\r\nRange: bytes=%d-\r\nConnection: %s\r\n\r\n",
				sp.name, s.server.ip, r[0], connHdr)
			c.send(0, []byte(req))
			body := o.data[r[0] : r[1]+1]
			resp := fmt.Appendf(nil, "HTTP/1.1 206 Partial Content\r\nServer: nginx/1.22.1\r\nDate: %s\r\nContent-Type: application/octet-stream\r\n"+
				"Content-Length: %d\r\nContent-Range: bytes %d-%d/%d\r\nETag: \"%x\"\r\nConnection: %s\r\n\r\n",
				s.now.UTC().Format(time.RFC1123), len(body), r[0], r[1], o.Size, seed&0xffff, connHdr)
			c.send(1, append(resp, body...))
		}
		c.close(1)
		s.found(o)
	})
	if err != nil {
		return nil, err
	}
	return &caseTruth{want: o, captured: o.Size}, nil
}
