//go:build linux

package forensics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// This file runs the real programs the acceptance tests record: Debian's
// vsftpd on loopback, tcpdump, and a small FTP client.

// portBlock is a run of free ports on 127.0.0.1, below the kernel's
// ephemeral range (32768 and up) so that no client socket takes one of
// them while a test uses it.
type portBlock struct{ base, n int }

func (b portBlock) at(i int) int { return b.base + i }
func (b portBlock) last() int    { return b.base + b.n - 1 }

func freePorts(t *testing.T, n int) portBlock {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(12000-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = portFree(p)
		}
		if ok {
			return portBlock{base, n}
		}
	}
	t.Fatalf("no block of %d free ports found between 20000 and 32000", n)
	return portBlock{}
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// vsftpd is a running vsftpd.
type vsftpd struct {
	port    int
	pasvMin int
	pasvMax int
	log     string
}

// startVsftpd runs vsftpd on 127.0.0.1:port for anonymous users rooted
// at anonRoot (owned by root, not writable: vsftpd refuses a writable
// chroot), passive on [pasvMin, pasvMax], active from port 20 when
// fromPort20, else from an ephemeral port.
func startVsftpd(t *testing.T, bin string, port, pasvMin, pasvMax int, fromPort20 bool, anonRoot string) *vsftpd {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	v := &vsftpd{port: port, pasvMin: pasvMin, pasvMax: pasvMax, log: filepath.Join(dir, "vsftpd.log")}
	yesNo := map[bool]string{true: "YES", false: "NO"}
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
anon_root=%s
write_enable=YES
anon_upload_enable=YES
anon_umask=022
anon_world_readable_only=YES
pasv_enable=YES
pasv_min_port=%d
pasv_max_port=%d
port_enable=YES
connect_from_port_20=%s
seccomp_sandbox=NO
secure_chroot_dir=%s
ftp_username=ftp
nopriv_user=nobody
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=%s
`, port, anonRoot, pasvMin, pasvMax, yesNo[fromPort20], empty, v.log)
	confPath := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, confPath)
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// Its own process group: vsftpd forks a process per session.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting vsftpd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			logText, _ := os.ReadFile(v.log)
			t.Logf("vsftpd on port %d: output %q\nlog:\n%s", port, stderr.String(), logText)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			// Read the greeting so vsftpd's session ends cleanly.
			bufio.NewReader(c).ReadString('\n')
			c.Close()
			return v
		}
		select {
		case <-exited:
			t.Fatalf("vsftpd exited at start: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vsftpd did not listen on port %d within 10 s: %v; output %q", port, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe bytes buffer for a child's output.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// tcpdump records lo into file with filter until stop is called; stop
// returns the number of packets the kernel dropped (the capture buffer
// overflowed), which makes the capture useless as a reference.
func tcpdump(t *testing.T, bin, file, filter string) (stop func() (dropped int)) {
	t.Helper()
	// --immediate-mode: without it libpcap hands frames over in blocks,
	// and a block not yet full when SIGINT comes is lost. -B 64 MiB: on
	// loopback segmentation offload makes frames of up to 64 KiB, and the
	// default 2 MiB buffer overflows during a fast transfer.
	args := append([]string{"-i", "lo", "-w", file, "-U", "--immediate-mode", "-n", "-Z", "root", "-s", "0", "-B", "65536"}, strings.Fields(filter)...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting tcpdump: %v", err)
	}
	listening := make(chan error, 1)
	var out syncBuffer
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			if !said && strings.Contains(sc.Text(), "listening on") {
				said = true
				listening <- nil
			}
		}
		if !said {
			listening <- errors.New("tcpdump ended before listening")
		}
	}()
	select {
	case err := <-listening:
		if err != nil {
			cmd.Wait()
			t.Fatalf("%v: %s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("tcpdump did not start listening within 10 s: %s", out.String())
	}
	var once sync.Once
	dropped := -1
	stop = func() int {
		once.Do(func() {
			time.Sleep(200 * time.Millisecond) // let the last frames be written
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
			if m := regexp.MustCompile(`(\d+) packets? dropped by kernel`).FindStringSubmatch(out.String()); m != nil {
				dropped, _ = strconv.Atoi(m[1])
			}
		})
		return dropped
	}
	t.Cleanup(func() { stop() })
	return stop
}

// smallSegments makes a socket advertise an MSS of 1400 bytes and a
// small receive window, so that a transfer over loopback (MTU 64 KiB)
// travels in many segments, as over Ethernet.
func smallSegments(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, 1400); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10)
	})
	if err != nil {
		return err
	}
	return serr
}

// ftpClient is a minimal FTP client: enough commands to drive the
// transfers the tests record.
type ftpClient struct {
	t      *testing.T
	c      *textproto.Conn
	active []int // ports for PORT and EPRT listeners, used in turn
	log    []transfer
}

func dialFTP(t *testing.T, port int, active []int) *ftpClient {
	t.Helper()
	nc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("connecting to vsftpd: %v", err)
	}
	f := &ftpClient{t: t, c: textproto.NewConn(nc), active: active}
	t.Cleanup(func() { f.c.Close() })
	if _, _, err := f.c.ReadResponse(220); err != nil {
		t.Fatalf("vsftpd greeting: %v", err)
	}
	f.cmd(230, "USER anonymous")
	f.cmd(200, "TYPE I")
	return f
}

// cmd sends a command and reads its reply, which must have code want
// (0: any); it returns the reply's code and text.
func (f *ftpClient) cmd(want int, format string, args ...any) (int, string) {
	f.t.Helper()
	if err := f.c.PrintfLine(format, args...); err != nil {
		f.t.Fatalf("sending %q: %v", fmt.Sprintf(format, args...), err)
	}
	return f.reply(want, fmt.Sprintf(format, args...))
}

func (f *ftpClient) reply(want int, what string) (int, string) {
	f.t.Helper()
	code, msg, err := f.c.ReadResponse(want)
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
	return code, msg
}

// data opens a data connection in mode PASV, EPSV, PORT or EPRT; the
// returned function gives the connection once the transfer command was
// sent.
func (f *ftpClient) data(mode string) func() net.Conn {
	f.t.Helper()
	dialer := net.Dialer{Control: smallSegments}
	switch mode {
	case "PASV", "EPSV":
		var port int
		if mode == "PASV" {
			_, msg := f.cmd(227, "PASV")
			m := regexp.MustCompile(`(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)`).FindStringSubmatch(msg)
			if m == nil {
				f.t.Fatalf("PASV reply %q has no address", msg)
			}
			hi, _ := strconv.Atoi(m[5])
			lo, _ := strconv.Atoi(m[6])
			port = hi<<8 | lo
		} else {
			_, msg := f.cmd(229, "EPSV")
			m := regexp.MustCompile(`\|\|\|(\d+)\|`).FindStringSubmatch(msg)
			if m == nil {
				f.t.Fatalf("EPSV reply %q has no port", msg)
			}
			port, _ = strconv.Atoi(m[1])
		}
		c, err := dialer.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			f.t.Fatalf("%s data connection to port %d: %v", mode, port, err)
		}
		return func() net.Conn { return c }
	case "PORT", "EPRT":
		if len(f.active) == 0 {
			f.t.Fatal("no port left for active mode")
		}
		port := f.active[0]
		f.active = f.active[1:]
		lc := net.ListenConfig{Control: smallSegments}
		ln, err := lc.Listen(f.t.Context(), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			f.t.Fatalf("listening for the active data connection: %v", err)
		}
		if mode == "PORT" {
			f.cmd(200, "PORT 127,0,0,1,%d,%d", port>>8, port&0xff)
		} else {
			f.cmd(200, "EPRT |1|127.0.0.1|%d|", port)
		}
		return func() net.Conn {
			defer ln.Close()
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
			c, err := ln.Accept()
			if err != nil {
				f.t.Fatalf("accepting the active data connection: %v", err)
			}
			return c
		}
	}
	f.t.Fatalf("unknown data mode %q", mode)
	return nil
}

// transfer is a data connection the client used, for the tests that
// derive captures: which 4-tuple carried which command.
type transfer struct {
	cmd, name, mode string
	client, server  string // the data connection's endpoints
}

func (f *ftpClient) opened(c net.Conn, cmd, name, mode string) {
	f.log = append(f.log, transfer{cmd: cmd, name: name, mode: mode, client: c.LocalAddr().String(), server: c.RemoteAddr().String()})
}

// retr downloads name over a data connection in mode; with rest > 0 it
// sends REST first and gets the file from that offset.
func (f *ftpClient) retr(mode, name string, rest int) []byte {
	f.t.Helper()
	open := f.data(mode)
	if rest > 0 {
		f.cmd(350, "REST %d", rest)
	}
	f.cmd(150, "RETR %s", name)
	c := open()
	f.opened(c, "RETR", name, mode)
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		f.t.Fatalf("RETR %s: reading the data: %v", name, err)
	}
	f.reply(226, "RETR "+name)
	return got
}

// retrPart downloads the first n bytes of name and closes the data
// connection; the server then reports the transfer failed (426), unless
// it had already sent everything.
func (f *ftpClient) retrPart(mode, name string, n int) []byte {
	f.t.Helper()
	open := f.data(mode)
	f.cmd(150, "RETR %s", name)
	c := open()
	f.opened(c, "RETR", name, mode)
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		f.t.Fatalf("RETR %s: reading %d bytes: %v", name, n, err)
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	if code, _ := f.reply(0, "RETR "+name); code != 426 && code != 226 && code != 451 {
		f.t.Fatalf("RETR %s cut short: reply %d", name, code)
	}
	return got
}

// stor uploads data as name.
func (f *ftpClient) stor(mode, name string, data []byte) {
	f.t.Helper()
	open := f.data(mode)
	f.cmd(150, "STOR %s", name)
	c := open()
	f.opened(c, "STOR", name, mode)
	if _, err := c.Write(data); err != nil {
		f.t.Fatalf("STOR %s: %v", name, err)
	}
	c.Close()
	f.reply(226, "STOR "+name)
}

func (f *ftpClient) quit() {
	f.t.Helper()
	f.cmd(221, "QUIT")
}
