package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	capture "noops/internal/forensics/pcap"
)

// TestMain doubles as the child of TestRunMeasuresTheTool: with
// BENCH_PCAP_TEST_ALLOC=N it touches N MiB, holds them 200 ms (the
// polling fallback reads every 20 ms) and exits 3.
func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv("BENCH_PCAP_TEST_ALLOC")); err == nil {
		b := make([]byte, n<<20)
		for i := range b {
			b[i] = byte(i)
		}
		time.Sleep(200 * time.Millisecond)
		runtime.KeepAlive(b)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// The peak RSS reported is the tool's, not the driver's: the driver
// holds 400 MiB here, the child touches 16 MiB.
func TestRunMeasuresTheTool(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 400 MiB")
	}
	ballast := make([]byte, 400<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	defer runtime.KeepAlive(ballast)
	t.Setenv("BENCH_PCAP_TEST_ALLOC", "16")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		gnuTime string
	}{{"gnu time", findGNUTime()}, {"polling", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "gnu time" && tc.gnuTime == "" {
				t.Skip("GNU time is not installed")
			}
			prev := gnuTime
			gnuTime = tc.gnuTime
			defer func() { gnuTime = prev }()
			r, err := run(context.Background(), []string{self}, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if r.ExitCode != 3 {
				t.Errorf("exit code %d, want 3", r.ExitCode)
			}
			// 16 MiB of data plus the runtime (and the race detector's
			// shadow memory under -race); the driver's 400 would show.
			if r.MaxRSSMB < 16 || r.MaxRSSMB > 300 {
				t.Errorf("peak RSS %.0f MB (%s), want 16-300", r.MaxRSSMB, r.MeasuredBy)
			}
			if r.CPUSeconds <= 0 {
				t.Errorf("CPU time %.3f s, want > 0", r.CPUSeconds)
			}
		})
	}
}

// The same seed gives the same capture, another seed another; every
// frame reads back with noops's reader, without a warning.
func TestMixIsDeterministicAndReadable(t *testing.T) {
	dir := t.TempDir()
	opt := mixOptions{target: 3e6, maxObject: 5e5, protocols: map[string]bool{"http": true, "ftp": true, "smtp": true, "tftp": true}}
	sums := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		seed := uint64(7)
		if name == "c" {
			seed = 8
		}
		path := filepath.Join(dir, name+".pcapng")
		objs, size, frames, err := writeMix(path, seed, opt)
		if err != nil {
			t.Fatalf("writeMix: %v", err)
		}
		var carried int64
		for _, o := range objs {
			carried += int64(o.Size)
			if len(o.SHA256) != 64 {
				t.Errorf("object %s has digest %q", o.Name, o.SHA256)
			}
		}
		// gzip'd text bodies can make the file smaller than its objects.
		if carried < opt.target || size < carried/2 {
			t.Errorf("%s: objects %d bytes, file %d, want objects >= %d", name, carried, size, opt.target)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		sums[name] = string(sum[:])
		rd, err := capture.Open(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		n := 0
		for {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading %s: frame %d: %v", name, n+1, err)
			}
			n++
		}
		if n != frames || len(rd.Warnings()) > 0 {
			t.Errorf("%s: read %d frames with warnings %v, wrote %d", name, n, rd.Warnings(), frames)
		}
	}
	if sums["a"] != sums["b"] {
		t.Error("the same seed gave two captures")
	}
	if sums["a"] == sums["c"] {
		t.Error("two seeds gave the same capture")
	}
}

func TestCasesBuild(t *testing.T) {
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, strconv.Itoa(c.id)+".pcapng")
		truth, err := c.build(path, 1000+uint64(c.id))
		if err != nil {
			t.Fatalf("case %d: %v", c.id, err)
		}
		if truth.want == nil || digest(truth.want.data) != truth.want.SHA256 {
			t.Fatalf("case %d: the object's digest is not of its bytes", c.id)
		}
		if c.id == 5 && truth.flag == "" {
			t.Error("case 5 has no flag")
		}
		if c.id == 7 && (truth.captured <= 0 || truth.captured >= truth.want.Size) {
			t.Errorf("case 7: %d of %d bytes captured, want part", truth.captured, truth.want.Size)
		}
	}
}

func TestHoldsPrefix(t *testing.T) {
	want := []byte("0123456789")
	for _, tc := range []struct {
		name string
		b    string
		n    int
		ok   bool
	}{
		{"exact prefix", "01234", 5, true},
		{"more of the file", "0123456", 5, true},
		{"zeros after", "01234\x00\x00\x00", 5, true},
		{"short", "0123", 5, false},
		{"differs", "01x34", 5, false},
		{"garbage after", "01234x", 5, false},
		{"longer than the file", "0123456789x", 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := holdsPrefix([]byte(tc.b), want, tc.n); got != tc.ok {
				t.Errorf("holdsPrefix(%q, %d) = %v, want %v", tc.b, tc.n, got, tc.ok)
			}
		})
	}
}
