package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"noops/internal/forensics"
	"noops/internal/forensics/pcap"
)

// httpCapture writes a capture of one HTTP download of secret.tar (which
// holds flag.txt, the flag in base64), cut to keep bytes of the file.
func httpCapture(t *testing.T, flag string, keep int) (file string, body []byte) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	content := []byte(base64.StdEncoding.EncodeToString([]byte(flag)) + "\n")
	tw.WriteHeader(&tar.Header{Name: "flag.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(1700000000, 0)})
	tw.Write(content)
	tw.Close()
	body = tb.Bytes()

	var capture bytes.Buffer
	w, err := pcap.NewWriter(&capture, layers.LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cli, srv := net.IPv4(10, 0, 0, 2).To4(), net.IPv4(10, 0, 0, 1).To4()
	send := func(fromClient bool, seq, ack uint32, syn, fin bool, payload []byte) {
		src, dst, sp, dp := cli, srv, layers.TCPPort(40000), layers.TCPPort(80)
		if !fromClient {
			src, dst, sp, dp = srv, cli, 80, 40000
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
		tcp := &layers.TCP{SrcPort: sp, DstPort: dp, Seq: seq, Ack: ack, SYN: syn, FIN: fin, ACK: !syn || !fromClient, PSH: len(payload) > 0, Window: 65535}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Millisecond)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: now, CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}, buf.Bytes())
	}
	req := []byte("GET /files/secret.tar HTTP/1.1\r\nHost: ctf.example.org\r\n\r\n")
	resp := append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))), body...)
	head := len(resp) - len(body)
	resp = resp[:head+min(keep, len(body))]
	c, s := uint32(100), uint32(5000)
	send(true, c, 0, true, false, nil)
	send(false, s, c+1, true, false, nil)
	send(true, c+1, s+1, false, false, nil)
	send(true, c+1, s+1, false, false, req)
	c += 1 + uint32(len(req))
	for off := 0; off < len(resp); off += 1400 {
		send(false, s+1+uint32(off), c, false, false, resp[off:min(off+1400, len(resp))])
	}
	if keep >= len(body) {
		send(false, s+1+uint32(len(resp)), c, false, true, nil)
		send(true, c, s+2+uint32(len(resp)), false, true, nil)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "ctf.pcapng")
	if err := os.WriteFile(file, capture.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, body
}

func runPcap(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Run(ctx, append([]string{"pcap", "extract"}, args...), &out, &errb, nil)
	return code, out.String(), errb.String()
}

func TestPcapExtract(t *testing.T) {
	t.Parallel()
	flag := "flag{cli_test_4242}"
	file, body := httpCapture(t, flag, 1<<30)

	dir := t.TempDir()
	code, stdout, stderr := runPcap(t, file, "-o", dir, "--flag", `flag\{[^}]+\}`)
	if code != 0 || stderr != "" {
		t.Fatalf("noops pcap extract: exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	header := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "PATH ") })
	if header < 0 || strings.Join(strings.Fields(lines[header]), " ") != "PATH PROTO SIZE FLOW FRAMES COMPLETE/GAPS CHAIN" {
		t.Fatalf("no table header in:\n%s", stdout)
	}
	wantRow := []string{"objects/http/secret.tar", "http", fmt.Sprint(len(body)), "tcp", "10.0.0.1:80", "->", "10.0.0.2:40000", "5-", "yes", "ctf.pcapng", ">", "http:secret.tar"}
	if row := strings.Fields(lines[header+1]); len(row) < len(wantRow) || !strings.HasPrefix(row[7], "5-") ||
		!slices.Equal(append(row[:7:7], row[8:12]...), append(wantRow[:7:7], wantRow[8:]...)) {
		t.Errorf("first row %q, want %q", lines[header+1], wantRow)
	}
	for _, want := range []string{
		"objects/http/secret.tar.unpacked/flag.txt",
		"flags found:",
		`"` + flag + `"  objects/http/secret.tar.unpacked/flag.txt.unpacked/flag.txt.base64-decoded  ctf.pcapng > http:secret.tar > tar:flag.txt > base64`,
		"wrote " + filepath.Join(dir, "manifest.json"),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "objects", "http", "secret.tar"))
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("objects/http/secret.tar: %v, %d bytes; want the %d-byte body", err, len(got), len(body))
	}

	// --json prints the Report, and nothing else on stdout.
	code, stdout, stderr = runPcap(t, file, "-o", t.TempDir(), "--json", "--flag", `flag\{[^}]+\}`)
	var r forensics.Report
	if code != 0 || stderr != "" {
		t.Fatalf("--json: exit %d, stderr %q", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json output is not a Report: %v\n%s", err, stdout)
	}
	if len(r.Objects) != 3 || r.Objects[0].Path != "objects/http/secret.tar" || r.Objects[0].SHA256 == "" ||
		len(r.Flags) != 1 || r.Flags[0].Flag != flag || r.Frames != 8 || r.Stats.Connections != 1 {
		t.Errorf("--json report: %d objects (%+v), flags %+v, frames %d, stats %+v", len(r.Objects), r.Objects, r.Flags, r.Frames, r.Stats)
	}
}

func TestPcapExtractPartialAndErrors(t *testing.T) {
	t.Parallel()
	// A capture that stops in the middle of the body: exit 0, the partial
	// file with its gap, and the warning.
	file, body := httpCapture(t, "flag{partial}", 700)
	dir := t.TempDir()
	code, stdout, stderr := runPcap(t, file, "-o", dir)
	if code != 0 || !strings.Contains(stderr, "warnings of what was lost or doubted: see "+filepath.Join(dir, "summary.txt")) {
		t.Errorf("partial capture: exit %d, stderr %q", code, stderr)
	}
	gap := fmt.Sprintf("gaps 700-%d", len(body))
	if !strings.Contains(stdout, gap) || !strings.Contains(stdout, "objects/http/secret.tar: ") {
		t.Errorf("partial capture: output lacks %q and the warning:\n%s", gap, stdout)
	}

	notCapture := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notCapture, []byte("not a capture at all\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing file", []string{filepath.Join(t.TempDir(), "nope.pcap"), "-o", t.TempDir()}, 3, "noops: opening the capture: open "},
		{"not a capture", []string{notCapture, "-o", t.TempDir()}, 2, "noops: reading the capture " + notCapture},
		{"no output directory", []string{file}, 2, "give the output directory with -o DIR"},
		{"bad flag pattern", []string{file, "-o", t.TempDir(), "--flag", "flag{("}, 2, "--flag \"flag{(\" is not a regular expression"},
		{"no file", []string{"-o", t.TempDir()}, 2, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runPcap(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("noops pcap extract %q: exit %d, stdout %q, stderr %q; want exit %d, stderr with %q", tc.args, code, stdout, stderr, tc.code, tc.want)
			}
		})
	}
}
