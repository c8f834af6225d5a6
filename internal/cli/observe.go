package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newMetrics(e *env) *cobra.Command {
	var window, step time.Duration
	var openMetrics bool
	c := &cobra.Command{
		Use:   "metrics [APP] [--window 1h]",
		Short: "Show an app's request rate, errors and latency percentiles, or the server's metrics",
		Long: `With APP: the app's requests over the window from the metric history —
rate, error ratio (5xx and unanswered), p50/p95/p99 latency, CPU, memory
and pids of its sandboxes, a slow request's trace ID, and a sparkline of
the rate. Without: the server's metrics in the Prometheus text format.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				b, err := e.client().Metrics(cmd.Context(), openMetrics)
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(b)
				return err
			}
			st := step
			if st == 0 {
				st = max(window/30, 15*time.Second)
			}
			m, err := e.client().AppMetrics(cmd.Context(), args[0], window, st)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(m)
			}
			w := e.stdout
			fmt.Fprintf(w, "%s over the last %s\n", m.App, m.Window)
			fmt.Fprintf(w, "  requests  %.0f (%.2f/s)\n", m.Requests, m.Rate)
			fmt.Fprintf(w, "  errors    %.0f (%.2f%%)\n", m.Errors, 100*m.ErrorRatio)
			fmt.Fprintf(w, "  latency   p50 %s  p95 %s  p99 %s\n", ms(m.P50Ms), ms(m.P95Ms), ms(m.P99Ms))
			fmt.Fprintf(w, "  sandboxes cpu %.2f cores  memory %s  pids %.0f\n", m.CPU, bytesText(m.Memory), m.Pids)
			if len(m.Points) > 1 {
				rates := make([]float64, len(m.Points))
				for i, p := range m.Points {
					rates[i] = p.Rate
				}
				fmt.Fprintf(w, "  rate      %s\n", sparkline(rates))
			}
			if m.Exemplar != "" {
				fmt.Fprintf(w, "  slowest   noops trace %s\n", m.Exemplar)
			}
			return nil
		},
	}
	c.Flags().DurationVar(&window, "window", time.Hour, "how far back to look")
	c.Flags().DurationVar(&step, "step", 0, "resolution of the series (default window/30)")
	c.Flags().BoolVar(&openMetrics, "openmetrics", false, "without APP: print OpenMetrics, with the exemplars (trace IDs)")
	addJSON(c, e)
	return c
}

func ms(v float64) string {
	if v == 0 {
		return "-"
	}
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.1fms", v)
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// sparkline draws values with eight levels of block characters.
func sparkline(vs []float64) string {
	const bars = "▁▂▃▄▅▆▇█"
	levels := []rune(bars)
	hi := 0.0
	for _, v := range vs {
		hi = max(hi, v)
	}
	var b strings.Builder
	for _, v := range vs {
		i := 0
		if hi > 0 {
			i = min(int(v/hi*float64(len(levels)-1)+0.5), len(levels)-1)
		}
		b.WriteRune(levels[i])
	}
	return b.String()
}

func newMonitors(e *env) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   "monitors [--app APP]",
		Short: "Show the uptime monitors: state, for how long, latency, uptime",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := e.client().Monitors(cmd.Context(), app)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(ms)
			}
			var rows [][]string
			now := time.Now()
			for _, m := range ms {
				detail := m.Error
				if detail == "" {
					detail = m.Detail
				}
				rows = append(rows, []string{m.Name, m.Kind, m.State, since(now, m.Since), ms1(m.LatencyMs),
					pct(m.Uptime, "24h"), pct(m.Uptime, "7d"), recent(m.Recent), detail})
			}
			e.table("MONITOR\tKIND\tSTATE\tFOR\tLATENCY\tUPTIME 24H\tUPTIME 7D\tRECENT\tDETAIL", rows)
			return nil
		},
	}
	c.Flags().StringVar(&app, "app", "", "only this app's monitors")
	addJSON(c, e)
	c.AddCommand(newPush(e))
	return c
}

func newPush(e *env) *cobra.Command {
	var down bool
	var msg string
	c := &cobra.Command{
		Use:   "push TOKEN [--down] [--msg TEXT]",
		Short: "Check a push monitor in (what a cron job calls: GET /v1/push/TOKEN)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.client().Push(cmd.Context(), args[0], !down, msg)
		},
	}
	c.Flags().BoolVar(&down, "down", false, "report a failure instead")
	c.Flags().StringVar(&msg, "msg", "", "a message to keep with the check")
	return c
}

func ms1(v float64) string {
	if v == 0 {
		return "-"
	}
	return ms(v)
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

func pct(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*v)
}

// recent draws the last checks: ▮ up, ▯ down.
func recent(r []bool) string {
	if len(r) > 20 {
		r = r[len(r)-20:]
	}
	var b strings.Builder
	for _, ok := range r {
		if ok {
			b.WriteString("▮")
		} else {
			b.WriteString("▯")
		}
	}
	return b.String()
}

func newAlerts(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "alerts",
		Short: "Show the active and recently resolved alerts, with the changes before them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := e.client().Alerts(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(as)
			}
			var rows [][]string
			now := time.Now()
			for _, a := range as {
				rows = append(rows, []string{a.Rule, a.App, a.State, a.Severity, fmt.Sprintf("%g", a.Value), since(now, a.ActiveAt), a.Summary})
				for _, c := range a.Changes {
					rows = append(rows, []string{"", "", "", "", "", "", "changed since: " + c})
				}
			}
			e.table("ALERT\tAPP\tSTATE\tSEVERITY\tVALUE\tSINCE\tSUMMARY", rows)
			return nil
		},
	}
	addJSON(c, e)
	return c
}
