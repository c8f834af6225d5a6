package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

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

func newEvents(e *env) *cobra.Command {
	var since int64
	var limit int
	c := &cobra.Command{
		Use:   "events [APP]",
		Short: "Show what the platform did on its own: crash loops, OOM kills, failed starts, autoscaling",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := ""
			if len(args) == 1 {
				app = args[0]
			}
			rows, err := e.client().Events(cmd.Context(), app, since, limit)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(rows)
			}
			out := make([][]string, len(rows))
			for i, r := range rows {
				out[i] = []string{strconv.FormatInt(r.Seq, 10), r.Time.Local().Format(time.DateTime), orDash(r.App), r.Kind, r.Message}
			}
			e.table("SEQ\tTIME\tAPP\tKIND\tMESSAGE", out)
			return nil
		},
	}
	c.Flags().Int64Var(&since, "since", 0, "show events after this sequence number")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many events")
	addJSON(c, e)
	c.AddCommand(newPublish(e), newDLQ(e)) // the event bus (events.go)
	return c
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
