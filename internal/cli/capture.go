package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newCapture(e *env) *cobra.Command {
	var out, sandbox string
	var d time.Duration
	var maxBytes int64
	c := &cobra.Command{
		Use:   "capture APP -o FILE.pcapng [--duration 30s] [--sandbox ID]",
		Short: "Record a sandbox's network traffic into a pcapng file, for incident response",
		Long: `The server records the frames crossing the host side of one of the app's
sandboxes' veth (a healthy one, or --sandbox) with a packet socket, for
--duration or until --max-bytes, and streams them here as pcapng: open it
with Wireshark or noops pcap extract. The capture holds whatever the app
exchanged, secrets included: the file is written readable by you only,
and the capture is in the audit log.`,
		Example: `  noops capture shop --duration 1m -o shop.pcapng
  noops pcap extract shop.pcapng -o shop-objects`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("give the output file with -o FILE.pcapng")}
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("creating %s: %w", out, err)
			}
			tty := false
			if ef, ok := e.stderr.(*os.File); ok {
				tty = term.IsTerminal(int(ef.Fd()))
			}
			last := time.Now()
			progress := func(n int64) {
				if tty && time.Since(last) > 200*time.Millisecond {
					last = time.Now()
					fmt.Fprintf(e.stderr, "\r==> capturing %s: %s", args[0], human(n))
				}
			}
			if tty {
				fmt.Fprintf(e.stderr, "==> capturing %s for %s", args[0], d)
			}
			n, err := e.client().Capture(cmd.Context(), args[0], sandbox, d, maxBytes, f, progress)
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("writing %s: %w", out, cerr)
			}
			if tty {
				fmt.Fprintln(e.stderr)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s of capture to %s\n", human(n), out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "pcapng file to write")
	c.Flags().DurationVar(&d, "duration", 30*time.Second, "how long to record (at most 10m)")
	c.Flags().StringVar(&sandbox, "sandbox", "", "which sandbox (default: a healthy one; see noops ps)")
	c.Flags().Int64Var(&maxBytes, "max-bytes", 0, "stop after this many bytes (default 256 MiB)")
	return c
}
