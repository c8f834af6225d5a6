//go:build linux

package forensics

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"noops/internal/testenv/need"
)

// ftpFiles are the files vsftpd serves and the one the client uploads.
type ftpFiles struct {
	root string
	data map[string][]byte // by the name the FTP commands use
	flag string
}

// makeFTPFiles builds the anonymous root: secret.tar holds inner.tar
// (last, so the flag is at the end) which holds flag.txt, the flag in
// base64; random.bin and resume.bin are random; upload/ takes STOR.
func makeFTPFiles(t *testing.T) ftpFiles {
	t.Helper()
	flag := fmt.Sprintf("flag{%x}", randomBytes(12))
	inner := makeTar(t,
		tarFile{"notes.txt", []byte("the flag is below, encoded\n")},
		tarFile{"noise.bin", randomBytes(64 << 10)},
		tarFile{"flag.txt", []byte(base64.StdEncoding.EncodeToString([]byte(flag)) + "\n")})
	secret := makeTar(t,
		tarFile{"readme.txt", []byte("nothing to see here\n")},
		tarFile{"photo.bin", randomBytes(300 << 10)},
		tarFile{"inner.tar", inner})
	f := ftpFiles{root: t.TempDir(), flag: flag, data: map[string][]byte{
		"secret.tar":        secret,
		"random.bin":        randomBytes(1 << 20),
		"resume.bin":        randomBytes(600000),
		"upload/stored.bin": randomBytes(200000),
	}}
	for _, name := range []string{"secret.tar", "random.bin", "resume.bin"} {
		if err := os.WriteFile(filepath.Join(f.root, name), f.data[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(f.root, "upload"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(f.root, "upload"), 0o777)
	// vsftpd refuses a chroot the anonymous user could write to.
	if err := os.Chmod(f.root, 0o555); err != nil {
		t.Fatal(err)
	}
	return f
}

// ftpRun is one recorded session.
type ftpRun struct {
	file      string // tcpdump's capture
	ctrl      int
	pasv      [2]int
	active    []int
	transfers []transfer
}

// toServer says whether a SYN to dstPort opens a connection to the
// server (control or passive data), rather than the server's active-mode
// connection to the client.
func (r ftpRun) toServer(dstPort int) bool {
	return dstPort == r.ctrl || (dstPort >= r.pasv[0] && dstPort <= r.pasv[1])
}

// recordFTP runs vsftpd (on port 21 when ctrl is 21, else on a free
// port), records loopback with tcpdump while script drives a client, and
// returns the capture.
func recordFTP(t *testing.T, files ftpFiles, ctrl int, fromPort20 bool, script func(c *ftpClient)) ftpRun {
	t.Helper()
	vs := vsftpdPath(t)
	td := need.Program(t, "tcpdump")
	block := freePorts(t, 24)
	run := ftpRun{file: filepath.Join(t.TempDir(), "ftp.pcap"), ctrl: ctrl}
	first := 0
	if ctrl == 0 {
		run.ctrl, first = block.at(0), 1
	}
	run.pasv = [2]int{block.at(first), block.at(first + 7)}
	for p := block.at(first + 8); p <= block.last(); p++ {
		run.active = append(run.active, p)
	}
	filter := fmt.Sprintf("tcp portrange %d-%d", block.base, block.last())
	if ctrl != 0 {
		filter = fmt.Sprintf("tcp port %d or tcp port 20 or %s", ctrl, filter)
	}
	startVsftpd(t, vs, run.ctrl, run.pasv[0], run.pasv[1], fromPort20, files.root)
	// A capture the kernel dropped packets from is no reference: record
	// again (it has not happened with tcpdump's buffer at 64 MiB).
	for attempt := 1; ; attempt++ {
		os.Remove(filepath.Join(files.root, "upload", "stored.bin"))
		stop := tcpdump(t, td, run.file, filter)
		c := dialFTP(t, run.ctrl, slices.Clone(run.active))
		script(c)
		c.quit()
		dropped := stop()
		if dropped == 0 {
			run.transfers = c.log
			return run
		}
		if attempt == 3 {
			t.Fatalf("tcpdump dropped %d packets in each of 3 recordings", dropped)
		}
		t.Logf("tcpdump dropped %d packets; recording again", dropped)
	}
}

func vsftpdPath(t *testing.T) string {
	if _, err := os.Stat("/usr/sbin/vsftpd"); err == nil {
		return "/usr/sbin/vsftpd"
	}
	return need.Program(t, "vsftpd")
}

// TestFTPCaptures is the acceptance test of issue 9: real vsftpd
// transfers recorded with tcpdump (passive PASV and EPSV, active PORT
// and EPRT, STOR, a REST-resumed RETR), and captures derived from them:
// the server's packets only, segments reordered and duplicated, a
// segment lost, the file cut short. The extracted files must be the
// originals, byte for byte, or be marked partial with their gaps; the
// flag hidden as base64 in a tar in a tar must be found with its chain.
func TestFTPCaptures(t *testing.T) {
	need.Root(t)
	files := makeFTPFiles(t)
	run := recordFTP(t, files, 0, false, func(c *ftpClient) {
		for _, step := range []struct{ mode, name string }{
			{"PASV", "secret.tar"}, {"EPSV", "random.bin"}, {"PORT", "secret.tar"}, {"EPRT", "random.bin"},
		} {
			if got := c.retr(step.mode, step.name, 0); !bytes.Equal(got, files.data[step.name]) {
				t.Fatalf("%s RETR %s: the client got %d bytes, not the file", step.mode, step.name, len(got))
			}
		}
		c.stor("PASV", "upload/stored.bin", files.data["upload/stored.bin"])
		c.retrPart("EPSV", "resume.bin", 250000)
		if got := c.retr("PASV", "resume.bin", 250000); !bytes.Equal(got, files.data["resume.bin"][250000:]) {
			t.Fatalf("REST 250000 RETR resume.bin: the client got %d bytes, not the rest of the file", len(got))
		}
	})
	full := readCapture(t, run.file)
	dir := t.TempDir()
	serverOnly := full.serverOnly(t, run.toServer)
	variants := map[string]capture{
		"reordered":             full.reordered(1),
		"ends-first":            full.endsFirst(),
		"server-only":           serverOnly,
		"server-only-reordered": serverOnly.reordered(2).endsFirst(),
	}
	paths := map[string]string{"full": run.file}
	for name, c := range variants {
		paths[name] = filepath.Join(dir, name+".pcapng")
		c.write(t, paths[name])
	}
	t.Logf("recorded %d frames; server-only %d; reordered and duplicated %d", len(full.frames), len(serverOnly.frames), len(variants["reordered"].frames))

	for _, name := range []string{"full", "reordered", "ends-first", "server-only", "server-only-reordered"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			serverSide := strings.HasPrefix(name, "server-only")
			r, out := extract(t, paths[name], Options{})
			want := map[string]int{"secret.tar": 2, "random.bin": 2, "resume.bin": 1, "upload/stored.bin": 1}
			nameFrom := map[string]string{"secret.tar": "RETR", "random.bin": "RETR", "resume.bin": "RETR", "upload/stored.bin": "STOR"}
			if serverSide {
				delete(want, "upload/stored.bin")
				nameFrom = map[string]string{"secret.tar": "150 reply", "random.bin": "150 reply", "resume.bin": "150 reply"}
			}
			checkFTPObjects(t, r, out, files, want, nameFrom)
			checkFlag(t, r, files.flag, filepath.Base(paths[name]))
			if lost := warningsWith(r, "not captured"); !serverSide && len(lost) > 0 {
				// Every byte is in the capture, in some order: none may be
				// reported lost (REST stitching could hide it in a file).
				t.Errorf("%s: every byte was captured, yet:\n%s", name, strings.Join(lost, "\n"))
			}
			if serverSide {
				// The upload went client → server: its bytes are not in
				// the capture, and the report must say so rather than
				// write a file of zeros as if it were the upload.
				for _, e := range top(r, "ftp") {
					if e.Size == int64(len(files.data["upload/stored.bin"])) && (e.Complete || len(e.Gaps) == 0) {
						t.Errorf("server-only: %s (%d bytes) is complete %v with gaps %v; the upload's bytes were not captured", e.Path, e.Size, e.Complete, e.Gaps)
					}
				}
				if len(warningsWith(r, "not captured")) == 0 {
					t.Errorf("server-only: no warning says the upload was not captured; warnings:\n%s", strings.Join(r.Warnings, "\n"))
				}
			}
		})
	}

	// The transfer of random.bin over EPSV, the second one.
	epsv := run.transfers[1]
	if epsv.mode != "EPSV" || epsv.name != "random.bin" {
		t.Fatalf("second transfer is %+v", epsv)
	}
	var dataFrames []int
	var isn uint32
	for i, fr := range full.frames {
		s, ok := full.tcp(fr)
		if !ok || s.src != epsv.server || s.dst != epsv.client {
			continue
		}
		if s.syn {
			isn = s.seq
		}
		if s.payload > 0 {
			dataFrames = append(dataFrames, i)
		}
	}
	if len(dataFrames) < 20 {
		t.Fatalf("random.bin came in %d segments; the test wants many", len(dataFrames))
	}
	mid := dataFrames[len(dataFrames)/2]

	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		raw, err := os.ReadFile(run.file)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "cut.pcap")
		if err := os.WriteFile(file, pcapCut(t, raw, mid), 0o644); err != nil {
			t.Fatal(err)
		}
		r, out := extract(t, file, Options{})
		checkFTPObjects(t, r, out, files, map[string]int{"secret.tar": 1}, nil)
		var cut *Entry
		for _, e := range top(r, "ftp") {
			if e.Name == "random.bin" {
				cut = &e
			}
		}
		if cut == nil {
			t.Fatalf("no random.bin in the truncated capture; objects %v", names(top(r, "ftp")))
		}
		orig := files.data["random.bin"]
		if cut.Complete || len(cut.Gaps) == 0 || cut.Size >= int64(len(orig)) || cut.ExpectedSize != int64(len(orig)) {
			t.Errorf("random.bin cut short: complete %v, %d bytes, gaps %v, expected size %d; want incomplete, gaps up to %d",
				cut.Complete, cut.Size, cut.Gaps, cut.ExpectedSize, len(orig))
		}
		if g := cut.Gaps[len(cut.Gaps)-1]; !strings.HasSuffix(g, fmt.Sprint("-", len(orig))) {
			t.Errorf("random.bin's last gap is %s, want it to run to %d", g, len(orig))
		}
		if got := readOut(t, out, *cut); !equalOutside(got, orig[:len(got)], cut.Gaps) {
			t.Errorf("the partial random.bin (%d bytes, gaps %v) differs from the file outside its gaps", len(got), cut.Gaps)
		}
		if len(warningsWith(r, cut.Path, "not captured")) == 0 {
			t.Errorf("no warning about %s's missing bytes; warnings:\n%s", cut.Path, strings.Join(r.Warnings, "\n"))
		}
		if len(warningsWith(r, "cut.pcap", fmt.Sprint("frame ", mid+1))) == 0 {
			t.Errorf("no warning about the cut frame %d; warnings:\n%s", mid+1, strings.Join(r.Warnings, "\n"))
		}
	})

	t.Run("segment-lost", func(t *testing.T) {
		t.Parallel()
		s, _ := full.tcp(full.frames[mid])
		start := int64(s.seq - isn - 1)
		gap := fmt.Sprintf("%d-%d", start, start+int64(s.payload))
		file := filepath.Join(t.TempDir(), "hole.pcapng")
		full.without(mid).write(t, file)
		r, out := extract(t, file, Options{})
		var hit []Entry
		for _, e := range top(r, "ftp") {
			if slices.Equal(e.Gaps, []string{gap}) {
				hit = append(hit, e)
			}
		}
		if len(hit) != 1 || hit[0].Name != "random.bin" || hit[0].Complete {
			t.Fatalf("want one incomplete random.bin with gap %s; objects %v", gap, names(top(r, "ftp")))
		}
		got, orig := readOut(t, out, hit[0]), files.data["random.bin"]
		if !bytes.Equal(got[:start], orig[:start]) || !bytes.Equal(got[start+int64(s.payload):], orig[start+int64(s.payload):]) {
			t.Errorf("random.bin with a lost segment differs from the file outside the gap %s", gap)
		}
		if len(warningsWith(r, hit[0].Path, gap)) == 0 {
			t.Errorf("no warning names the gap %s of %s; warnings:\n%s", gap, hit[0].Path, strings.Join(r.Warnings, "\n"))
		}
		// Every other file is whole.
		whole := map[string]int{"secret.tar": 2, "random.bin": 1, "resume.bin": 1, "upload/stored.bin": 1}
		checkFTPObjects(t, r, out, files, whole, nil)
	})
}

// TestFTPPort21 records vsftpd on port 21 with active transfers from
// port 20 (connect_from_port_20=YES), when port 21 is free.
func TestFTPPort21(t *testing.T) {
	need.Root(t)
	if !portFree(21) || !portFree(20) {
		t.Skip("ports 20 and 21 are in use")
	}
	files := makeFTPFiles(t)
	run := recordFTP(t, files, 21, true, func(c *ftpClient) {
		c.retr("PASV", "secret.tar", 0)
		c.retr("PORT", "random.bin", 0)
		c.retr("EPRT", "secret.tar", 0)
	})
	full := readCapture(t, run.file)
	from20 := false
	for _, fr := range full.frames {
		if s, ok := full.tcp(fr); ok && s.syn && !s.ack && strings.HasSuffix(s.src, ":20") {
			from20 = true
		}
	}
	if !from20 {
		t.Fatal("vsftpd did not open an active data connection from port 20")
	}
	file := filepath.Join(t.TempDir(), "server-only.pcapng")
	full.serverOnly(t, run.toServer).write(t, file)
	for name, path := range map[string]string{"full": run.file, "server-only": file} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, out := extract(t, path, Options{})
			checkFTPObjects(t, r, out, files, map[string]int{"secret.tar": 2, "random.bin": 1}, nil)
			checkFlag(t, r, files.flag, filepath.Base(path))
			for _, e := range top(r, "ftp") {
				if e.Name == "random.bin" && !strings.Contains(e.Flow, "127.0.0.1:20 -> ") {
					t.Errorf("random.bin came from port 20, the manifest says flow %q", e.Flow)
				}
				if !strings.HasPrefix(e.Control, "tcp 127.0.0.1:") || !strings.Contains(e.Control, ":21") {
					t.Errorf("%s: control flow %q, want the connection to port 21", e.Path, e.Control)
				}
			}
		})
	}
}

// checkFTPObjects checks that the FTP objects are the originals: want
// counts the complete objects of each name (others may be incomplete,
// never complete and wrong), nameFrom their NameFrom when not nil.
func checkFTPObjects(t *testing.T, r *Report, out string, files ftpFiles, want map[string]int, nameFrom map[string]string) {
	t.Helper()
	got := map[string]int{}
	for _, e := range top(r, "ftp") {
		orig, known := files.data[e.Name]
		if !known {
			if e.Complete && !strings.HasPrefix(e.Name, "ftp-listing") {
				t.Errorf("%s: complete object %q (%s) is none of the files", e.Path, e.Name, e.NameFrom)
			}
			continue
		}
		if !e.Complete {
			continue
		}
		if e.SHA256 != sha(orig) || !bytes.Equal(readOut(t, out, e), orig) {
			t.Errorf("%s (%s, complete): sha256 %s, want %s", e.Path, e.Name, e.SHA256, sha(orig))
			continue
		}
		if len(e.Gaps) > 0 || e.FirstFrame == 0 || e.LastFrame < e.FirstFrame || e.Flow == "" || e.Control == "" || len(e.Ranges) == 0 {
			t.Errorf("%s: evidence missing: gaps %v, frames %d-%d, flow %q, control %q, ranges %v", e.Path, e.Gaps, e.FirstFrame, e.LastFrame, e.Flow, e.Control, e.Ranges)
		}
		if want := nameFrom[e.Name]; nameFrom != nil && e.NameFrom != want {
			t.Errorf("%s: name from %q, want %q", e.Path, e.NameFrom, want)
		}
		got[e.Name]++
	}
	if !maps.Equal(got, want) {
		t.Errorf("complete FTP objects by name %v, want %v; all: %v\nwarnings:\n%s", got, want, names(top(r, "ftp")), strings.Join(r.Warnings, "\n"))
	}
}

// checkFlag checks that the flag was found in secret.tar > inner.tar >
// flag.txt > base64, and only there.
func checkFlag(t *testing.T, r *Report, flag, capName string) {
	t.Helper()
	want := []string{capName, "ftp:secret.tar", "tar:inner.tar", "tar:flag.txt", "base64"}
	if len(r.Flags) == 0 {
		t.Errorf("flag %s not found", flag)
	}
	for _, h := range r.Flags {
		if h.Flag != flag || !slices.Equal(h.Chain, want) {
			t.Errorf("flag hit %q in %s with chain %q; want %q with chain %q", h.Flag, h.Path, h.Chain, flag, want)
		}
	}
}

// equalOutside compares a and b except in the gaps ("start-end").
func equalOutside(a, b []byte, gaps []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = bytes.Clone(a), bytes.Clone(b)
	for _, g := range gaps {
		var start, end int
		fmt.Sscanf(g, "%d-%d", &start, &end)
		for i := start; i < end && i < len(a); i++ {
			a[i], b[i] = 0, 0
		}
	}
	return bytes.Equal(a, b)
}

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s(%s, %d bytes, complete %v, gaps %v)", e.Path, e.NameFrom, e.Size, e.Complete, e.Gaps))
	}
	return out
}
