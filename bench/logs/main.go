// Command logs is the log-store benchmark of issue 8: it ingests
// realistic access-log records (noops/internal/observe/logstore/synth,
// deterministic from --seed) into the embedded log store and reports the
// lines ingested per second on one core and the bytes on disk per line;
// then, when a Grafana Loki binary is given (--loki), pushes the same
// lines, rendered as text with their trace IDs, to Loki on 127.0.0.1 in
// the same run and reports the same figures for it.
//
//	logs [--lines 1000000] [--seed 1] [--out-dir bench/out]
//	     [--loki PATH] [--loki-skip REASON] [--batch 10000] [--timeout 10m]
//
// noops: the records are made first (not timed); then, with GOMAXPROCS=1,
// one goroutine Appends them all and Closes the store (which seals and
// syncs every block): lines/s is the count over that wall time, and the
// process's CPU time over it (getrusage) gives lines per CPU-second. The
// store's directory is then measured and every record is read back
// (a count, a tail of 100 lines of one app, a trace ID lookup), so a
// store that lost records fails the run.
//
// Reference (no server): the same lines as text (Record.String), raw,
// gzip -6 and zstd (default level) of the whole text in one piece: what
// rotated, compressed text files would take.
//
// Loki: a temporary config (filesystem storage in a temporary folder,
// 127.0.0.1 only, no auth, limits raised), pushed with
// POST /loki/api/v1/push in JSON batches of --batch lines, one stream
// per app ({app, stream="access"}), one client. Lines/s is the count over
// the push time; the Loki process's CPU time (/proc/PID/stat) gives lines
// per CPU-second. Then POST /flush and a SIGTERM (flush on shutdown)
// write its chunks, and its chunks and index folders are measured. The
// process is killed if still there when the driver ends.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"noops/internal/observe/logstore"
	"noops/internal/observe/logstore/synth"
)

func main() {
	if err := drive(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "logs:", err)
		os.Exit(1)
	}
}

type config struct {
	lines    int
	seed     uint64
	outDir   string
	loki     string
	lokiSkip string
	batch    int
	timeout  time.Duration
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("logs", flag.ExitOnError)
	lines := fs.Int("lines", 1_000_000, "access-log records to ingest")
	seed := fs.Uint64("seed", 1, "seed of the generator")
	outDir := fs.String("out-dir", "bench/out", "where logs.json goes")
	loki := fs.String("loki", "", "path of a Grafana Loki binary; empty: noops alone")
	skip := fs.String("loki-skip", "", "why Loki is not run (printed in the report)")
	batch := fs.Int("batch", 10000, "lines per Loki push")
	timeout := fs.Duration("timeout", 10*time.Minute, "longest Loki side (start, push, flush)")
	_ = fs.Parse(args)
	c := config{lines: *lines, seed: *seed, outDir: *outDir, loki: *loki, lokiSkip: *skip, batch: *batch, timeout: *timeout}
	switch {
	case c.lines < 1000 || c.lines > 10_000_000:
		return c, errors.New("--lines must be 1000-10000000")
	case c.batch < 100 || c.batch > 100_000:
		return c, errors.New("--batch must be 100-100000")
	case c.timeout < 10*time.Second || c.timeout > time.Hour:
		return c, errors.New("--timeout must be 10s-1h")
	}
	return c, nil
}

// report is the run's results, printed and saved as JSON.
type report struct {
	Date      string        `json:"date"`
	CPUs      int           `json:"cpus"`
	Lines     int           `json:"lines"`
	Seed      uint64        `json:"seed"`
	Noops     *sideResult   `json:"noops"`
	Reference *textSizes    `json:"text_reference"`
	Loki      *sideResult   `json:"loki,omitempty"`
	LokiSkip  string        `json:"loki_skipped,omitempty"`
	Ratios    *ratios       `json:"ratios,omitempty"`
	Targets   targetResults `json:"targets"`
	Checks    checks        `json:"checks"`
}

type sideResult struct {
	What           string  `json:"what"`
	Version        string  `json:"version,omitempty"`
	WallSeconds    float64 `json:"wall_s"`
	CPUSeconds     float64 `json:"cpu_s"`
	LinesPerSecond float64 `json:"lines_per_s"`
	LinesPerCPUSec float64 `json:"lines_per_cpu_s"`
	DiskBytes      int64   `json:"disk_bytes"`
	BytesPerLine   float64 `json:"bytes_per_line"`
	GOMAXPROCS     int     `json:"gomaxprocs,omitempty"`
}

type textSizes struct {
	RawBytesPerLine  float64 `json:"raw_bytes_per_line"`
	GzipBytesPerLine float64 `json:"gzip6_bytes_per_line"`
	ZstdBytesPerLine float64 `json:"zstd_bytes_per_line"`
}

type ratios struct {
	LinesPerSecond float64 `json:"noops_loki_lines_per_s"`
	LinesPerCPUSec float64 `json:"noops_loki_lines_per_cpu_s"`
	BytesPerLine   float64 `json:"loki_noops_bytes_per_line"`
}

type targetResults struct {
	LinesPerCore float64 `json:"lines_per_core_target"`
	BytesPerLine float64 `json:"bytes_per_line_target"`
	LinesMet     bool    `json:"lines_per_core_met"`
	BytesMet     bool    `json:"bytes_per_line_met"`
}

type checks struct {
	Stored         int64   `json:"stored"`
	TailMillis     float64 `json:"tail100_ms"`
	TraceMillis    float64 `json:"trace_lookup_ms"`
	TraceFound     bool    `json:"trace_found"`
	PartitionCount int     `json:"partitions"`
}

func drive(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "noops-bench-logs.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// Timestamps end a minute ago, so that Loki takes them as recent.
	span := time.Duration(cfg.lines) * time.Millisecond
	start := time.Now().Add(-span - time.Minute).Truncate(time.Second)
	fmt.Fprintf(os.Stderr, "making %d access records (seed %d)\n", cfg.lines, cfg.seed)
	g := synth.New(cfg.seed, start)
	recs := make([]logstore.Record, cfg.lines)
	for i := range recs {
		recs[i] = g.Next()
	}
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), Lines: cfg.lines, Seed: cfg.seed,
		Targets: targetResults{LinesPerCore: 100_000, BytesPerLine: 30}}

	fmt.Fprintln(os.Stderr, "noops: ingesting with GOMAXPROCS=1")
	noops, chk, err := runNoops(filepath.Join(work, "noops"), recs)
	if err != nil {
		return fmt.Errorf("noops: %w", err)
	}
	rep.Noops, rep.Checks = noops, chk
	rep.Targets.LinesMet = noops.LinesPerSecond >= rep.Targets.LinesPerCore
	rep.Targets.BytesMet = noops.BytesPerLine <= rep.Targets.BytesPerLine

	fmt.Fprintln(os.Stderr, "reference: the same lines as text, gzip and zstd")
	if rep.Reference, err = textReference(recs); err != nil {
		return err
	}

	switch {
	case cfg.loki != "":
		fmt.Fprintf(os.Stderr, "loki: %s\n", cfg.loki)
		ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
		rep.Loki, err = runLoki(ctx, cfg, filepath.Join(work, "loki"), recs)
		cancel()
		if err != nil {
			return fmt.Errorf("loki: %w", err)
		}
		rep.Ratios = &ratios{LinesPerSecond: noops.LinesPerSecond / rep.Loki.LinesPerSecond,
			LinesPerCPUSec: noops.LinesPerCPUSec / rep.Loki.LinesPerCPUSec,
			BytesPerLine:   rep.Loki.BytesPerLine / noops.BytesPerLine}
	case cfg.lokiSkip != "":
		rep.LokiSkip = cfg.lokiSkip
	default:
		rep.LokiSkip = "no Loki binary given"
	}
	rep.print(os.Stdout)
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.outDir, "logs.json"), append(out, '\n'), 0o644)
}

// runNoops ingests recs on one core and checks what was stored.
func runNoops(dir string, recs []logstore.Record) (*sideResult, checks, error) {
	var chk checks
	runtime.GC()
	prev := runtime.GOMAXPROCS(1)
	cpu0, t0 := cpuTime(), time.Now()
	st, err := logstore.Open(dir, logstore.Options{})
	if err != nil {
		runtime.GOMAXPROCS(prev)
		return nil, chk, err
	}
	for i := range recs {
		if err := st.Append(recs[i]); err != nil {
			runtime.GOMAXPROCS(prev)
			return nil, chk, err
		}
	}
	err = st.Close()
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	runtime.GOMAXPROCS(prev)
	if err != nil {
		return nil, chk, err
	}
	size, err := dirSize(dir)
	if err != nil {
		return nil, chk, err
	}
	n := float64(len(recs))
	res := &sideResult{What: "noops/internal/observe/logstore: Append from one goroutine, then Close (seal + fsync)",
		WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds(), LinesPerSecond: n / wall.Seconds(),
		LinesPerCPUSec: n / cpu.Seconds(), DiskBytes: size, BytesPerLine: float64(size) / n, GOMAXPROCS: 1}

	// Read everything back.
	st, err = logstore.Open(dir, logstore.Options{})
	if err != nil {
		return nil, chk, err
	}
	defer st.Close()
	s := st.Stats()
	chk.Stored, chk.PartitionCount = s.Records, s.Partitions
	var count int64
	if err := st.Query(context.Background(), logstore.Query{}, func(logstore.Record) error { count++; return nil }); err != nil {
		return nil, chk, err
	}
	if count != int64(len(recs)) || s.Records != int64(len(recs)) {
		return nil, chk, fmt.Errorf("stored %d records (read back %d), want %d", s.Records, count, len(recs))
	}
	t := time.Now()
	tail := 0
	if err := st.Query(context.Background(), logstore.Query{App: "blog", Limit: 100, Tail: true}, func(logstore.Record) error { tail++; return nil }); err != nil {
		return nil, chk, err
	}
	chk.TailMillis = float64(time.Since(t).Microseconds()) / 1000
	want := recs[len(recs)/3]
	t = time.Now()
	err = st.Query(context.Background(), logstore.Query{TraceID: want.TraceID}, func(r logstore.Record) error {
		chk.TraceFound = r.Access != nil && r.Access.Path == want.Access.Path
		return nil
	})
	chk.TraceMillis = float64(time.Since(t).Microseconds()) / 1000
	if err != nil || !chk.TraceFound || tail != 100 {
		return nil, chk, fmt.Errorf("reading back: trace found %v, tail %d lines, err %v", chk.TraceFound, tail, err)
	}
	return res, chk, nil
}

// textReference compresses the lines as text in one piece.
func textReference(recs []logstore.Record) (*textSizes, error) {
	var text bytes.Buffer
	for i := range recs {
		text.WriteString(recs[i].String())
		text.WriteByte('\n')
	}
	var gz, zs countWriter
	zw, _ := gzip.NewWriterLevel(&gz, 6)
	if _, err := zw.Write(text.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(&zs)
	if err != nil {
		return nil, err
	}
	if _, err := enc.Write(text.Bytes()); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	n := float64(len(recs))
	return &textSizes{RawBytesPerLine: float64(text.Len()) / n, GzipBytesPerLine: float64(gz) / n, ZstdBytesPerLine: float64(zs) / n}, nil
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
