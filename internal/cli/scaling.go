package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
)

// printScaling writes the summary `noops ps` and `noops scale APP` show
// under or instead of a table.
func printScaling(w io.Writer, sc apitype.Scaling) {
	fmt.Fprintf(w, "replicas: %d ready of %d wanted", sc.Ready, sc.Desired)
	if s := sc.Scale; s != nil {
		fmt.Fprintf(w, "; autoscaled: min %d, max %d, %d in flight per replica, idle %s, window %s", s.Min, s.Max, s.Concurrency, s.Idle, s.Window)
		if s.Retain != "0s" {
			fmt.Fprintf(w, ", retain %s", s.Retain)
		}
		fmt.Fprintf(w, "\nload: %.2f requests in flight (stable window), %.2f (panic window)", sc.Stable, sc.Panic)
		if sc.Panicking {
			fmt.Fprint(w, ", panicking: scaling up only")
		}
	}
	fmt.Fprintln(w)
	if c := sc.ColdStarts; c.Count > 0 || sc.Scale != nil && sc.Scale.Min == 0 {
		fmt.Fprintf(w, "cold starts: %d", c.Count)
		if c.Count > 0 {
			fmt.Fprintf(w, " (latest: p50 %.1f ms, p99 %.1f ms, max %.1f ms; request arrival to first byte)", c.P50Ms, c.P99Ms, c.MaxMs)
		}
		fmt.Fprintln(w)
	}
}

func newMetrics(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "metrics",
		Short: "Print the server's metrics in the Prometheus text format",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := e.client().Metrics(cmd.Context())
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(b)
			return err
		},
	}
}
