// Command pcap is the benchmark of issue 9: `noops pcap extract` against
// `tshark --export-objects` on the same captures, in the same run.
//
//	pcap --noops BIN [--tshark tshark] [--bytes 1.1e9] [--no-http-bytes 3e8]
//	     [--max-object 5e7] [--protocols http,ftp,smtp,tftp] [--seed 1]
//	     [--out-dir bench/out] [--keep] [--timeout 1h] [--generate-only]
//
// Throughput: a capture carrying at least --bytes of objects is generated
// deterministically from --seed with noops/internal/forensics/pcap's
// Writer (pcapng, Ethernet, frames built with gopacket's layers): HTTP/1.1
// keep-alive sessions (Content-Length or chunked, text sometimes gzip'd),
// FTP sessions as vsftpd answers them (PASV data connections, RETR and
// some STOR), SMTP messages with a base64 attachment and TFTP reads,
// six sessions at a time with their packets interleaved; objects of 1 KB
// to --max-object, log-uniform, their SHA-256s written beside the capture
// (capture.expected.json). TCP has handshakes, sequence numbers, delayed
// ACKs and FINs. The file is read once to warm the page cache, then
// noops (`pcap extract FILE -o DIR --json`) and tshark (`-r FILE -q
// --export-objects` for http, ftp-data, imf and tftp, each into a folder
// of its own) run one after the other. Measured per tool: wall time, CPU
// time and peak RSS of the tool's process (see run), capture MB/s; then
// every file it wrote is hashed and counted against the known objects,
// and the output is deleted. The ratio is noops's MB/s over tshark's
// (target >= 3). The same is done on a second capture without HTTP
// (--no-http-bytes; 0 skips it), where tshark reassembles no bodies.
//
// Cases: seven small captures (see cases.go) run through both tools; per
// case, whether each tool's output is right by SHA-256 and what it wrote
// instead.
//
// Both tools run at their defaults. The captures are deleted at the end
// unless --keep; --generate-only writes them (and the cases') and runs
// nothing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := drive(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pcap:", err)
		os.Exit(1)
	}
}

type config struct {
	noops, tshark string
	bytes         int64
	sideBytes     int64
	maxObject     float64
	protocols     map[string]bool
	seed          uint64
	outDir        string
	keep          bool
	timeout       time.Duration
	generate      bool
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("pcap", flag.ExitOnError)
	noops := fs.String("noops", "bin/noops", "the noops binary")
	tshark := fs.String("tshark", "tshark", "the tshark binary")
	size := fs.String("bytes", "1.1e9", "objects carried by the large capture, in bytes (headers and ACKs add to the file, gzip'd bodies take away)")
	side := fs.String("no-http-bytes", "3e8", "objects carried by a second capture without HTTP (FTP, SMTP, TFTP); 0: none")
	maxObj := fs.String("max-object", "5e7", "largest object, in bytes")
	protos := fs.String("protocols", "http,ftp,smtp,tftp", "the large capture's protocols")
	seed := fs.Uint64("seed", 1, "seed of the generator")
	outDir := fs.String("out-dir", "bench/out", "where pcap.json and the captures (in pcap/) go")
	keep := fs.Bool("keep", false, "keep the large captures")
	timeout := fs.Duration("timeout", time.Hour, "longest run of one tool")
	generate := fs.Bool("generate-only", false, "write the captures and their expected objects under --out-dir/pcap, run nothing")
	_ = fs.Parse(args)
	c := config{noops: *noops, tshark: *tshark, seed: *seed, outDir: *outDir, keep: *keep, timeout: *timeout, generate: *generate,
		protocols: map[string]bool{}}
	var err error
	if c.bytes, err = parseBytes("--bytes", *size); err != nil {
		return c, err
	}
	if c.sideBytes, err = parseBytes("--no-http-bytes", *side); err != nil {
		return c, err
	}
	maxObject, err := parseBytes("--max-object", *maxObj)
	if err != nil {
		return c, err
	}
	c.maxObject = float64(maxObject)
	for _, p := range strings.Split(*protos, ",") {
		switch p {
		case "http", "ftp", "smtp", "tftp":
			c.protocols[p] = true
		default:
			return c, fmt.Errorf("--protocols: unknown protocol %q (http, ftp, smtp, tftp)", p)
		}
	}
	switch {
	case c.bytes < 1e6 || c.bytes > 64e9:
		return c, errors.New("--bytes must be 1e6-64e9")
	case c.sideBytes != 0 && (c.sideBytes < 1e6 || c.sideBytes > 64e9):
		return c, errors.New("--no-http-bytes must be 0 or 1e6-64e9")
	case c.maxObject < 1e4 || c.maxObject > 1e9:
		return c, errors.New("--max-object must be 1e4-1e9")
	case c.timeout < time.Minute:
		return c, errors.New("--timeout must be at least 1m")
	}
	return c, nil
}

func parseBytes(name, v string) (int64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return int64(f), nil
}

// mixes returns the large captures to run: the mix of --protocols, and
// the same without HTTP.
func (c config) mixes() []mixRun {
	out := []mixRun{{Name: "capture", Protocols: keys(c.protocols),
		opt: mixOptions{target: c.bytes, maxObject: c.maxObject, protocols: c.protocols}}}
	if c.sideBytes > 0 {
		noHTTP := map[string]bool{"ftp": true, "smtp": true, "tftp": true}
		out = append(out, mixRun{Name: "no-http", Protocols: keys(noHTTP),
			opt: mixOptions{target: c.sideBytes, maxObject: c.maxObject, protocols: noHTTP}})
	}
	return out
}

func drive(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	work := filepath.Join(cfg.outDir, "pcap")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if work, err = filepath.Abs(work); err != nil {
		return err
	}
	if cfg.generate {
		return generateOnly(cfg, work)
	}
	defer func() {
		os.RemoveAll(filepath.Join(work, "noops.out"))
		os.RemoveAll(filepath.Join(work, "tshark.out"))
		os.RemoveAll(filepath.Join(work, "cases"))
	}()
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), Seed: cfg.seed,
		NoopsVersion: toolVersion(cfg.noops, "version"), TsharkVersion: toolVersion(cfg.tshark, "--version"), Target: 3}
	ctx := context.Background()
	for _, m := range cfg.mixes() {
		r, err := runMix(ctx, cfg, work, m)
		if err != nil {
			return err
		}
		rep.Mixes = append(rep.Mixes, r)
	}
	rep.TargetMet = rep.Mixes[0].Ratios.Speed >= rep.Target
	if rep.Cases, err = runCases(ctx, cfg, filepath.Join(work, "cases")); err != nil {
		return err
	}
	rep.print(os.Stdout)
	return writeJSON(filepath.Join(cfg.outDir, "pcap.json"), rep)
}

// runMix generates a large capture and runs both tools on it, one after
// the other, each from a warm page cache.
func runMix(ctx context.Context, cfg config, work string, m mixRun) (*mixRun, error) {
	capPath := filepath.Join(work, m.Name+".pcapng")
	if !cfg.keep {
		defer os.Remove(capPath)
	}
	fmt.Fprintf(os.Stderr, "generating %s (%s) carrying %.2f GB of objects (seed %d): %s\n", m.Name,
		strings.Join(m.Protocols, ", "), float64(m.opt.target)/1e9, cfg.seed, capPath)
	t0 := time.Now()
	objs, size, frames, err := writeMix(capPath, cfg.seed, m.opt)
	if err != nil {
		return nil, fmt.Errorf("generating %s: %w", capPath, err)
	}
	m.Capture = captureInfo{Bytes: size, Frames: frames, Objects: map[string]int{}, GenerateSeconds: time.Since(t0).Seconds()}
	for _, o := range objs {
		m.Capture.Objects[o.Protocol]++
		m.Capture.ObjectBytes += int64(o.Size)
	}
	if err := writeJSON(filepath.Join(work, m.Name+".expected.json"), objs); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "  %d frames, %.1f MB, %d objects (%.1f MB) in %.0f s\n", frames, float64(size)/1e6,
		len(objs), float64(m.Capture.ObjectBytes)/1e6, m.Capture.GenerateSeconds)

	for _, side := range []string{"noops", "tshark"} {
		if err := warm(capPath); err != nil {
			return nil, err
		}
		dir := filepath.Join(work, side+".out")
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "%s: extracting\n", side)
		tctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		var out *toolOutput
		if side == "noops" {
			out, err = runNoops(tctx, cfg.noops, capPath, dir)
		} else {
			out, err = runTshark(tctx, cfg.tshark, capPath, dir)
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", side, m.Name, err)
		}
		res := score(out, objs, size)
		fmt.Fprintf(os.Stderr, "  %.1f s wall, %.1f s CPU, %.0f MB peak RSS, exit %d; %d of %d objects right\n",
			res.Run.WallSeconds, res.Run.CPUSeconds, res.Run.MaxRSSMB, res.Run.ExitCode, res.Right, len(objs))
		if side == "noops" {
			m.Noops = res
		} else {
			m.Tshark = res
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	m.Ratios = ratios{
		Speed: m.Noops.MBps / m.Tshark.MBps,
		CPU:   m.Tshark.Run.CPUSeconds / m.Noops.Run.CPUSeconds,
		RSS:   m.Tshark.Run.MaxRSSMB / m.Noops.Run.MaxRSSMB,
	}
	return &m, nil
}

// generateOnly writes the large captures and the cases' captures, each
// with its expected objects, and runs nothing.
func generateOnly(cfg config, work string) error {
	for _, m := range cfg.mixes() {
		capPath := filepath.Join(work, m.Name+".pcapng")
		objs, size, frames, err := writeMix(capPath, cfg.seed, m.opt)
		if err != nil {
			return fmt.Errorf("generating %s: %w", capPath, err)
		}
		if err := writeJSON(filepath.Join(work, m.Name+".expected.json"), objs); err != nil {
			return err
		}
		fmt.Printf("%s: %d frames, %d bytes, %d objects\n", capPath, frames, size, len(objs))
	}
	for _, c := range cases {
		path := filepath.Join(work, fmt.Sprintf("case%d.pcapng", c.id))
		truth, err := c.build(path, cfg.seed*1000+uint64(c.id))
		if err != nil {
			return fmt.Errorf("case %d: %w", c.id, err)
		}
		if err := writeJSON(strings.TrimSuffix(path, ".pcapng")+".expected.json", truth.want); err != nil {
			return err
		}
		fmt.Printf("%s: %s (%s, %d bytes, sha256 %s)\n", path, c.title, truth.want.Name, truth.want.Size, truth.want.SHA256)
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for _, p := range []string{"http", "ftp", "smtp", "tftp"} {
		if m[p] {
			out = append(out, p)
		}
	}
	return out
}

// warm reads the capture once, so that both tools read it from the page
// cache.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
	return err
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// runCases builds each case's capture and runs both tools on it.
func runCases(ctx context.Context, cfg config, dir string) ([]caseResult, error) {
	var out []caseResult
	for _, c := range cases {
		cdir := filepath.Join(dir, strconv.Itoa(c.id))
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return nil, err
		}
		path := filepath.Join(cdir, "case.pcapng")
		truth, err := c.build(path, cfg.seed*1000+uint64(c.id))
		if err != nil {
			return nil, fmt.Errorf("case %d: %w", c.id, err)
		}
		fmt.Fprintf(os.Stderr, "case %d: %s\n", c.id, c.title)
		tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		ours, err := runNoops(tctx, cfg.noops, path, filepath.Join(cdir, "noops"), "--flag", `flag\{[^}]+\}`)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("case %d: noops: %w", c.id, err)
		}
		theirs, err := runTshark(tctx, cfg.tshark, path, filepath.Join(cdir, "tshark"))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("case %d: tshark: %w", c.id, err)
		}
		r := caseResult{ID: c.id, Title: c.title, Size: truth.want.Size, SHA256: truth.want.SHA256,
			Tshark: c.judge(truth, theirs, false), Noops: c.judge(truth, ours, true),
			TsharkExit: theirs.run.ExitCode, NoopsExit: ours.run.ExitCode}
		if ours.manifest != nil {
			r.NoopsWarnings = ours.manifest.Warnings
		}
		out = append(out, r)
		if err := os.RemoveAll(cdir); err != nil {
			return nil, err
		}
	}
	return out, nil
}
