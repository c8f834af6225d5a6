package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"noops/internal/forensics"
)

// newPcap is `noops pcap`: network forensics on capture files. It runs
// locally and never talks to a server.
func newPcap(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "pcap",
		Short: "Network forensics on pcap and pcapng captures (runs locally)",
		// Local: no remote client, whatever NOOPS_URL says.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
	}
	c.AddCommand(newPcapExtract(e))
	return c
}

func newPcapExtract(e *env) *cobra.Command {
	var out, flag string
	c := &cobra.Command{
		Use:   "extract FILE -o DIR [--json] [--flag REGEX]",
		Short: "Extract the files of FTP, HTTP, SMTP and TFTP transfers from a capture",
		Long: `Reads a pcap or pcapng capture (also gzipped), reassembles its TCP
connections (out-of-order and retransmitted segments handled, gaps
reported), and writes every file transferred over FTP (passive and active,
REST stitched, named from the 150 reply when only the server was
captured), HTTP/1.x (chunked, gzip, 206 ranges), SMTP (attachments) and
TFTP to DIR/objects/<protocol>/. Each file is then unpacked and decoded
(tar, gzip, bzip2, zip, base64, hex, ...) into <file>.unpacked/, and
captures found inside are extracted in turn.

DIR/manifest.json holds the evidence for every file: flow, frames, byte
ranges, gaps, SHA-256 and the decode chain from the capture down to it;
DIR/summary.txt the same as a table with every warning. --flag searches
every file and decoding for a pattern and lists where it was found.

A damaged capture gives what it holds, with warnings saying what was
lost; only a file that is not a capture at all is an error.`,
		Example: `  noops pcap extract ctf.pcapng -o out --flag 'flag\{[^}]+\}'
  noops pcap extract traffic.pcap.gz -o evidence --json > report.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("give the output directory with -o DIR")}
			}
			var re *regexp.Regexp
			if flag != "" {
				var err error
				if re, err = regexp.Compile(flag); err != nil {
					return usageError{fmt.Errorf("--flag %q is not a regular expression: %w", flag, err)}
				}
			}
			bar := newReadBar(e)
			report, err := forensics.Extract(cmd.Context(), args[0], out, forensics.Options{Flag: re, Progress: bar.draw})
			bar.done()
			if report == nil {
				return err
			}
			if e.json {
				if perr := e.printJSON(report); perr != nil {
					return perr
				}
			} else {
				if werr := report.WriteSummary(e.stdout, 20); werr != nil {
					return werr
				}
				fmt.Fprintf(e.stdout, "\nwrote %s and %s\n", filepath.Join(out, "manifest.json"), filepath.Join(out, "summary.txt"))
			}
			if err == nil && len(report.Warnings) > 0 {
				fmt.Fprintf(e.stderr, "noops: %d warnings of what was lost or doubted: see %s\n",
					len(report.Warnings), filepath.Join(out, "summary.txt"))
			}
			return err
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "directory to write the files, manifest.json and summary.txt into")
	c.Flags().StringVar(&flag, "flag", "", `regular expression to look for in every file and decoding, e.g. 'flag\{[^}]+\}'`)
	addJSON(c, e)
	return c
}

// readBar draws how much of the capture was read, on a terminal only.
type readBar struct {
	e     *env
	tty   bool
	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newReadBar(e *env) *readBar {
	b := &readBar{e: e}
	if f, ok := e.stderr.(*os.File); ok {
		b.tty = term.IsTerminal(int(f.Fd()))
	}
	return b
}

func (b *readBar) draw(done, total int64) {
	if !b.tty {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = time.Now()
	const width = 30
	fill := width
	if total > 0 {
		fill = int(min(int64(width), int64(width)*done/total))
	}
	fmt.Fprintf(b.e.stderr, "\r==> reading [%s%s] %s / %s", strings.Repeat("#", fill), strings.Repeat(".", width-fill), human(done), human(total))
	b.shown = true
}

func (b *readBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shown {
		fmt.Fprint(b.e.stderr, "\n")
		b.shown = false
	}
}
