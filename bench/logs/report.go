package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "log store: %d realistic access-log lines (seed %d), %d CPUs\n\n", r.Lines, r.Seed, r.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\tlines/s\tlines/CPU-s\tCPU s\twall s\tdisk MB\tB/line\t")
	row := func(name string, s *sideResult) {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.1f\t%.2f\t\n", name, s.LinesPerSecond, s.LinesPerCPUSec, s.CPUSeconds,
			s.WallSeconds, float64(s.DiskBytes)/1e6, s.BytesPerLine)
	}
	row("noops (GOMAXPROCS=1)", r.Noops)
	if r.Loki != nil {
		row("loki "+r.Loki.Version, r.Loki)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nthe same lines as text: %.1f B/line raw, %.2f gzip -6, %.2f zstd (one piece, no index)\n",
		r.Reference.RawBytesPerLine, r.Reference.GzipBytesPerLine, r.Reference.ZstdBytesPerLine)
	fmt.Fprintf(w, "read back: %d records in %d partitions; tail of 100 lines of one app %.1f ms; a trace ID lookup %.1f ms\n",
		r.Checks.Stored, r.Checks.PartitionCount, r.Checks.TailMillis, r.Checks.TraceMillis)
	fmt.Fprintf(w, "targets: >= %.0f lines/s per core: %s (%.0f); <= %.0f B/line: %s (%.2f)\n",
		r.Targets.LinesPerCore, yes(r.Targets.LinesMet), r.Noops.LinesPerSecond, r.Targets.BytesPerLine, yes(r.Targets.BytesMet), r.Noops.BytesPerLine)
	if r.Ratios != nil {
		fmt.Fprintf(w, "noops/loki lines/s %.2f, lines per CPU-second %.2f; loki/noops bytes per line %.2f\n",
			r.Ratios.LinesPerSecond, r.Ratios.LinesPerCPUSec, r.Ratios.BytesPerLine)
	} else {
		fmt.Fprintf(w, "loki: not run: %s\n", r.LokiSkip)
	}
}
