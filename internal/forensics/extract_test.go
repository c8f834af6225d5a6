package forensics

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNestedCaptures: a capture downloaded over HTTP inside a capture,
// once as is and once gzipped, is extracted in its turn; its objects'
// chains continue the outer one, their files go under
// <capture>.extracted/, and MaxDepth stops the recursion with a warning.
func TestNestedCaptures(t *testing.T) {
	t.Parallel()
	flag := "flag{nested_" + sha([]byte(t.Name()))[:12] + "}"
	inner := newSynth(t)
	inner.http(40001, "/loot/flag.tar", makeTar(t, tarFile{"flag.txt", []byte(flag + "\n")}), "")
	innerBytes := inner.bytes()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(innerBytes)
	zw.Close()
	outer := newSynth(t)
	outer.http(50001, "/dumps/inner.pcapng", innerBytes, "")
	outer.http(50002, "/dumps/inner2.bin", gz.Bytes(), "") // a capture, gzipped, under a misleading name
	file := outer.file(t.TempDir(), "outer.pcapng")

	r, out := extract(t, file, Options{})
	if r.Stats.Captures != 2 {
		t.Errorf("nested captures extracted: %d, want 2", r.Stats.Captures)
	}
	wantChains := [][]string{
		{"outer.pcapng", "http:inner.pcapng", "http:flag.tar", "tar:flag.txt"},
		{"outer.pcapng", "http:inner2.bin", "gzip", "http:flag.tar", "tar:flag.txt"},
	}
	var gotChains [][]string
	for _, h := range r.Flags {
		if h.Flag != flag {
			t.Errorf("flag %q found, want %q", h.Flag, flag)
		}
		gotChains = append(gotChains, h.Chain)
	}
	if !slices.EqualFunc(gotChains, wantChains, slices.Equal) {
		t.Errorf("flag chains %q, want %q", gotChains, wantChains)
	}
	var nested []Entry
	for _, e := range r.Objects {
		if e.Capture != "" && e.Parent == "" {
			nested = append(nested, e)
		}
	}
	if len(nested) != 2 {
		t.Fatalf("objects of nested captures: %v", names(nested))
	}
	for _, e := range nested {
		if e.Name != "/loot/flag.tar" && e.Name != "flag.tar" {
			t.Errorf("nested object %s named %q", e.Path, e.Name)
		}
		if !strings.HasPrefix(e.Path, e.Capture+".extracted/http/flag.tar") || e.Flow != "tcp 10.0.0.1:80 -> 10.0.0.2:40001" || e.FirstFrame == 0 {
			t.Errorf("nested object %s: capture %s, flow %q, frames %d-%d", e.Path, e.Capture, e.Flow, e.FirstFrame, e.LastFrame)
		}
		if !bytes.Contains(readOut(t, out, e), []byte(flag)) {
			t.Errorf("nested object %s does not hold the flag", e.Path)
		}
	}

	// MaxDepth 1: the top capture only; the flag is still in the bytes
	// of the captures, and found there.
	r, _ = extract(t, file, Options{MaxDepth: 1})
	gotChains = nil
	for _, h := range r.Flags {
		gotChains = append(gotChains, h.Chain)
	}
	wantChains = [][]string{{"outer.pcapng", "http:inner.pcapng"}, {"outer.pcapng", "http:inner2.bin", "gzip"}}
	if r.Stats.Captures != 0 || !slices.EqualFunc(gotChains, wantChains, slices.Equal) {
		t.Errorf("MaxDepth 1: %d nested captures extracted, flags at %q; want none, at %q", r.Stats.Captures, gotChains, wantChains)
	}
	if len(warningsWith(r, "not extracted (MaxDepth 1)")) != 2 {
		t.Errorf("MaxDepth 1: warnings %q", r.Warnings)
	}
}

// TestHostileNames: names from the capture cannot lead out of the output
// directory, and a symbolic link planted in it is not followed.
func TestHostileNames(t *testing.T) {
	t.Parallel()
	s := newSynth(t)
	s.http(40001, "/a", []byte("one"), "Content-Disposition: attachment; filename=\"../../../../tmp/evil.sh\"\r\n")
	s.http(40002, "/b", []byte("two"), "Content-Disposition: attachment; filename=\"..\"\r\n")
	s.http(40003, "/c/..%2F..%2Fx", []byte("three"), "")
	s.http(40004, "/d", []byte("four"), "Content-Disposition: attachment; filename=\"/etc/passwd\"\r\n")
	s.http(40005, "/e", makeTar(t, tarFile{"../../../escape.txt", []byte("five")}), "")
	file := s.file(t.TempDir(), "hostile.pcapng")
	r, out := extract(t, file, Options{})
	for _, e := range r.Objects {
		if !strings.HasPrefix(e.Path, "objects/http/") {
			t.Errorf("entry %q (name %q) is not under objects/http/", e.Path, e.Name)
		}
	}
	if len(r.Objects) < 6 {
		t.Errorf("%d entries, want the 5 bodies and the tar's entry: %v", len(r.Objects), names(r.Objects))
	}
	err := filepath.Walk(filepath.Dir(out), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.HasPrefix(p, out+string(filepath.Separator)) && p != file {
			t.Errorf("file written outside the output directory: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A symbolic link where the objects go, pointing elsewhere.
	dir, elsewhere := t.TempDir(), t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, "objects")); err != nil {
		t.Fatal(err)
	}
	r, err = Extract(context.Background(), file, dir, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) > 0 {
		t.Errorf("Extract wrote through a symbolic link out of the output directory: %v", ents)
	}
	if len(r.Objects) != 0 || len(warningsWith(r, "not written")) != 5 {
		t.Errorf("through a planted symlink: %d entries; warnings %q", len(r.Objects), r.Warnings)
	}
}

func TestOutputNames(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, want string }{
		{"secret.tar", "secret.tar"},
		{"/pub/x/secret.tar", "secret.tar"},
		{"..\\..\\boot.ini", "boot.ini"},
		{"..", "fallback"},
		{"dir/", "dir"},
		{"", "fallback"},
		{"a\x00b\nc", "a_b_c"},
		{strings.Repeat("é", 150), strings.Repeat("é", 100)},
	}
	for _, tc := range tests {
		if got := safeName(tc.name, "fallback"); got != tc.want {
			t.Errorf("safeName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	o, err := openOutput(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var got []string
	for _, rel := range []string{"a/x.bin", "a/x.bin", "a/x.bin.unpacked", "a/x.bin/inner", "a/noext", "a/noext"} {
		name, _, _, err := o.write(rel, false, strings.NewReader("data"), 4)
		if err != nil {
			t.Fatalf("write(%q): %v", rel, err)
		}
		got = append(got, name)
	}
	want := []string{"a/x.bin", "a/x~2.bin", "a/x.bin.unpacked", "a/x.bin_inner", "a/noext", "a/noext~2"}
	if !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
	for name, mode := range map[string]os.FileMode{"a": 0o755 | os.ModeDir, "a/x.bin": 0o644} {
		if fi, err := os.Stat(filepath.Join(o.dir, name)); err != nil || fi.Mode() != mode {
			t.Errorf("%s: mode %v (%v), want %v", name, fi.Mode(), err, mode)
		}
	}
	if r := o.reserve("a/x.bin"); r != "a/x~3.bin" {
		t.Errorf("reserve(a/x.bin) = %q after two files of that name", r)
	}
	if r := o.reserve("a/x.bin"); r != "a/x~4.bin" {
		t.Errorf("reserve(a/x.bin) = %q after reserving a/x~3.bin", r)
	}
	if d, err := o.mkdirNew("a/x.bin.unpacked"); err != nil || d != "a/x.bin~2.unpacked" {
		t.Errorf("mkdirNew over a file: %q, %v", d, err)
	}
	if _, _, _, err := o.write("b", false, strings.NewReader(strings.Repeat("x", 100)), 100); !errors.Is(err, errBudget) {
		t.Errorf("writing past MaxOutput: %v, want the budget error", err)
	}
	for _, bad := range []string{"../x", "/etc/x"} {
		if _, _, _, err := o.write(bad, false, strings.NewReader("x"), 1); err == nil {
			t.Errorf("write(%q) succeeded", bad)
		}
	}
}

// TestBadCaptures: what cannot be read as a capture is an error naming
// the file; damage inside one gives partial results and warnings.
func TestBadCaptures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSynth(t)
	s.http(40001, "/big.bin", bytes.Repeat([]byte("0123456789abcdef"), 20000), "")
	good := s.bytes()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	for _, tc := range []struct{ name, file, want string }{
		{"missing", filepath.Join(dir, "nope.pcap"), "no such file"},
		{"not a capture", write("notes.txt", []byte("these are not packets\n")), "notes.txt"},
		{"empty", write("empty.pcap", nil), "empty.pcap"},
		{"directory", dir, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Extract(context.Background(), tc.file, t.TempDir(), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Extract(%s) = %v, want an error with %q", tc.file, err, tc.want)
			}
		})
	}
	t.Run("cut", func(t *testing.T) {
		r, _ := extract(t, write("cut.pcapng", good[:len(good)/2]), Options{})
		objs := top(r, "http")
		if len(objs) != 1 || objs[0].Complete || len(objs[0].Gaps) == 0 || len(warningsWith(r, "objects/http/big.bin", "not captured")) != 1 {
			t.Errorf("cut capture: objects %v, warnings %q", names(objs), r.Warnings)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Extract(ctx, write("ok.pcapng", good), t.TempDir(), Options{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Extract with a cancelled context: %v", err)
		}
	})
}

// TestTFTP: the datagrams of a TFTP download reach the extractor; other
// UDP (DNS here) is not kept.
func TestTFTP(t *testing.T) {
	t.Parallel()
	s := newSynth(t)
	cli, srv := netip.MustParseAddrPort("10.0.0.2:50000"), netip.MustParseAddrPort("10.0.0.1:69")
	data := randomBytes(512*7 + 100)
	dns := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}
	s.udp(cli, netip.MustParseAddrPort("10.0.0.53:53"), dns)
	s.udp(cli, srv, append([]byte{0, 1}, "secret.bin\x00octet\x00"...))
	from := netip.MustParseAddrPort("10.0.0.1:40000")
	for block := 1; (block-1)*512 <= len(data); block++ {
		chunk := data[(block-1)*512 : min(block*512, len(data))]
		s.udp(from, cli, append([]byte{0, 3, byte(block >> 8), byte(block)}, chunk...))
		s.udp(cli, from, []byte{0, 4, byte(block >> 8), byte(block)})
		s.udp(netip.MustParseAddrPort("10.0.0.53:53"), cli, dns)
	}
	r, out := extract(t, s.file(t.TempDir(), "tftp.pcapng"), Options{})
	objs := top(r, "tftp")
	if len(objs) != 1 || objs[0].Name != "secret.bin" || !objs[0].Complete || !bytes.Equal(readOut(t, out, objs[0]), data) {
		t.Fatalf("TFTP objects %v; warnings %q", names(objs), r.Warnings)
	}
	if r.Stats.Datagrams != 17 || r.Stats.Packets != 26 {
		t.Errorf("datagrams kept %d of %d packets; want the 17 of TFTP", r.Stats.Datagrams, r.Stats.Packets)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	s := newSynth(t)
	for i := range 40 {
		s.http(uint16(40000+i), "/f.bin", randomBytes(100<<10), "")
	}
	file := s.file(t.TempDir(), "p.pcapng")
	fi, _ := os.Stat(file)
	var calls [][2]int64
	extract(t, file, Options{Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
	if len(calls) < 3 || calls[len(calls)-1] != [2]int64{fi.Size(), fi.Size()} {
		t.Fatalf("progress calls %v for a %d-byte capture", calls, fi.Size())
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] || calls[i][1] != fi.Size() {
			t.Errorf("progress went %v then %v", calls[i-1], calls[i])
		}
	}
}
