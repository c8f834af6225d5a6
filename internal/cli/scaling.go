package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"noops/internal/apiclient"
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
	var q apiclient.EventQuery
	var from, to string
	c := &cobra.Command{
		Use:   "events [APP]",
		Short: "Show what happened to apps: deploys, rollbacks, config changes, scaling, rebases, bans, crash loops, OOM kills, failed starts",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				q.App = args[0]
			}
			var err error
			if q.From, err = parseWhen("--from", from); err != nil {
				return err
			}
			if q.To, err = parseWhen("--to", to); err != nil {
				return err
			}
			rows, err := e.client().Events(cmd.Context(), q)
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
	c.Flags().Int64Var(&q.Since, "since", 0, "show events after this sequence number")
	c.Flags().IntVar(&q.Limit, "limit", 100, "at most this many events")
	c.Flags().StringSliceVar(&q.Kinds, "kind", nil, "only these kinds, e.g. deploy,rollback,config,scale,rebase,ban (the deploy markers)")
	c.Flags().StringVar(&from, "from", "", "only events at or after this time: RFC 3339 (2026-12-06T10:00:00Z) or a duration ago (2h)")
	c.Flags().StringVar(&to, "to", "", "only events before this time (same forms as --from)")
	addJSON(c, e)
	c.AddCommand(newPublish(e), newDLQ(e)) // the event bus (events.go)
	return c
}

// parseWhen reads a time: RFC 3339, or a duration before now ("90m").
func parseWhen(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError{fmt.Errorf("%s %q: give a time as RFC 3339 (2026-12-06T10:00:00Z) or a duration ago (2h)", flag, s)}
}
