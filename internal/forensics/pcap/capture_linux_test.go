//go:build linux

package pcap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// netnsPair is a network namespace joined to the host by a veth pair, as
// a sandbox is: Host is the host-side interface.
type netnsPair struct {
	NS, Host         string
	HostAddr, NSAddr string
}

// newNetnsPair creates the namespace and veth pair, removed at cleanup.
// It skips the test when not root or when ip(8) is missing.
func newNetnsPair(t *testing.T) netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2")
	}
	id := os.Getpid()%60000 + 1
	p := netnsPair{
		NS:   fmt.Sprintf("noopspcap%d", id),
		Host: fmt.Sprintf("npc%dh", id),
		// A /30 of its own for each id: 10.200.0.0/14.
		HostAddr: fmt.Sprintf("10.%d.%d.%d", 200+id>>14, id>>6&0xff, (id&63)*4+1),
		NSAddr:   fmt.Sprintf("10.%d.%d.%d", 200+id>>14, id>>6&0xff, (id&63)*4+2),
	}
	nsIf := fmt.Sprintf("npc%dn", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// Leftovers of an interrupted run with the same pid.
	_ = exec.Command("ip", "netns", "del", p.NS).Run()
	_ = exec.Command("ip", "link", "del", p.Host).Run()
	run("netns", "add", p.NS)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", p.Host).Run()
		_ = exec.Command("ip", "netns", "del", p.NS).Run()
	})
	run("link", "add", p.Host, "type", "veth", "peer", "name", nsIf, "netns", p.NS)
	run("addr", "add", p.HostAddr+"/30", "dev", p.Host)
	run("link", "set", p.Host, "up")
	run("-n", p.NS, "addr", "add", p.NSAddr+"/30", "dev", nsIf)
	run("-n", p.NS, "link", "set", nsIf, "up")
	run("-n", p.NS, "link", "set", "lo", "up")
	return p
}

// inNetns runs fn on a thread that has joined namespace ns; sockets fn
// creates stay in ns when used from any thread.
func inNetns(ns string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("joining %s: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else the thread ends with the goroutine
		}
		done <- err
	}()
	return <-done
}

func TestCapture(t *testing.T) {
	p := newNetnsPair(t)
	var ln net.Listener
	var udp net.PacketConn
	if err := inNetns(p.NS, func() (err error) {
		if ln, err = net.Listen("tcp", p.NSAddr+":7000"); err != nil {
			return err
		}
		udp, err = net.ListenPacket("udp", p.NSAddr+":7001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer udp.Close()
	go func() { // the sandbox's service: "echo: " and what it read
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		c.Write(append([]byte("echo: "), b...))
	}()
	go io.Copy(io.Discard, readerOf(udp))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var file bytes.Buffer
	var frames int
	var capErr error
	var wg sync.WaitGroup
	wg.Go(func() { frames, capErr = Capture(ctx, p.Host, 10*time.Second, 0, &file) })
	time.Sleep(300 * time.Millisecond) // the socket is bound by then

	// One second of traffic: UDP datagrams, then a TCP exchange.
	uc, err := net.Dial("udp", p.NSAddr+":7001")
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	for i := 0; i < 20; i++ {
		msg := fmt.Sprintf("datagram %02d", i)
		if _, err := uc.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, msg)
		time.Sleep(25 * time.Millisecond)
	}
	uc.Close()
	request := strings.Repeat("request bytes through the veth. ", 500) // 16 KB: many segments
	tc, err := net.Dial("tcp", p.NSAddr+":7000")
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte(request))
	tc.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(tc)
	tc.Close()
	if err != nil || string(reply) != "echo: "+request {
		t.Fatalf("exchange: %v, reply of %d bytes", err, len(reply))
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	if capErr != nil {
		t.Fatalf("Capture: %v", capErr)
	}

	r, err := Open(bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatalf("Open(captured): %v", err)
	}
	var datagrams []string
	streams := map[string]map[uint32]string{} // direction → seq → payload
	for {
		pk, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case pk.Proto == 17 && pk.Dst.Port == 7001:
			datagrams = append(datagrams, string(pk.Payload))
		case pk.Proto == 6 && len(pk.Payload) > 0:
			dir := pk.Src.String() + ">" + pk.Dst.String()
			if streams[dir] == nil {
				streams[dir] = map[uint32]string{}
			}
			streams[dir][pk.Seq] = string(pk.Payload)
		}
	}
	st := r.Stats()
	if st.Frames != frames || st.LinkTypes[layers.LinkTypeEthernet] != frames {
		t.Errorf("Capture returned %d frames; the file has %+v", frames, st)
	}
	if strings.Join(datagrams, ",") != strings.Join(sent, ",") {
		t.Errorf("datagrams captured %q, sent %q", datagrams, sent)
	}
	server := p.NSAddr + ":7000"
	toNS := joinStream(streams, func(dir string) bool { return strings.HasSuffix(dir, ">"+server) })
	fromNS := joinStream(streams, func(dir string) bool { return strings.HasPrefix(dir, server+">") })
	if toNS != request || fromNS != "echo: "+request {
		t.Errorf("TCP captured %d bytes to and %d from the namespace, want %d and %d", len(toNS), len(fromNS), len(request), len(request)+6)
	}
	if w := r.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

// joinStream concatenates the payloads of the direction for which match
// is true, in sequence order (no wrap in a short test).
func joinStream(streams map[string]map[uint32]string, match func(dir string) bool) string {
	for dir, segs := range streams {
		if !match(dir) {
			continue
		}
		seqs := slices.Sorted(maps.Keys(segs))
		var b strings.Builder
		for _, s := range seqs {
			b.WriteString(segs[s])
		}
		return b.String()
	}
	return ""
}

func TestCaptureLimits(t *testing.T) {
	p := newNetnsPair(t)
	uc, err := net.Dial("udp", p.NSAddr+":9")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			uc.Write(bytes.Repeat([]byte("x"), 200))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var file bytes.Buffer
	start := time.Now()
	frames, err := Capture(ctx, p.Host, 5*time.Second, 4000, &file)
	if err != nil {
		t.Fatal(err)
	}
	if frames == 0 || file.Len() > 4000 || time.Since(start) > 4*time.Second {
		t.Errorf("%d frames, %d bytes after %v; want some, at most 4000 bytes, well before 5 s", frames, file.Len(), time.Since(start))
	}
	_, r := readAll(t, file.Bytes())
	if r.Stats().Frames != frames || len(r.Warnings()) != 0 {
		t.Errorf("file stats %+v, warnings %v", r.Stats(), r.Warnings())
	}

	// The duration ends a capture on an idle interface.
	file.Reset()
	cancel()
	start = time.Now()
	if _, err := Capture(t.Context(), p.Host, 300*time.Millisecond, 0, &file); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("a 300 ms capture took %v", d)
	}
	if _, err := Capture(t.Context(), "no-such-if0", time.Second, 0, &file); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Errorf("Capture on a missing interface: %v", err)
	}
}

// readerOf reads datagrams from a PacketConn as a stream.
func readerOf(c net.PacketConn) io.Reader {
	return readerFunc(func(b []byte) (int, error) {
		n, _, err := c.ReadFrom(b)
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }
