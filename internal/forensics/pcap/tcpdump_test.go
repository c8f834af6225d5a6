//go:build linux

package pcap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestTcpdumpLoopback records a real TCP exchange on the loopback
// interface with tcpdump and reads it back; Capture records the same
// exchange at the same time, and must hold the same packets.
func TestTcpdumpLoopback(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed (make setup installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("tcpdump needs root to capture")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// tcpdump writes pcap (libpcap's format), with micro- or nanosecond times.
	for _, precision := range []string{"micro", "nano"} {
		t.Run(precision, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "lo.pcap")
			// --immediate-mode: without it libpcap hands frames over in
			// blocks, and a block not yet full when SIGINT comes is lost.
			cmd := exec.Command(tcpdump, "-i", "lo", "-w", file, "-U", "--immediate-mode", "-n", "-Z", "root", "-s", "0",
				"--time-stamp-precision="+precision, "tcp", "port", fmt.Sprint(port))
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			if err := waitListening(stderr); err != nil {
				t.Fatalf("tcpdump did not start: %v", err)
			}
			go io.Copy(io.Discard, stderr)

			// Our own capture of the same interface, to compare.
			ctx, cancel := context.WithCancel(t.Context())
			var ours bytes.Buffer
			var capErr error
			var wg sync.WaitGroup
			wg.Go(func() { _, capErr = Capture(ctx, "lo", 30*time.Second, 0, &ours) })
			time.Sleep(300 * time.Millisecond)

			request := strings.Repeat("GET /file HTTP/1.0\r\n", 2000) // 40 KB
			reply := exchange(t, ln, request)
			time.Sleep(200 * time.Millisecond) // let tcpdump write the last frames
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
			cancel()
			wg.Wait()
			if capErr != nil {
				t.Fatalf("Capture(lo): %v", capErr)
			}

			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(strings.NewReader(string(data)))
			if err != nil {
				t.Fatalf("Open(tcpdump's capture): %v", err)
			}
			server := fmt.Sprintf("127.0.0.1:%d", port)
			up, down := map[uint32]string{}, map[uint32]string{}
			syn := false
			var theirs []string
			for {
				p, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				syn = syn || p.SYN
				switch {
				case p.Dst.String() == server:
					up[p.Seq] = string(p.Payload)
				case p.Src.String() == server:
					down[p.Seq] = string(p.Payload)
				}
				theirs = append(theirs, summary(p))
			}
			if mine := packetsOnPort(t, ours.Bytes(), server); !slices.Equal(mine, theirs) {
				t.Errorf("Capture(lo) recorded\n%s\ntcpdump recorded\n%s", strings.Join(mine, "\n"), strings.Join(theirs, "\n"))
			}
			if got := inSeqOrder(up); got != request {
				t.Errorf("client → server: %d bytes captured, want %d", len(got), len(request))
			}
			if got := inSeqOrder(down); got != reply {
				t.Errorf("server → client: %d bytes captured, want %d", len(got), len(reply))
			}
			if !syn || len(r.Warnings()) != 0 {
				t.Errorf("SYN seen %v, warnings %v", syn, r.Warnings())
			}
			t.Logf("%s: %+v", precision, r.Stats())
		})
	}
}

// summary describes a packet for comparing two captures.
func summary(p *Packet) string {
	return fmt.Sprintf("%s>%s seq=%d ack=%d syn=%v fin=%v len=%d", p.Src, p.Dst, p.Seq, p.Ack, p.SYN, p.FIN, len(p.Payload))
}

// packetsOnPort summarises the packets of a capture to or from server.
func packetsOnPort(t *testing.T, file []byte, server string) []string {
	r, err := Open(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("Open(our capture): %v", err)
	}
	var out []string
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Proto == 6 && (p.Src.String() == server || p.Dst.String() == server) {
			out = append(out, summary(p))
		}
	}
}

func waitListening(stderr io.Reader) error {
	sc := bufio.NewScanner(stderr)
	found := make(chan error, 1)
	go func() {
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				found <- nil
				return
			}
		}
		found <- fmt.Errorf("tcpdump ended: %v", sc.Err())
	}()
	select {
	case err := <-found:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("no \"listening on\" after 10 s")
	}
}

// exchange sends request to a server on ln that answers with an HTTP
// response carrying the request; it returns the reply.
func exchange(t *testing.T, ln net.Listener, request string) string {
	t.Helper()
	reply := fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(request), request)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.ReadFull(c, make([]byte, len(request)))
		io.WriteString(c, reply)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, request)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != reply {
		t.Fatalf("exchange: %v, %d bytes of %d", err, len(got), len(reply))
	}
	return reply
}

func inSeqOrder(segs map[uint32]string) string {
	var b strings.Builder
	for _, s := range slices.Sorted(maps.Keys(segs)) {
		b.WriteString(segs[s])
	}
	return b.String()
}
