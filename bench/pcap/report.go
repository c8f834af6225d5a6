package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// report is the run's results, printed and saved as JSON.
type report struct {
	Date          string       `json:"date"`
	CPUs          int          `json:"cpus"`
	Seed          uint64       `json:"seed"`
	NoopsVersion  string       `json:"noops_version"`
	TsharkVersion string       `json:"tshark_version"`
	Mixes         []*mixRun    `json:"captures"` // the large capture, then the one without HTTP
	Target        float64      `json:"speed_target"`
	TargetMet     bool         `json:"speed_target_met"` // on the first capture
	Cases         []caseResult `json:"cases"`
}

// mixRun is both tools on one large capture.
type mixRun struct {
	Name      string      `json:"name"`
	Protocols []string    `json:"protocols"`
	Capture   captureInfo `json:"capture"`
	Noops     *sideResult `json:"noops"`
	Tshark    *sideResult `json:"tshark"`
	Ratios    ratios      `json:"ratios"`
	opt       mixOptions
}

type captureInfo struct {
	Bytes           int64          `json:"bytes"`
	Frames          int            `json:"frames"`
	Objects         map[string]int `json:"objects"`
	ObjectBytes     int64          `json:"object_bytes"`
	GenerateSeconds float64        `json:"generate_s"`
}

// sideResult is one tool on the large capture.
type sideResult struct {
	Run            *toolRun       `json:"run"`
	MBps           float64        `json:"capture_mb_per_s"`
	MBPerCPUSecond float64        `json:"capture_mb_per_cpu_s"`
	Files          int            `json:"files"`
	FilesBy        map[string]int `json:"files_by_folder"`
	WrittenBytes   int64          `json:"written_bytes"`
	Right          int            `json:"objects_right"`
	RightBy        map[string]int `json:"objects_right_by_protocol"`
	// EncodedOnly counts objects written as sent (gzip'd), not decoded;
	// InMessage mail attachments written only inside their whole message.
	EncodedOnly int      `json:"objects_encoded_only"`
	InMessage   int      `json:"objects_in_message_only"`
	Missing     []string `json:"missing_examples,omitempty"`
}

type ratios struct {
	Speed float64 `json:"noops_tshark_speed"`    // noops MB/s over tshark's
	CPU   float64 `json:"tshark_noops_cpu"`      // tshark CPU seconds over noops's
	RSS   float64 `json:"tshark_noops_peak_rss"` // tshark peak RSS over noops's
}

type caseResult struct {
	ID            int      `json:"id"`
	Title         string   `json:"title"`
	Size          int      `json:"size"`
	SHA256        string   `json:"sha256"`
	Tshark        verdict  `json:"tshark"`
	Noops         verdict  `json:"noops"`
	TsharkExit    int      `json:"tshark_exit"`
	NoopsExit     int      `json:"noops_exit"`
	NoopsWarnings []string `json:"noops_warnings,omitempty"`
}

// score counts the known objects among the files a tool wrote.
func score(out *toolOutput, objs []*object, capBytes int64) *sideResult {
	sums := bySum(out.files)
	r := &sideResult{Run: out.run, Files: len(out.files), FilesBy: map[string]int{}, RightBy: map[string]int{}}
	mb := float64(capBytes) / 1e6
	r.MBps = mb / out.run.WallSeconds
	if out.run.CPUSeconds > 0 {
		r.MBPerCPUSecond = mb / out.run.CPUSeconds
	}
	for _, f := range out.files {
		r.WrittenBytes += f.Size
		parts := strings.Split(f.Rel, "/")
		key := parts[0]
		if key == "objects" && len(parts) > 2 {
			key = parts[1]
		}
		r.FilesBy[key]++
	}
	for _, o := range objs {
		if _, ok := sums[o.SHA256]; ok {
			r.Right++
			r.RightBy[o.Protocol]++
			continue
		}
		if _, ok := sums[o.WireSHA256]; ok && o.WireSHA256 != "" {
			r.EncodedOnly++
			continue
		}
		if _, ok := sums[o.MessageSHA256]; ok && o.MessageSHA256 != "" {
			r.InMessage++
			continue
		}
		if len(r.Missing) < 10 {
			r.Missing = append(r.Missing, fmt.Sprintf("%s %s (%d B%s)", o.Protocol, o.Name, o.Size, strings.TrimPrefix(" "+o.Encoding, " ")))
		}
	}
	return r
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "noops pcap extract vs tshark --export-objects (http, ftp-data, imf, tftp); seed %d, %d CPUs\n", r.Seed, r.CPUs)
	fmt.Fprintf(w, "%s; %s\n", r.NoopsVersion, r.TsharkVersion)
	for i, m := range r.Mixes {
		m.print(w)
		if i == 0 {
			fmt.Fprintf(w, "target: noops >= %.0fx tshark's MB/s on this capture: %s\n", r.Target,
				map[bool]string{true: "met", false: "NOT met"}[r.TargetMet])
		}
	}
	fmt.Fprintln(w, "\ncases (right: a file with the object's SHA-256; 5: the flag found; 7: the captured bytes, marked incomplete)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tcase\ttshark\tnoops\t")
	for _, k := range r.Cases {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\n", k.ID, k.Title, k.Tshark.Short, k.Noops.Short)
	}
	tw.Flush()
	for _, k := range r.Cases {
		fmt.Fprintf(w, "%d. tshark (exit %d): %s\n   noops (exit %d): %s\n", k.ID, k.TsharkExit, k.Tshark.Text, k.NoopsExit, k.Noops.Text)
		for i, warn := range k.NoopsWarnings {
			if i == 3 {
				fmt.Fprintf(w, "     (%d more warnings)\n", len(k.NoopsWarnings)-3)
				break
			}
			fmt.Fprintf(w, "     warning: %s\n", warn)
		}
	}
}

func (m *mixRun) print(w io.Writer) {
	c := m.Capture
	protos := []string{"http", "ftp", "smtp", "tftp"}
	var counts []string
	total := 0
	for _, p := range protos {
		counts = append(counts, fmt.Sprintf("%s %d", p, c.Objects[p]))
		total += c.Objects[p]
	}
	fmt.Fprintf(w, "\n%s (%s): %.2f GB, %d frames, carrying %d objects, %.2f GB (%s)\n",
		m.Name, strings.Join(m.Protocols, ", "), float64(c.Bytes)/1e9, c.Frames, total, float64(c.ObjectBytes)/1e9, strings.Join(counts, ", "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\twall s\tCPU s\tpeak RSS MB\tcapture MB/s\tMB/CPU-s\tobjects right\thttp\tftp\tsmtp\ttftp\tfiles\texit\t")
	row := func(name string, s *sideResult) {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.0f\t%.1f\t%.1f\t%d/%d\t", name, s.Run.WallSeconds, s.Run.CPUSeconds, s.Run.MaxRSSMB,
			s.MBps, s.MBPerCPUSecond, s.Right, total)
		for _, p := range protos {
			fmt.Fprintf(tw, "%d\t", s.RightBy[p])
		}
		fmt.Fprintf(tw, "%d\t%d\t\n", s.Files, s.Run.ExitCode)
	}
	row("noops", m.Noops)
	row("tshark", m.Tshark)
	tw.Flush()
	fmt.Fprintf(w, "noops/tshark: %.2fx the capture MB/s; tshark/noops: %.2fx the CPU time, %.2fx the peak RSS\n",
		m.Ratios.Speed, m.Ratios.CPU, m.Ratios.RSS)
	for _, s := range []struct {
		name string
		r    *sideResult
	}{{"noops", m.Noops}, {"tshark", m.Tshark}} {
		fmt.Fprintf(w, "%s: files by folder %s", s.name, folders(s.r.FilesBy))
		if s.r.EncodedOnly > 0 {
			fmt.Fprintf(w, "; %d objects written still gzip'd (right as sent)", s.r.EncodedOnly)
		}
		if s.r.InMessage > 0 {
			fmt.Fprintf(w, "; %d mail attachments written only inside their whole message (.eml, right), not extracted", s.r.InMessage)
		}
		fmt.Fprintln(w)
		if len(s.r.Missing) > 0 {
			fmt.Fprintf(w, "  not written right, e.g.: %s\n", strings.Join(s.r.Missing, ", "))
		}
	}
}

func folders(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
