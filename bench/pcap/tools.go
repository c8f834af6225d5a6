package main

// Running the two extractors and reading what they wrote: wall time, the
// child's CPU time and peak RSS (wait4's rusage), every output file's
// SHA-256, and noops's manifest.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// toolRun is one run of an extractor.
type toolRun struct {
	Command     []string `json:"command"`
	WallSeconds float64  `json:"wall_s"`
	UserSeconds float64  `json:"user_s"`
	SysSeconds  float64  `json:"sys_s"`
	CPUSeconds  float64  `json:"cpu_s"`
	MaxRSSMB    float64  `json:"max_rss_mb"`
	MeasuredBy  string   `json:"measured_by"` // how CPU time and peak RSS were read
	ExitCode    int      `json:"exit_code"`
	StderrTail  string   `json:"stderr_tail,omitempty"`
}

// outFile is a file an extractor wrote.
type outFile struct {
	Rel    string // relative to the tool's output folder
	Abs    string
	Size   int64
	SHA256 string
}

// toolOutput is what one run left: its measures, files and (noops) its
// manifest.
type toolOutput struct {
	run      *toolRun
	files    []outFile
	manifest *manifest
}

// manifest is the part of noops's manifest.json the benchmark reads.
type manifest struct {
	Objects []struct {
		Path         string   `json:"path"`
		SHA256       string   `json:"sha256"`
		Size         int64    `json:"size"`
		Protocol     string   `json:"protocol"`
		Name         string   `json:"name"`
		ExpectedSize int64    `json:"expected_size"`
		Complete     bool     `json:"complete"`
		Gaps         []string `json:"gaps"`
		Flags        []string `json:"flags"`
		Parent       string   `json:"parent"`
	} `json:"objects"`
	Flags []struct {
		Flag string `json:"flag"`
		Path string `json:"path"`
	} `json:"flags"`
	Warnings []string `json:"warnings"`
}

// gnuTime is GNU time's path when it is installed.
var gnuTime = findGNUTime()

func findGNUTime() string {
	out, err := exec.Command("/usr/bin/time", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "GNU") {
		return ""
	}
	return "/usr/bin/time"
}

// run runs argv, its stdout to stdout (nil: discarded), and measures it.
// A non-zero exit is recorded, not returned: tshark exits 2 on a cut
// capture and still writes what it exported.
//
// CPU time and peak RSS come from GNU time when it is installed (its
// wait4 of the tool). The driver's own wait4 would not do for the peak
// RSS: Linux starts a child's high-water mark at exec from the memory
// it was forked with, and Go forks children sharing the driver's
// memory, so every child would report at least the driver's peak (which
// holds objects while it generates captures). Without GNU time, the
// child's CPU time comes from wait4 and its peak from VmHWM in
// /proc/PID/status, read every 20 ms (growth in the last 20 ms before
// the exit is missed).
func run(ctx context.Context, argv []string, stdout io.Writer) (*toolRun, error) {
	full, report := argv, ""
	if gnuTime != "" {
		f, err := os.CreateTemp("", "noops-bench-time.")
		if err != nil {
			return nil, err
		}
		f.Close()
		report = f.Name()
		defer os.Remove(report)
		full = append([]string{gnuTime, "-f", "%e %U %S %M", "-o", report}, argv...)
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	// Its own process group, so that a timeout kills the tool under time.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", argv[0], err)
	}
	var hwm atomic.Int64
	polled := make(chan struct{})
	if report == "" {
		go pollHWM(cmd.Process.Pid, &hwm, polled)
	} else {
		close(polled)
	}
	err := cmd.Wait()
	wall := time.Since(t0)
	<-polled
	r := &toolRun{Command: argv, WallSeconds: wall.Seconds(), StderrTail: strings.TrimSpace(stderr.String())}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("running %s: %w (after %s)", argv[0], ctx.Err(), wall.Round(time.Second))
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return nil, fmt.Errorf("running %s: %w", argv[0], err)
	}
	r.ExitCode = cmd.ProcessState.ExitCode()
	if report != "" {
		if err := readTimeReport(report, r); err != nil {
			return nil, fmt.Errorf("running %s: %w", argv[0], err)
		}
	} else {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.UserSeconds = time.Duration(ru.Utime.Nano()).Seconds()
			r.SysSeconds = time.Duration(ru.Stime.Nano()).Seconds()
		}
		r.MaxRSSMB = float64(hwm.Load()) / 1024
		r.MeasuredBy = "wait4 (CPU), VmHWM every 20 ms (peak RSS)"
	}
	r.CPUSeconds = r.UserSeconds + r.SysSeconds
	return r, nil
}

// readTimeReport reads GNU time's "%e %U %S %M" line (after a line
// about a non-zero exit, if any).
func readTimeReport(path string, r *toolRun) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading GNU time's report: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var wall, user, sys float64
	var kb int64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "%g %g %g %d", &wall, &user, &sys, &kb); err != nil {
		return fmt.Errorf("reading GNU time's report %q: %w", b, err)
	}
	r.UserSeconds, r.SysSeconds, r.MaxRSSMB = user, sys, float64(kb)/1024
	r.MeasuredBy = "GNU time (wait4 of the tool)"
	return nil
}

// pollHWM records the process's VmHWM (KiB) until it is gone.
func pollHWM(pid int, hwm *atomic.Int64, done chan<- struct{}) {
	defer close(done)
	path := fmt.Sprintf("/proc/%d/status", pid)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		st := string(b)
		if strings.Contains(st, "State:\tZ") {
			return
		}
		if i := strings.Index(st, "VmHWM:"); i >= 0 {
			var kb int64
			if _, err := fmt.Sscanf(st[i+len("VmHWM:"):], "%d", &kb); err == nil && kb > hwm.Load() {
				hwm.Store(kb)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8192 {
		t.b = append(t.b[:0], t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b[max(0, len(t.b)-4096):]) }

// runNoops runs `noops pcap extract capture -o dir --json` with extra
// flags, then reads the manifest and hashes the files.
func runNoops(ctx context.Context, bin, capture, dir string, extra ...string) (*toolOutput, error) {
	argv := append([]string{bin, "pcap", "extract", capture, "-o", dir, "--json"}, extra...)
	var stdout bytes.Buffer
	r, err := run(ctx, argv, &stdout)
	if err != nil {
		return nil, err
	}
	out := &toolOutput{run: r}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		b, err = stdout.Bytes(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading noops's manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err == nil {
		out.manifest = &m
	} else if r.ExitCode == 0 {
		return nil, fmt.Errorf("reading noops's manifest: %w", err)
	}
	out.files, err = hashTree(dir, "manifest.json", "summary.txt")
	return out, err
}

// tsharkKinds are tshark's export-object types for the four protocols.
var tsharkKinds = []string{"http", "ftp-data", "imf", "tftp"}

// runTshark runs tshark's export of the four protocols' objects, each
// into a folder of dir named after the type, then hashes the files.
func runTshark(ctx context.Context, bin, capture, dir string) (*toolOutput, error) {
	argv := []string{bin, "-r", capture, "-q"}
	for _, k := range tsharkKinds {
		sub := filepath.Join(dir, k)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, err
		}
		argv = append(argv, "--export-objects", k+","+sub)
	}
	r, err := run(ctx, argv, nil)
	if err != nil {
		return nil, err
	}
	files, err := hashTree(dir)
	return &toolOutput{run: r, files: files}, err
}

// hashTree returns every regular file under dir (but the top-level names
// in skip) with its SHA-256.
func hashTree(dir string, skip ...string) ([]outFile, error) {
	var out []outFile
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s {
				return nil
			}
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.CopyBuffer(h, f, buf)
		if err != nil {
			return fmt.Errorf("hashing %s: %w", p, err)
		}
		out = append(out, outFile{Rel: filepath.ToSlash(rel), Abs: p, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the output folder: %w", err)
	}
	return out, nil
}

// bySum indexes files by SHA-256.
func bySum(files []outFile) map[string]outFile {
	m := make(map[string]outFile, len(files))
	for _, f := range files {
		m[f.SHA256] = f
	}
	return m
}

// toolVersion returns the first line argv prints.
func toolVersion(argv ...string) string {
	out, _ := exec.Command(argv[0], argv[1:]...).Output()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
