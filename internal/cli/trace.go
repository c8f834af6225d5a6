package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
	"noops/internal/observe/tracestore"
)

func newTrace(e *env) *cobra.Command {
	var width int
	c := &cobra.Command{
		Use:   "trace ID",
		Short: "Print a trace as a waterfall: the gateway's span, the apps' spans, events",
		Example: `  noops trace 4bf92f3577b34da6a3ce929d0e0e4736
  noops trace 4bf92f3577b34da6a3ce929d0e0e4736 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := e.client().Trace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(t)
			}
			return tracestore.Waterfall(e.stdout, storeSpans(t.Spans), width)
		},
	}
	c.Flags().IntVar(&width, "width", 40, "columns of the timeline bars")
	addJSON(c, e)
	c.AddCommand(newTraces(e))
	return c
}

func newTraces(e *env) *cobra.Command {
	var q apitype.TraceQuery
	var from string
	c := &cobra.Command{
		Use:   "list [--app APP] [--from 1h] [--min 500ms] [--errors]",
		Short: "List recent traces",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if q.From, err = parseWhen("--from", from); err != nil {
				return err
			}
			ts, err := e.client().Traces(cmd.Context(), q)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(ts)
			}
			var rows [][]string
			for _, t := range ts {
				rows = append(rows, []string{t.TraceID, t.Start.Local().Format("15:04:05.000"), ms(t.DurationMs), t.App, t.Root,
					fmt.Sprint(t.Spans), fmt.Sprint(t.Errors)})
			}
			e.table("TRACE\tSTART\tDURATION\tAPP\tROOT\tSPANS\tERRORS", rows)
			return nil
		},
	}
	c.Flags().StringVar(&q.App, "app", "", "only traces through this app")
	c.Flags().StringVar(&from, "from", "", "only traces since: RFC 3339 or a duration ago (1h)")
	c.Flags().DurationVar(&q.MinDuration, "min", 0, "only traces at least this long")
	c.Flags().BoolVar(&q.ErrorsOnly, "errors", false, "only traces with an error")
	c.Flags().IntVar(&q.Limit, "limit", 20, "at most this many")
	addJSON(c, e)
	return c
}

// storeSpans turns the API's spans back into the trace store's, which
// Waterfall draws.
func storeSpans(in []apitype.Span) []tracestore.Span {
	out := make([]tracestore.Span, len(in))
	for i, s := range in {
		out[i] = tracestore.Span{TraceID: s.TraceID, SpanID: s.SpanID, ParentID: s.ParentID, Name: s.Name, Kind: s.Kind,
			Service: s.Service, App: s.App, Start: s.Start, End: s.End, StatusCode: s.Status, StatusMessage: s.StatusMessage,
			Attributes: s.Attributes}
	}
	return out
}
