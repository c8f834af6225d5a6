package forensics

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what Extract found: written to the output directory as
// manifest.json, and as a table in summary.txt.
type Report struct {
	Capture string `json:"capture"` // the capture's path as given
	SHA256  string `json:"sha256"`  // of the capture file
	Frames  int    `json:"frames"`  // frames read from the capture (nested captures not counted)
	// Objects has one entry per file written: each extracted object,
	// followed by the nodes of its unpacked tree and by what nested
	// captures inside it held.
	Objects []Entry   `json:"objects"`
	Flags   []FlagHit `json:"flags,omitempty"`
	// Warnings say what was lost or doubted, from every stage, each
	// prefixed by what it is about (the capture, an output file).
	Warnings []string `json:"warnings,omitempty"`
	Stats    Stats    `json:"stats"`
}

// Entry is the evidence for one file written under the output directory.
type Entry struct {
	Path   string `json:"path"` // relative to the output directory, slash-separated
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Protocol carried the object this file is, or was unpacked from:
	// ftp, http, smtp, tftp.
	Protocol string `json:"protocol"`
	// Name is the name the protocol (or the archive) gave, unsanitized;
	// NameFrom says where it came from ("RETR", "150 reply", "URL",
	// "tar entry", "base64 decoding"), "" when the extractor made it up.
	Name     string `json:"name"`
	NameFrom string `json:"name_from,omitempty"`
	// Flow is the direction that carried the bytes, "tcp 10.0.0.2:40000
	// -> 10.0.0.1:20", and Conn its connection's number (as the
	// warnings count them); Control is an FTP transfer's control
	// connection.
	Flow    string `json:"flow"`
	Conn    int    `json:"conn,omitempty"`
	Control string `json:"control,omitempty"`
	// FirstFrame and LastFrame locate the bytes in Capture (the top
	// capture when empty, else the nested capture's path).
	FirstFrame int       `json:"first_frame"`
	LastFrame  int       `json:"last_frame"`
	FirstTime  time.Time `json:"first_time,omitzero"`
	LastTime   time.Time `json:"last_time,omitzero"`
	Capture    string    `json:"capture,omitempty"`
	// Ranges are the byte ranges of the flow's stream that make the
	// object ("0-10240"); Gaps the ranges of the object itself that were
	// not captured (read as zeros in the file).
	Ranges []string `json:"ranges,omitempty"`
	Gaps   []string `json:"gaps,omitempty"`
	// ExpectedSize is the size the protocol announced, -1 when unknown.
	ExpectedSize int64 `json:"expected_size"`
	// Complete says the protocol reported the transfer finished and no
	// byte is missing; for an unpacked node, that its object was
	// complete and its unpacking not cut short.
	Complete bool `json:"complete"`
	// Chain is the decode chain from the capture to this file:
	// ["capture.pcap", "ftp:secret.tar", "tar:inner.tar", "tar:flag.txt", "base64"].
	Chain []string `json:"chain"`
	// Parent is the Path of the entry this one was unpacked from.
	Parent string `json:"parent,omitempty"`
	// Format is what the content is, recognised by its bytes (tar, gzip,
	// text, data, pcap, ...).
	Format  string   `json:"format,omitempty"`
	Decoded []string `json:"decoded,omitempty"` // decodings the extractor applied: chunked, gzip, REST stitched
	Flags   []string `json:"flags,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// FlagHit is one match of Options.Flag and where it was found.
type FlagHit struct {
	Flag  string   `json:"flag"`
	Path  string   `json:"path"` // the Entry holding it
	Chain []string `json:"chain"`
}

// Stats count what the extraction read and wrote.
type Stats struct {
	Format      string         `json:"format"` // pcap, pcapng, with " (gzip)"
	Bytes       int64          `json:"bytes"`  // size of the capture file
	Frames      int            `json:"frames"`
	Packets     int            `json:"packets"` // TCP and UDP packets decoded
	Skipped     map[string]int `json:"skipped,omitempty"`
	Connections int            `json:"connections"`
	Datagrams   int            `json:"datagrams"` // UDP datagrams kept (those that may be TFTP)
	Objects     map[string]int `json:"objects"`   // by protocol, in this capture and nested ones
	Files       int            `json:"files"`     // files written
	Written     int64          `json:"written"`   // bytes written
	Captures    int            `json:"captures"`  // nested captures extracted
	Seconds     float64        `json:"seconds"`
}

// WriteSummary writes the report as people read it: a table of the files
// written (PATH, PROTO, SIZE, FLOW, FRAMES, COMPLETE/GAPS, CHAIN), the
// flags found with their decode chains, and the warnings (all of them
// when maxWarnings < 0, else at most that many and a count of the rest).
func (r *Report) WriteSummary(w io.Writer, maxWarnings int) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "capture %s (%s, %d frames, sha256 %s)\n", r.Capture, r.Stats.Format, r.Frames, r.SHA256)
	fmt.Fprintf(ew, "%d files written, %d bytes; objects:%s; %d connections; %.1f s\n\n",
		r.Stats.Files, r.Stats.Written, byProto(r.Stats.Objects), r.Stats.Connections, r.Stats.Seconds)
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tPROTO\tSIZE\tFLOW\tFRAMES\tCOMPLETE/GAPS\tCHAIN")
	for _, e := range r.Objects {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Path, e.Protocol, e.Size, orDash(e.Flow),
			frames(e), completeness(e), strings.Join(e.Chain, " > "))
	}
	tw.Flush()
	if len(r.Flags) > 0 {
		fmt.Fprintf(ew, "\nflags found:\n")
		tw = tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FLAG\tPATH\tCHAIN")
		for _, f := range r.Flags {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strconv.QuoteToGraphic(f.Flag), f.Path, strings.Join(f.Chain, " > "))
		}
		tw.Flush()
	}
	if n := len(r.Warnings); n > 0 {
		fmt.Fprintf(ew, "\n%d warnings:\n", n)
		for i, m := range r.Warnings {
			if maxWarnings >= 0 && i >= maxWarnings {
				fmt.Fprintf(ew, "  ... and %d more (summary.txt and manifest.json list them all)\n", n-i)
				break
			}
			fmt.Fprintf(ew, "  %s\n", m)
		}
	}
	return ew.err
}

func byProto(m map[string]int) string {
	if len(m) == 0 {
		return " none"
	}
	var b strings.Builder
	for _, p := range []string{"ftp", "http", "smtp", "tftp"} {
		if m[p] > 0 {
			fmt.Fprintf(&b, " %s %d", p, m[p])
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func frames(e Entry) string {
	switch {
	case e.FirstFrame == 0:
		return "-"
	case e.FirstFrame == e.LastFrame:
		return strconv.Itoa(e.FirstFrame)
	}
	return fmt.Sprintf("%d-%d", e.FirstFrame, e.LastFrame)
}

// completeness is the COMPLETE/GAPS column: "yes", "no", or the gaps.
func completeness(e Entry) string {
	switch {
	case len(e.Gaps) > 3:
		return fmt.Sprintf("gaps %s (+%d more)", strings.Join(e.Gaps[:3], ","), len(e.Gaps)-3)
	case len(e.Gaps) > 0:
		return "gaps " + strings.Join(e.Gaps, ",")
	case e.Complete:
		return "yes"
	}
	return "no"
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
